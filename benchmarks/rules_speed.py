"""Per-mention rule evaluation cost with 10, 100 and 1,000 term rules, in one run.

    python benchmarks/rules_speed.py [--texts 2000]

Each configuration is one pack of rules whose terms are product names ("acme model 17"...);
the same texts (some naming products, most not) are judged by each. Last line:
{"us_per_mention_10", "us_per_mention_100", "us_per_mention_1000", "ratio_1000_10"}.
Target: ratio_1000_10 <= 3 (one trie-shaped pattern, not a loop of regexes).
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from _common import emit

from mentionwatch.judgement import MentionFacts
from mentionwatch.rules_engine import BrandFacts, Engine, load_packs

WORDS = ["router", "modem", "fiber", "plan", "bill", "outage", "support", "app", "login",
         "slow", "down", "refund", "great", "thanks", "help", "store", "order", "delivery",
         "account", "password", "upgrade", "price"]


def pack_text(terms: int) -> str:
    rules = []
    per_rule = 10
    for r in range(max(1, terms // per_rule)):
        names = ", ".join(f'"acme model {r * per_rule + i}"' for i in range(per_rule))
        rules.append(f'[[rules]]\nname = "product-{r}"\nflag = "question"\n'
                     f'[rules.when]\nany = [{names}]\n')
    return '[pack]\nname = "speed"\n' + "\n".join(rules)


def texts(n: int) -> list[str]:
    rng = random.Random(7)
    out = []
    for i in range(n):
        words = [rng.choice(WORDS) for _ in range(rng.randint(8, 30))]
        if i % 4 == 0:
            words.insert(rng.randrange(len(words)), f"acme model {rng.randrange(1000)}")
        out.append("@acme " + " ".join(words))
    return out


def cost(terms: int, sample: list[str]) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp, "speed.toml").write_text(pack_text(terms), encoding="utf-8")
        engine = Engine(load_packs([Path(tmp)]), BrandFacts("Acme"), {})
    now = datetime.now(UTC)
    facts = [MentionFacts(source="x", source_kind="twitter", text=t, title=None, url=None,
                          author_handle="u", author_name=None, followers=10, verified=False,
                          language="en", created_at=now, likes=0, reposts=0, replies=0,
                          is_reply_to_brand=False) for t in sample]
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        engine.judge(facts)
        best = min(best, time.perf_counter() - started)
    return best / len(sample) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--texts", type=int, default=2000)
    args = parser.parse_args()
    sample = texts(args.texts)
    figures = {f"us_per_mention_{n}": round(cost(n, sample), 1) for n in (10, 100, 1000)}
    figures["ratio_1000_10"] = round(figures["us_per_mention_1000"]
                                     / figures["us_per_mention_10"], 2)
    print("includes VADER sentiment, which every configuration pays the same")
    emit(figures)


if __name__ == "__main__":
    main()
