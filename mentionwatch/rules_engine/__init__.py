"""The rules engine: rule packs in, flags, explainable priorities and drafted replies out.

Pure evaluation (no I/O) lives in `engine.py`; `load_judge` reads the packs a config names.
Nothing here imports the TUI.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path

from mentionwatch.config import Config
from mentionwatch.errors import RuleError
from mentionwatch.registry import available_kinds, connector_class
from mentionwatch.resources import rules_dir
from mentionwatch.rules_engine import classifier
from mentionwatch.rules_engine.engine import BrandFacts, Engine
from mentionwatch.rules_engine.packs import RulePack, load_pack, load_packs

__all__ = ["BrandFacts", "Engine", "RulePack", "load_judge", "load_pack", "load_packs",
           "pack_dirs"]


def pack_dirs(config: Config) -> list[Path]:
    """The default pack folder (unless switched off) and the user's folders."""
    base = config.path.parent if config.path else Path.cwd()
    dirs = [rules_dir()] if config.rules.defaults else []
    dirs += [d if d.is_absolute() else base / d for d in config.rules.dirs]
    return dirs


def _beside_config(config: Config, path: Path | None) -> Path | None:
    if path is not None and not path.is_absolute():
        path = (config.path.parent if config.path else Path.cwd()) / path
    return path


def sentence_dir(config: Config) -> Path | None:
    """The configured folder of the sentence model (relative to the config), if any."""
    return _beside_config(config, config.rules.sentence_model_dir)


def word_model(config: Config) -> classifier.Model | None:
    """The word model `[rules] complaint_model_file` names (None: the shipped one). Raises
    RuleError naming the file when it cannot be read."""
    path = _beside_config(config, config.rules.complaint_model_file)
    if path is None:
        return None
    try:
        return classifier.Model.from_json(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise RuleError(f"[rules] complaint_model_file {path}: cannot be read as a complaint "
                        f"model ({type(exc).__name__}: {str(exc)[:160]}).",
                        hint="Write one with `mentionwatch rules train --out PATH`, or remove "
                             "the setting to use the shipped model.") from None


@functools.cache
def reply_length(kind: str) -> Callable[[str], int]:
    """How a source kind counts a reply's length (X: CJK and emoji count twice; Bluesky:
    graphemes), from its connector; plain characters when it says nothing."""
    try:
        if kind in available_kinds():
            return getattr(connector_class(kind), "reply_length", len)
    except ImportError:
        pass
    return len


@functools.cache
def reply_limit(kind: str) -> int | None:
    """Public reply length limit of a source kind, from its connector (None: unknown)."""
    if kind not in available_kinds():
        return None
    try:
        return getattr(connector_class(kind), "reply_limit", None)
    except ImportError:  # a third-party connector that cannot load is not our concern here
        return None


def load_judge(config: Config) -> Engine:
    """Load and check the configured packs. Raises RuleError naming the file and rule."""
    packs = load_packs(pack_dirs(config))
    if not packs:
        raise RuleError("No rule packs found.",
                        hint="Enable [rules] defaults or add a folder to [rules] dirs.")
    brand = config.brand
    sentence = None
    if config.rules.complaint_model == "words+sentence":
        from mentionwatch.rules_engine.sentence import SentenceScorer

        sentence = SentenceScorer(sentence_dir(config))
    return Engine(packs, BrandFacts(brand.name, brand.support_email, brand.support_phone,
                                    brand.support_hours), reply_limit, sentence=sentence,
                  model=word_model(config), reply_lengths=reply_length,
                  press_sources=[s.name for s in config.sources if s.press])
