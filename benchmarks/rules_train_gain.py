"""What `mentionwatch rules train` buys: the word model retrained on a team's decisions.

    python benchmarks/rules_train_gain.py --data PATH/complaints-data.csv

No team's audit trail exists to measure on, so the labelled benchmark file stands in (read from
a path, never copied into this repository; see rules_quality.py). Posts of its "tune" half play
a team's decisions: the posts the default packs flag (complaint, crisis, question, praise:
what reaches a person's queue), each labelled as a person who reads it would decide (its
researchers' label), taken in a fixed order (by a hash of the text), `--sizes` of them.
They go through the same code as `rules train`: the decisions are added to the shipped posts
(`decisions.write_training`) and the word model is trained on both, with the shipped teacher
file. Each model then runs the default packs over the "report" half, which no decision came
from. `--everything` lets every tune-half post be a decision, flagged or not.

The stand-in differs from a real team's trail: its posts name many brands, not one, and it
holds tweets not written to any brand. So this says how fast the model learns from decisions,
not what one brand will see.

Last line: {"sizes": [...], "precision": [...], "recall": [...], "macro_f1": [...], ...}.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import tempfile
import time
from pathlib import Path

from _common import emit
from rules_quality import f1, facts_of, predict_all, read_rows

from mentionwatch.decisions import Decision, write_training
from mentionwatch.resources import rules_dir
from mentionwatch.rules_engine import BrandFacts, Engine, classifier, load_packs
from mentionwatch.rules_engine.train import L2, default_lexicon, shipped_training, word_teacher


def figures(engine: Engine, rows: list[tuple[str, int, str]]) -> tuple[float, float, float]:
    tp = fp = fn = tn = 0
    for (_, label, _), (guess, _) in zip(rows, predict_all(engine, [t for t, _, _ in rows]),
                                         strict=True):
        tp += guess == 1 and label == 1
        fp += guess == 1 and label == 0
        fn += guess == 0 and label == 1
        tn += guess == 0 and label == 0
    precision, recall, f1_pos = f1(tp, fp, fn)
    f1_neg = f1(tn, fn, fp)[2]
    return precision, recall, (f1_pos + f1_neg) / 2


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, required=True, help="the labelled CSV file")
    parser.add_argument("--sizes", default="0,100,200,400,all",
                        help="how many decisions, comma-separated ('all': every one there is)")
    parser.add_argument("--everything", action="store_true",
                        help="every tune-half post may be a decision, not only flagged ones")
    args = parser.parse_args()
    if not args.data.is_file():
        sys.exit(f"{args.data}: no such file")
    packs = load_packs([rules_dir()])
    brand = BrandFacts("Brand")
    shipped_engine = Engine(packs, brand, {})
    tune = read_rows(args.data, "tune")
    report = read_rows(args.data, "report")
    # What reaches a person: the posts the shipped packs flag (any flag).
    flagged: list[bool] = []
    for start in range(0, len(tune), 500):
        flagged += [j.flag is not None for j in shipped_engine.judge(
            [facts_of(t) for t, _, _ in tune[start:start + 500]])]
    pool = [(text, label) for (text, label, _), seen in zip(tune, flagged, strict=True)
            if seen or args.everything]
    pool.sort(key=lambda row: hashlib.sha256(row[0].encode("utf-8")).hexdigest())
    try:
        sizes = [len(pool) if s.strip() == "all" else min(int(s), len(pool))
                 for s in args.sizes.split(",")]
    except ValueError:
        sys.exit(f"--sizes {args.sizes!r}: expected numbers or 'all', comma-separated")
    shipped_csv = shipped_training()
    print(f"decisions from the tune half: {len(pool)} "
          f"({'every post' if args.everything else 'the posts the packs flag'}, "
          f"{sum(label for _, label in pool)} complaints); scored on the report half "
          f"({len(report)} posts)")
    print(f"{'decisions':>9}  {'precision':>9}  {'recall':>6}  {'macro F1':>8}  {'train':>6}")
    results: dict[str, list[float]] = {"precision": [], "recall": [], "macro_f1": []}
    with tempfile.TemporaryDirectory() as tmp:
        for size in sizes:
            started = time.perf_counter()
            if size == 0:
                model = classifier.default_model()
            else:
                data = Path(tmp) / f"decisions-{size}.csv"
                found = [Decision(i, text, label, "decision")
                         for i, (text, label) in enumerate(pool[:size])]
                write_training(data, found, shipped_csv)
                model = classifier.train_file(data, default_lexicon(),
                                              teacher=word_teacher(data), l2=L2)
            took = time.perf_counter() - started
            p, r, m = figures(Engine(packs, brand, {}, model=model), report)
            for key, value in zip(results, (p, r, m), strict=True):
                results[key].append(round(value, 4))
            print(f"{size:>9}  {p:>9.3f}  {r:>6.3f}  {m:>8.3f}  {took:>5.0f}s")
    emit({"sizes": sizes, **results, "pool": len(pool), "everything": args.everything,
          "n_report": len(report)})


if __name__ == "__main__":
    main()
