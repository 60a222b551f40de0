"""The default packs' judgement per mention for each source kind, against VADER alone, same run.

    python benchmarks/judge_sources.py [--n 5000] [--repeat 3]

The engine is built as `mentionwatch poll` builds it (`load_judge`: every connector's reply
limit and its way of counting a reply's length: X weighs CJK and emoji 2 and links 23,
Bluesky counts graphemes, Mastodon counts links as 23 and puts `@author ` in front of a reply
that does not name them). The same posts are judged as if from each kind, so what differs
between kinds is only the work their limits cost, chiefly fitting each draft. `ingest.py
--rules` does not show it: its synthetic source states no limit. One post in five is
written with non-ASCII text (accents, CJK, emoji), as real streams have them.

Last line: {"vader_us", "<kind>_us", "<kind>_ratio_to_vader", "n"}; there is no target, the
script is here so a costly length count is seen (X's cost 130 µs a post until 2026-12-02,
more than VADER).
"""

from __future__ import annotations

import argparse
import random
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from _common import emit

from mentionwatch.config import parse_config
from mentionwatch.judgement import MentionFacts
from mentionwatch.rules_engine import load_judge

KINDS = ("twitter", "mastodon", "bluesky", "reddit", "rss")
OPENINGS = ("acme router down again", "billing problem with acme, charged twice",
            "thanks acme support, sorted in minutes", "acme fiber outage downtown",
            "how do I reset my acme modem", "acme is the worst, switching to globex",
            "still waiting for my acme refund")
NON_ASCII = (" 😡", " ça ne marche pas", " 网络又断了", " 👨\u200d👩\u200d👧 no wifi",
             " naïve café")
NOW = datetime(2026, 11, 1, tzinfo=UTC)


def posts(n: int) -> list[str]:
    rng = random.Random(11)
    out = []
    for i in range(n):
        text = f"{rng.choice(OPENINGS)} @acme please help, waited {i % 90} minutes"
        if i % 5 == 0:
            text += rng.choice(NON_ASCII)
        out.append(text)
    return out


def facts(texts: list[str], kind: str) -> list[MentionFacts]:
    return [MentionFacts(
        source=kind, source_kind=kind, text=t, title=None, url=f"https://social.example/{i}",
        author_handle=f"user{i % 500}@social.example" if kind == "mastodon" else f"user{i % 500}",
        author_name=f"Sam {i % 500}", followers=(i * 37) % 100_000, verified=False,
        language="en", created_at=NOW - timedelta(minutes=i % 120), likes=i % 50,
        reposts=i % 7, replies=i % 3, is_reply_to_brand=False) for i, t in enumerate(texts)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=5000)
    parser.add_argument("--repeat", type=int, default=3,
                        help="alternate the runs this many times; the best of each counts")
    args = parser.parse_args()
    config = parse_config({"brand": {"name": "Acme", "terms": ["acme", "@acme"]},
                           "database": {"url": "sqlite:///unused.db"}, "sources": []},
                          Path("<benchmark>"))
    engine = load_judge(config)
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    polarity = SentimentIntensityAnalyzer().polarity_scores
    texts = posts(args.n)
    batches = {kind: facts(texts, kind) for kind in KINDS}
    for kind in KINDS:  # connector imports (atproto's takes seconds) outside the timers
        engine.judge(batches[kind][:200])
    best: dict[str, float] = {}
    for _ in range(args.repeat):
        started = time.perf_counter()
        for text in texts:
            polarity(text)
        best["vader"] = min(best.get("vader", 1e9), time.perf_counter() - started)
        for kind in KINDS:
            started = time.perf_counter()
            for start in range(0, args.n, 500):
                engine.judge(batches[kind][start:start + 500])
            best[kind] = min(best.get(kind, 1e9), time.perf_counter() - started)
    figures: dict[str, object] = {"n": args.n, "vader_us": round(best["vader"] / args.n * 1e6, 1)}
    print(f"VADER alone: {figures['vader_us']} µs a post")
    for kind in KINDS:
        us = best[kind] / args.n * 1e6
        figures[f"{kind}_us"] = round(us, 1)
        figures[f"{kind}_ratio_to_vader"] = round(best[kind] / best["vader"], 2)
        print(f"{kind:<9} {us:7.1f} µs a post ({best[kind] / best['vader']:.2f} x VADER)")
    emit(figures)


if __name__ == "__main__":
    main()
