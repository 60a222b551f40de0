"""What the rules engine says about a mention. Plain values; the store writes them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

FLAGS = ("crisis", "complaint", "question", "praise", "spam", "ignore")


@dataclass(frozen=True, slots=True)
class MentionFacts:
    """A mention as the rules engine sees it: values only, no database handles."""

    source: str
    source_kind: str
    text: str
    title: str | None
    url: str | None
    author_handle: str | None
    author_name: str | None
    followers: int | None
    verified: bool | None
    language: str | None
    created_at: datetime
    likes: int
    reposts: int
    replies: int
    is_reply_to_brand: bool
    matched_terms: tuple[str, ...] = ()
    #: Complaints by the same author in the recent past, as (created_at, flag) pairs.
    author_history: tuple[tuple[datetime, str], ...] = ()


@dataclass(frozen=True, slots=True)
class RuleHit:
    rule: str
    pack: str | None
    flag: str
    severity: float
    alert: bool
    explanation: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Judgement:
    """The outcome for one mention: its flag, priority, why, and the drafted replies."""

    flag: str | None
    priority: float
    sentiment: float | None
    hits: tuple[RuleHit, ...] = ()
    public_draft: str | None = None
    private_draft: str | None = None
    private_channel: str | None = None
    draft_rule: str | None = None
    explanation: dict[str, Any] = field(default_factory=dict)


class Judge(Protocol):
    """The rules engine as the pipeline calls it: pure, values in and values out."""

    #: How many days of an author's earlier complaints the engine wants to see (0: none).
    history_days: int

    def judge(self, mentions: Sequence[MentionFacts]) -> Sequence[Judgement]: ...
