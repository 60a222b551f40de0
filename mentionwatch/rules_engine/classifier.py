"""A small, explainable complaint classifier: logistic regression over words and word pairs.

Rules find complaints that use complaint words. Many do not ("thanks @airline for the 4 hour
wait", "day 6 and still no parcel"), and many posts with angry words are not complaints at a
company ("mondays are the worst"). This model gives each mention a `complaint_score` (0..1),
which rule packs use as a condition like any other (`complaint_score_at_least = 0.6`).

- Features are binary: lower-cased words (and ?, !, emoji), adjacent word pairs ("still
  waiting", "not working"), two shapes (it starts with a handle; a word in CAPS) and the VADER
  sentiment band the engine already computed. Handles, links and numbers are replaced by
  placeholders, so the model learns "<user> my order <num>" rather than any one brand.
- The score is sigmoid(bias + sum of the weights of the features present): a dictionary look-up
  per token, about 15 µs a post, CPU only, no downloads.
- Every score is explained by the features that pushed it most (`explain`).
- The weights ship in `complaint_model.json`, trained by `python -m
  mentionwatch.rules_engine.train` from `rules/training/complaints.csv`, posts
  written by this project's team for the purpose (see its SOURCES.md). Training is
  deterministic: the same CSV gives the same file (a test checks it).
- Each post's target is half its writer's label and half the sentence model's opinion of it
  (`complaints.teacher.csv`, made by a sentence model that did not see the post: see
  sentence.py). The word model learns from the teacher how sure to be of each post, which
  raised its precision on real posts; it still runs, and trains, without PyTorch.
"""

from __future__ import annotations

import csv
import functools
import hashlib
import json
import math
import random
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from itertools import repeat
from pathlib import Path
from typing import Any

from mentionwatch.terms import TermMatcher, normalise_term

MODEL_PATH = Path(__file__).with_name("complaint_model.json")
FORMAT = 1
#: The share of a training target that is the teacher's opinion of the post (the rest is
#: its label); chosen on the quality benchmark's tune half (0.3 to 0.7 differ by 0.003).
TEACHER_WEIGHT = 0.5

#: One pass over the lower-cased text; each token's first character says what it is.
_TOKEN = re.compile(
    r"https?://\S+|www\.\S+"              # links
    r"|@\w+"                               # handles
    r"|#[^\W\d_]\w*"                       # hashtags (not "#12345")
    r"|[$£€]?\d[\d.,:/]*[a-z]*"              # numbers, prices, times, "3rd", "6pm"
    r"|[a-z]+(?:'[a-z]+)*"                  # words, with apostrophes
    r"|[?!\U0001F300-\U0001FAFF\u2600-\u27BF]"  # ? ! and emoji
)
#: A handle that names a help desk ("@AmazonHelp", "@AskPlayStation", "@BTCare"): people write
#: to those when something went wrong, or to ask, more than to chat.
_HELP_DESK = re.compile(r"^@ask|help|support|care(?:s|_|$)|serv|svc|assist")
#: A shouted word: three or more capitals on their own ("AGAIN", "SIX HOURS").
_CAPS = re.compile(r"(?<!\w)[A-Z]{3,}(?!\w)")
#: Bands of the VADER compound score, one feature each (upper bound, name).
_BANDS = ((-0.5, "sent:neg"), (-0.05, "sent:mneg"), (0.05, "sent:neu"), (0.5, "sent:mpos"))


def _band(sentiment: float) -> str:
    for upper, name in _BANDS:
        if sentiment <= upper:
            return name
    return "sent:pos"


def _scan(text: str) -> tuple[list[str], list[str]]:
    """The token sequence (a hashtag as its bare word) and the hashtags, lower-cased."""
    seq: list[str] = []
    tags: list[str] = []
    for tok in _TOKEN.findall(text.lower().replace("\u2019", "'")):
        first = tok[0]
        if first == "@":
            seq.append("<desk>" if _HELP_DESK.search(tok) else "<user>")
        elif first == "#":
            tags.append(tok)
            seq.append(tok[1:])
        elif first.isdigit() or first in "$£€":
            seq.append("<num>")
        elif first in "hw" and ("://" in tok or tok.startswith("www.")):
            seq.append("<url>")
        else:
            seq.append(tok)
    return seq, tags


def tokens(text: str) -> list[str]:
    """The post as normalised tokens: words, <url>, <user>, <num>, ? ! and emoji; a hashtag
    counts as its word here (`features` adds the `#tag` itself)."""
    return _scan(text)[0]


def features(text: str, sentiment: float | None = None) -> set[str]:
    """The binary features of one post (a set: presence, not counts)."""
    seq, tags = _scan(text)
    feats = {f"{a} {b}" for a, b in zip(["<s>", *seq], seq, strict=False)}
    feats.update(seq)
    feats.update(tags)
    if seq and seq[0] in ("<user>", "<desk>"):
        feats.add("shape:starts-with-handle")
    if _CAPS.search(text):
        feats.add("shape:caps-word")
    if sentiment is not None:
        feats.add(_band(sentiment))
    return feats


