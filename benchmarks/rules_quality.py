"""Complaint detection quality of the default rule packs on labelled posts.

    python benchmarks/rules_quality.py --data PATH/complaints-data.csv

The data (Preotiuc-Pietro et al., ACL 2019: CSV rows `tweet_id,text,label,domain`, no header,
label 1 = complaint) has no licence for redistribution, so it is never copied into this
repository: pass its path. Rows are split deterministically by a hash of the tweet id (even
first byte = "tune", odd = "report"); the figures below are for the REPORT half, which the
packs and the classifier's thresholds were not tuned on. The classifier itself was trained only
on the project's own posts (rules/training/complaints.csv), never on this file.
"complaint" or "crisis" counts as predicted complaint.

Last line: {"precision", "recall", "f1", "macro_f1", "n", "split"}.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import html
import sys
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path

from _common import emit

from mentionwatch.judgement import MentionFacts
from mentionwatch.resources import rules_dir
from mentionwatch.rules_engine import BrandFacts, Engine, load_packs

NOW = datetime.now(UTC)


def f1(tp: int, fp: int, fn: int) -> tuple[float, float, float]:
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    score = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, score


def read_rows(path: Path, split: str) -> list[tuple[str, int, str]]:
    rows = []
    with path.open(encoding="utf-8", newline="") as handle:
        for record in csv.reader(handle):
            if len(record) < 4 or not record[0].strip().isdigit():
                continue
            tweet_id, text, label, domain = record[0], record[1], record[2], record[3]
            # A hash of the id, not its parity: the shared copy was itself cut by alternate ids.
            digest = hashlib.sha256(tweet_id.strip().encode()).digest()[0]
            half = "tune" if digest % 2 == 0 else "report"
            if split in (half, "all"):
                rows.append((html.unescape(text), int(label), domain))
    return rows


def facts_of(text: str) -> MentionFacts:
    return MentionFacts(
        source="twitter", source_kind="twitter", text=text, title=None, url=None,
        author_handle="someone", author_name=None, followers=None, verified=None,
        language="en", created_at=NOW, likes=0, reposts=0, replies=0,
        is_reply_to_brand=False)


def predict_all(engine: Engine, texts: list[str]) -> list[tuple[int, float]]:
    """The packs' verdict (1 = complaint or crisis) and the complaint_score alone, per text,
    judged in batches as the pipeline does."""
    out: list[tuple[int, float]] = []
    for start in range(0, len(texts), 500):
        for judgement in engine.judge([facts_of(t) for t in texts[start:start + 500]]):
            score = float(judgement.explanation.get("complaint_score", 0.0))
            out.append((1 if judgement.flag in ("complaint", "crisis") else 0, score))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, required=True, help="the labelled CSV file")
    parser.add_argument("--split", choices=("report", "tune", "all"), default="report")
    parser.add_argument("--complaint-model", choices=("words", "words+sentence"),
                        default="words", help="what complaint_score is, as [rules] "
                        "complaint_model in the config (words+sentence needs "
                        "mentionwatch[sentence])")
    args = parser.parse_args()
    if not args.data.is_file():
        sys.exit(f"{args.data}: no such file")
    sentence = None
    if args.complaint_model == "words+sentence":
        from mentionwatch.rules_engine.sentence import SentenceScorer

        sentence = SentenceScorer()
    engine = Engine(load_packs([rules_dir()]), BrandFacts("Brand"), {}, sentence=sentence)
    rows = read_rows(args.data, args.split)
    tp = fp = fn = tn = 0
    alone = [0, 0, 0]  # the classifier alone at 0.5: tp, fp, fn
    per_domain: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    verdicts = predict_all(engine, [text for text, _, _ in rows])
    for (_, label, domain), (guess, score) in zip(rows, verdicts, strict=True):
        alone[0] += score >= 0.5 and label == 1
        alone[1] += score >= 0.5 and label == 0
        alone[2] += score < 0.5 and label == 1
        cell = {(1, 1): 0, (1, 0): 1, (0, 1): 2, (0, 0): 3}[(guess, label)]
        per_domain[domain][cell] += 1
        tp, fp, fn, tn = (tp + (cell == 0), fp + (cell == 1), fn + (cell == 2), tn + (cell == 3))
    precision, recall, f1_pos = f1(tp, fp, fn)
    _, _, f1_neg = f1(tn, fn, fp)
    macro = (f1_pos + f1_neg) / 2
    print(f"split: {args.split} half ({len(rows)} posts; tuned on: the 'tune' half only); "
          f"complaint_model: {args.complaint_model}")
    print(f"complaint  precision {precision:.3f}  recall {recall:.3f}  F1 {f1_pos:.3f}")
    print(f"macro F1 (complaint / not) {macro:.3f}")
    a_p, a_r, a_f = f1(*alone)
    print(f"(the classifier alone, complaint_score >= 0.5: precision {a_p:.3f}  recall {a_r:.3f}"
          f"  F1 {a_f:.3f})")
    print("confusion:            predicted complaint   predicted not")
    print(f"  labelled complaint  {tp:>19}   {fn:>13}")
    print(f"  labelled not        {fp:>19}   {tn:>13}")
    print("per domain (F1 complaint, n):")
    for domain, (dtp, dfp, dfn, dtn) in sorted(per_domain.items()):
        print(f"  {domain:<14} {f1(dtp, dfp, dfn)[2]:.3f}  n={dtp + dfp + dfn + dtn}")
    emit({"precision": round(precision, 4), "recall": round(recall, 4), "f1": round(f1_pos, 4),
          "macro_f1": round(macro, 4), "n": len(rows), "split": args.split,
          "complaint_model": args.complaint_model})


if __name__ == "__main__":
    main()
