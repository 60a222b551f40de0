"""Train the complaint classifier from a CSV and write its weights, or score a text.

    python -m mentionwatch.rules_engine.train            # rules/training/complaints.csv
    python -m mentionwatch.rules_engine.train --data my.csv --out model.json
    python -m mentionwatch.rules_engine.train --score "@acme still no refund"
    python -m mentionwatch.rules_engine.train --sentence   # the sentence head and the teacher

After editing the posts, train the sentence head first (it writes the teacher's opinions the
word model learns from: complaints.teacher.csv), then the word model.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from mentionwatch.resources import rules_dir
from mentionwatch.rules_engine.classifier import (
    MODEL_PATH,
    default_model,
    lexicon_of,
    teacher_path,
    train_file,
    write_teacher,
)
from mentionwatch.rules_engine.packs import load_packs


def shipped_training() -> Path:
    """The training posts mentionwatch ships (rules/training/complaints.csv)."""
    return rules_dir() / "training" / "complaints.csv"


def default_lexicon() -> dict[str, str]:
    """The shipped packs' terms, each as a feature of its rule (only the terms that speak for
    a rule: its `none` exclusions, "calm down" for the outage rule, are not its evidence)."""
    packs = load_packs([rules_dir()])
    return lexicon_of((rule.name, rule.when.wanted_terms()) for pack in packs
                      for rule in pack.rules)


def word_teacher(data: Path) -> Path | None:
    """The teacher file for training the word model on `data`: the one beside it, else the
    shipped one (its opinions are keyed by text, so they reach the shipped posts in a CSV that
    adds others, as `mentionwatch rules train` writes)."""
    for path in (teacher_path(data), teacher_path(shipped_training())):
        if path.is_file():
            return path
    return None


#: The L2 penalty per post, chosen on the quality benchmark's tune half (3e-4 to 2e-3 differ
#: by about 0.01 macro F1 there; 1e-4, the first model's, overfits the written posts).
L2 = 7e-4


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m mentionwatch.rules_engine.train",
        description="Train or try the complaint classifier.")
    parser.add_argument("--data", type=Path, default=None,
                        help="training CSV with a header: text,label[,...] "
                             "(default: rules/training/complaints.csv)")
    parser.add_argument("--out", type=Path, default=None,
                        help="where to write the weights (default: the shipped model)")
    parser.add_argument("--sentence", action="store_true",
                        help="train the optional sentence model's head instead, and write "
                             "its out-of-fold opinion of each post beside the CSV for the "
                             "word model (needs mentionwatch[sentence]; --out defaults to "
                             "the shipped head)")
    parser.add_argument("--score", metavar="TEXT", help="score TEXT with the shipped model "
                        "and show the features that weighed most, instead of training")
    args = parser.parse_args(argv)
    data = args.data or shipped_training()
    if args.sentence and args.score is None:
        from mentionwatch.rules_engine import sentence

        head, opinions = sentence.train_file(data)
        out = args.out or sentence.HEAD_PATH
        out.write_text(head.to_json(), encoding="utf-8")
        write_teacher(teacher_path(data), opinions)
        print(f"wrote {out}: a head of {len(head.weights)} weights from "
              f"{head.trained_on['rows']} posts")
        print(f"wrote {teacher_path(data)}: the teacher's opinion of each post; now retrain "
              "the word model: python -m mentionwatch.rules_engine.train")
        return 0
    if args.score is None:
        model = train_file(data, default_lexicon(), teacher=word_teacher(data), l2=L2)
        args.out = args.out or MODEL_PATH
        args.out.write_text(model.to_json(), encoding="utf-8")
        print(f"wrote {args.out}: {len(model.weights)} weights from {model.trained_on['rows']}"
              " posts")
        return 0
    from mentionwatch.rules_engine.sentiment import Sentiment

    sentiment = Sentiment().compound(args.score)
    model = default_model()
    feats = model.features(args.score, sentiment)
    words = model.score(feats)
    if args.sentence:
        from mentionwatch.rules_engine.sentence import SentenceScorer, combine

        other = SentenceScorer().scores([args.score])[0]
        print(f"complaint_score {combine(words, other):.3f} (words {words:.3f}, sentence model "
              f"{other:.3f})")
    else:
        print(f"complaint_score {words:.3f}")
    for feat, weight in model.explain(feats, top=8):
        print(f"  {weight:+.2f}  {feat}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BrokenPipeError:  # `... --score TEXT | head`: the reader has what it wanted
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 (Python's own advice for this case)
        sys.exit(0)