_READABLE = {"shape:starts-with-handle": "starts with a handle",
             "shape:caps-word": "a word in CAPS", "sent:neg": "sentiment negative",
             "sent:mneg": "sentiment slightly negative", "sent:neu": "sentiment neutral",
             "sent:mpos": "sentiment slightly positive", "sent:pos": "sentiment positive"}
_PLACEHOLDERS = {"<user>": "@handle", "<desk>": "@help-desk", "<url>": "link", "<num>": "N"}


def sigmoid(z: float) -> float:
    """The logistic function, its argument clamped so exp() cannot overflow."""
    return 1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, z))))


@functools.lru_cache(maxsize=8192)
def readable(feature: str) -> str:
    """A feature as a person reads it: `<s> <user> my` -> `(start) @handle my`."""
    if feature in _READABLE:
        return _READABLE[feature]
    if feature.startswith("terms:"):
        return f"{feature[6:]} terms"
    words = [_PLACEHOLDERS.get(w, w) for w in feature.split(" ")]
    if words[0] == "<s>":
        words[0] = "(start)"
    return " ".join(words)


def features_text(top: Iterable[Sequence[Any]]) -> str:
    """Features with their weights as a person reads them: `@handle +1.17, outage terms
    +1.08` (from `Model.explain`, or the same pairs read back from JSON)."""
    return ", ".join(f"{readable(str(feature))} {float(weight):+.2f}" for feature, weight in top)


@dataclass(frozen=True, slots=True)
class Model:
    """Weights of the logistic regression, the term lexicon it was trained with, and what it
    was trained on."""

    bias: float
    weights: dict[str, float]
    trained_on: dict[str, object]
    #: Normalised term -> its feature (`terms:<rule>`): the default packs' terms when the model
    #: was trained, frozen into the model so that editing a pack later does not shift its
    #: features. A rare complaint word then still counts through its rule's feature.
    lexicon: dict[str, str] = field(default_factory=dict)
    #: Every feature's place when ordered by strength (|weight|, then name): explaining a
    #: post is then one sort of its few features by a dictionary look-up.
    rank: dict[str, int] = field(init=False, repr=False, compare=False)
    _matcher: TermMatcher = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        order = sorted(self.weights, key=lambda f: (-abs(self.weights[f]), f))
        object.__setattr__(self, "rank", {f: i for i, f in enumerate(order)})
        object.__setattr__(self, "_matcher", TermMatcher(self.lexicon))

    def features(self, text: str, sentiment: float | None = None,
                 found: Iterable[str] | None = None) -> set[str]:
        """`features(text, sentiment)` plus one `terms:<rule>` feature per lexicon rule whose
        terms occur. `found` is the normalised terms a caller's matcher already found in the
        text (the engine's, which includes the lexicon's terms); without it the model looks."""
        feats = features(text, sentiment)
        lexicon = self.lexicon
        if lexicon:
            terms = self._matcher.find(text) if found is None else found
            feats.update([lexicon[t] for t in terms if t in lexicon])
        return feats

    def score(self, feats: Iterable[str]) -> float:
        return sigmoid(self.bias + sum(map(self.weights.get, feats, repeat(0.0))))

    def explain(self, feats: Iterable[str], top: int = 4) -> list[tuple[str, float]]:
        """The features that pushed the score most, strongest first, with their weights."""
        rank, weights = self.rank, self.weights
        strongest = sorted(filter(rank.__contains__, feats), key=rank.__getitem__)[:top]
        return [(f, round(weights[f], 2)) for f in strongest]

    def to_json(self) -> str:
        data = {"format": FORMAT, "bias": round(self.bias, 6),
                "weights": {f: round(w, 6) for f, w in sorted(self.weights.items())},
                "lexicon": dict(sorted(self.lexicon.items())),
                "trained_on": self.trained_on}
        return json.dumps(data, indent=0, sort_keys=True, ensure_ascii=False) + "\n"

    @classmethod
    def from_json(cls, text: str) -> Model:
        data = json.loads(text)
        if data.get("format") != FORMAT:
            raise ValueError(f"unknown complaint model format {data.get('format')!r}")
        return cls(float(data["bias"]), {str(k): float(v) for k, v in data["weights"].items()},
                   dict(data.get("trained_on", {})),
                   {str(k): str(v) for k, v in data.get("lexicon", {}).items()})


@functools.cache
def default_model() -> Model:
    """The shipped model (read once per process)."""
    return Model.from_json(MODEL_PATH.read_text(encoding="utf-8"))


# ---------------------------------------------------------------------- training


def read_training(path: Path) -> list[tuple[str, int]]:
    """Rows `text,label[,kind]` with a header; label 1 = complaint."""
    rows: list[tuple[str, int]] = []
    with path.open(encoding="utf-8", newline="") as handle:
        for number, record in enumerate(csv.DictReader(handle), start=2):
            label = (record.get("label") or "").strip()
            if label not in ("0", "1") or not (record.get("text") or "").strip():
                raise ValueError(f"{path}:{number}: expected text and label 0 or 1")
            rows.append((record["text"], int(label)))
    return rows


