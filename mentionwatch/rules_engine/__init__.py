"""The rules engine: rule packs in, flags, explainable priorities and drafted replies out.

Pure evaluation (no I/O) lives in `engine.py`; `load_judge` reads the packs a config names.
Nothing here imports the TUI.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mentionwatch.config import Config
from mentionwatch.errors import RuleError
from mentionwatch.registry import available_kinds, connector_class
from mentionwatch.resources import rules_dir
from mentionwatch.rules_engine import classifier
from mentionwatch.rules_engine.engine import BrandFacts, Engine
from mentionwatch.rules_engine.packs import RulePack, load_pack, load_packs

if TYPE_CHECKING:
    from mentionwatch.connector import StoredMentionRef

__all__ = ["BrandFacts", "Engine", "RulePack", "load_judge", "load_pack", "load_packs",
           "measure_private", "measure_reply", "pack_dirs", "reply_length", "reply_limit"]


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
def _connector(kind: str) -> type[Any] | None:
    """The connector class of a source kind; None for an unknown one, or a third-party one
    that cannot load (not our concern here)."""
    if kind not in available_kinds():
        return None
    try:
        cls: type[Any] = connector_class(kind)
    except ImportError:
        return None
    return cls


def reply_length(kind: str) -> Callable[[str], int]:
    """How a source kind counts a reply's length (X: CJK and emoji count twice; Bluesky:
    graphemes; Mastodon: links as 23), from its connector; plain characters when it says
    nothing."""
    length: Callable[[str], int] = getattr(_connector(kind), "reply_length", len)
    return length


def reply_limit(kind: str) -> int | None:
    """Public reply length limit of a source kind, from its connector (None: unknown)."""
    limit: int | None = getattr(_connector(kind), "reply_limit", None)
    return limit


def measure_reply(kind: str, text: str, mention: StoredMentionRef | None = None,
                  state: Mapping[str, Any] | None = None) -> tuple[int, int | None]:
    """A public reply's length and the limit it is held to, as its source will count them:
    the text its connector posts for `mention` (Mastodon puts `@author ` in front of a reply
    that does not name them), and the source's own limit where its connector stored one in
    the source's `state` (a Mastodon instance's). Approval, the TUI's length label and
    `rules check` all measure with this, so what passes one passes the others."""
    return _measure("reply", kind, text, mention, state)


def measure_private(kind: str, text: str, mention: StoredMentionRef | None = None,
                    state: Mapping[str, Any] | None = None) -> tuple[int, int | None]:
    """A private follow-up's length and limit, as its source will count them (an X or
    Bluesky message, a Reddit message, a Mastodon direct post with `@author ` in front,
    against the instance's limit). The connector's `private_*` counterparts of the
    `reply_*` attributes say how; (length, None) when it states no limit."""
    return _measure("private", kind, text, mention, state)


def _measure(action: str, kind: str, text: str, mention: StoredMentionRef | None,
             state: Mapping[str, Any] | None) -> tuple[int, int | None]:
    """Length and limit from the connector's `{action}_as_posted`, `{action}_limit_for`,
    `{action}_limit` and `{action}_length` (plain characters, no limit, when it has none)."""
    cls = _connector(kind)
    as_posted = getattr(cls, f"{action}_as_posted", None)
    if mention is not None and as_posted is not None:
        text = as_posted(text, mention)
    limit_for = getattr(cls, f"{action}_limit_for", None)
    limit: int | None = (limit_for(state) if limit_for is not None
                         else getattr(cls, f"{action}_limit", None))
    length: Callable[[str], int] = getattr(cls, f"{action}_length", len)
    return length(text), limit


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
                  press_sources=[s.name for s in config.sources if s.press],
                  reply_prefixed=lambda kind: hasattr(_connector(kind), "reply_as_posted"))
