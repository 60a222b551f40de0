"""The engine's sentiment (`mentionwatch.rules_engine.sentiment`) against vaderSentiment's
`polarity_scores`, over the same posts, in one run; and how long the default packs take to
load (what every `poll`, `rules test` and TUI start pays before judging anything).

    python benchmarks/sentiment_speed.py [--repeat 3] [--data FILE]

Posts: the shipped training posts and the written test posts (and with --data, the text column
of a CSV such as the complaints corpus, read from its path). Both sides score every post,
alternating `--repeat` times; the best run of each counts. Every score is compared too: a
mismatch is a bug. Last line: {"vader_us", "ours_us", "ratio_to_vader", "mismatches",
"load_packs_s", "n"}. No target of its own: it shows where the ingest's VADER time went
(`ingest.py --rules` still measures its floor with vaderSentiment itself).
"""

from __future__ import annotations

import argparse
import csv
import time
from pathlib import Path

from _common import ROOT, emit

from mentionwatch.resources import rules_dir
from mentionwatch.rules_engine import BrandFacts, Engine, load_packs
from mentionwatch.rules_engine.classifier import read_training
from mentionwatch.rules_engine.sentiment import Sentiment


def posts(extra: Path | None) -> list[str]:
    texts = [text for path in (rules_dir() / "training" / "complaints.csv",
                               ROOT / "tests" / "fixtures" / "rules" / "written_posts.csv")
             for text, _ in read_training(path)]
    if extra is not None:
        with extra.open(encoding="utf-8", newline="") as f:
            texts += [row[1] for row in csv.reader(f) if len(row) > 1]
    return texts


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--data", type=Path, help="a CSV with the post in its second column")
    args = parser.parse_args()
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    polarity = SentimentIntensityAnalyzer().polarity_scores
    ours = Sentiment().compound
    texts = posts(args.data)
    mismatches = sum(1 for t in texts if polarity(t)["compound"] != ours(t))
    best = {"vader": float("inf"), "ours": float("inf")}
    for _ in range(args.repeat):
        start = time.perf_counter()
        for t in texts:
            polarity(t)
        best["vader"] = min(best["vader"], time.perf_counter() - start)
        start = time.perf_counter()
        for t in texts:
            ours(t)
        best["ours"] = min(best["ours"], time.perf_counter() - start)
    start = time.perf_counter()
    Engine(load_packs([rules_dir()]), BrandFacts("Acme"), {})
    load_s = time.perf_counter() - start
    figures = {"vader_us": round(best["vader"] / len(texts) * 1e6, 2),
               "ours_us": round(best["ours"] / len(texts) * 1e6, 2),
               "ratio_to_vader": round(best["ours"] / best["vader"], 3),
               "mismatches": mismatches, "load_packs_s": round(load_s, 3), "n": len(texts)}
    print(f"{len(texts)} posts: vaderSentiment {figures['vader_us']} µs a post, ours "
          f"{figures['ours_us']} µs ({figures['ratio_to_vader']}x), {mismatches} scores differ;"
          f" the default packs load in {figures['load_packs_s']} s")
    emit(figures)
    return 1 if mismatches else 0


if __name__ == "__main__":
    raise SystemExit(main())