def text_key(text: str) -> str:
    """A post's key in a teacher file: the start of its text's SHA-256."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def teacher_path(training: Path) -> Path:
    """Where the teacher's opinions of a training CSV live: beside it."""
    return training.with_suffix(".teacher.csv")


def read_teacher(path: Path) -> dict[str, float]:
    """Rows `key,teacher` with a header: a post's text key and the teacher's probability."""
    opinions: dict[str, float] = {}
    with path.open(encoding="utf-8", newline="") as handle:
        for number, record in enumerate(csv.DictReader(handle), start=2):
            try:
                value = float(record.get("teacher") or "")
            except ValueError:
                value = -1.0
            key = (record.get("key") or "").strip()
            if not key or not 0.0 <= value <= 1.0:
                raise ValueError(f"{path}:{number}: expected a key and a probability from 0 to 1")
            opinions[key] = value
    return opinions


def write_teacher(path: Path, opinions: dict[str, float]) -> None:
    """Write a teacher file, sorted by key (so the same opinions give the same file)."""
    with path.open("w", encoding="utf-8", newline="") as handle:
        out = csv.writer(handle, lineterminator="\n")
        out.writerow(["key", "teacher"])
        out.writerows((key, f"{opinions[key]:.4f}") for key in sorted(opinions))


def lexicon_of(rules: Iterable[tuple[str, Iterable[str]]]) -> dict[str, str]:
    """Normalised term -> `terms:<rule>` for (rule name, its terms) pairs; a term in several
    rules belongs to the first."""
    lexicon: dict[str, str] = {}
    for name, terms in rules:
        for term in terms:
            lexicon.setdefault(normalise_term(term), f"terms:{name}")
    return lexicon


def train(samples: Sequence[tuple[set[str], float]], *, epochs: int = 40, l2: float = 1e-4,
          rate: float = 0.1, min_count: int = 2, seed: int = 7) -> tuple[float, dict[str, float]]:
    """Logistic regression by AdaGrad SGD, deterministic for a given seed and input order.
    A target may lie between 0 and 1 (a soft label).

    `l2` is the penalty per post: a feature seen in k of n posts is shrunk by `l2 * n / k` at
    each of them, so a rare feature is held back as hard as a common one (an L2 applied only
    where a feature occurs would let a word seen twice grow large)."""
    counts = Counter(f for feats, _ in samples for f in feats)
    kept = [([f for f in sorted(feats) if counts[f] >= min_count], y) for feats, y in samples]
    shrink = {f: l2 * len(samples) / c for f, c in counts.items() if c >= min_count}
    weights: dict[str, float] = {}
    grads: dict[str, float] = {}
    bias, bias_grad = 0.0, 1e-8
    order = list(range(len(kept)))
    rng = random.Random(seed)
    for _ in range(epochs):
        rng.shuffle(order)
        for index in order:
            feats, y = kept[index]
            g = sigmoid(bias + sum(weights.get(f, 0.0) for f in feats)) - y
            bias_grad += g * g
            bias -= rate * g / math.sqrt(bias_grad)
            for f in feats:
                w = weights.get(f, 0.0)
                gf = g + shrink[f] * w
                acc = grads.get(f, 1e-8) + gf * gf
                grads[f] = acc
                weights[f] = w - rate * gf / math.sqrt(acc)
    return bias, {f: w for f, w in weights.items() if abs(w) >= 1e-3}


def train_file(path: Path, lexicon: dict[str, str] | None = None, sentiment: bool = True,
               teacher: Path | None = None, **options: float) -> Model:
    """Train on a CSV; `teacher`: a teacher file whose opinions soften the targets of the
    posts it knows (the others keep their labels)."""
    from mentionwatch.rules_engine.sentiment import Sentiment

    rows = read_training(path)
    opinions = read_teacher(teacher) if teacher is not None else {}
    vader = Sentiment() if sentiment else None
    blank = Model(0.0, {}, {}, dict(lexicon or {}))
    samples: list[tuple[set[str], float]] = []
    taught = 0
    for text, y in rows:
        target: float = y
        opinion = opinions.get(text_key(text))
        if opinion is not None:
            target = (1.0 - TEACHER_WEIGHT) * y + TEACHER_WEIGHT * opinion
            taught += 1
        feats = blank.features(text, vader.compound(text) if vader else None)
        samples.append((feats, target))
    bias, weights = train(samples, **options)  # type: ignore[arg-type]
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    trained: dict[str, object] = {"file": path.name, "rows": len(rows),
                                  "complaints": sum(y for _, y in rows), "sha256": digest}
    if teacher is not None:
        trained["teacher"] = {"file": teacher.name, "rows": taught, "weight": TEACHER_WEIGHT,
                              "sha256": hashlib.sha256(teacher.read_bytes()).hexdigest()}
    return Model(bias, weights, trained, blank.lexicon)
