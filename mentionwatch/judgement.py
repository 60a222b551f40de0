"""What the rules engine says about a mention. Plain values; the store writes them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

FLAGS = ("crisis", "complaint", "question", "praise", "spam", "ignore")
#: Source kinds where people are addressed by @handle (X, Mastodon, Bluesky). Elsewhere
#: (Reddit, Hacker News, feeds) the author is a user or display name: "@Acme Security Team"
#: misreads it.
AT_HANDLE_KINDS = frozenset({"twitter", "mastodon", "bluesky"})
#: Source kinds whose site has no direct messages, so a reply cannot ask for one (`{reach_us}`
#: asks for an email or a call there). A feed is most often a forum's, which has them.
NO_DM_KINDS = frozenset({"hackernews", "google_alerts"})


def author_label(handle: str | None, source_kind: str) -> str:
    """How drafts and alerts name an author: `@handle` on the kinds in AT_HANDLE_KINDS, the
    name as the source gives it elsewhere; "" when there is none."""
    name = (handle or "").strip()
    if source_kind in AT_HANDLE_KINDS and name:
        return "@" + name.lstrip("@")
    return name


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


# ------------------------------------------------------------------ explaining a judgement

#: The parts of a judgement's explanation stored with the mention: the numbers behind its
#: priority and its complaint score. (Its flag, priority and sentiment have columns of their
#: own, and each rule's reasons a row of its own.)
STORED_EXPLANATION = ("components", "weights", "complaint_score", "complaint_features",
                      "complaint_word_model", "complaint_sentence")


def stored_explanation(explanation: dict[str, Any]) -> dict[str, Any]:
    """What of a judgement's explanation the store keeps with the mention."""
    return {k: explanation[k] for k in STORED_EXPLANATION if k in explanation}


def reasons_text(why: dict[str, Any] | None) -> str:
    """A rule's reasons on one line: `terms: down, again; sentiment: -0.62 <= -0.3`."""
    return "; ".join(f"{k}: {', '.join(map(str, v)) if isinstance(v, list) else v}"
                     for k, v in (why or {}).items())


def priority_text(explanation: dict[str, Any] | None, priority: float) -> str | None:
    """The priority's formula with this mention's numbers in it, or None when the
    explanation has none (spam and ignored posts, or a mention stored before explanations
    were kept: `mentionwatch rules rescore` fills them in)."""
    parts = (explanation or {}).get("components") or {}
    weights = (explanation or {}).get("weights") or {}
    terms = [f"{weights[k]:.2f}×{k} {parts[k]:.3f}" for k in weights if k in parts]
    if not terms or "freshness" not in parts:
        return None
    return (f"priority = ({' + '.join(terms)}) × (0.5 + 0.5×freshness "
            f"{parts['freshness']:.3f}) = {priority:.3f}")


#: Shown instead of the formula for a mention judged before explanations were stored.
NOT_EXPLAINED = ("(judged by an older version, which did not keep the priority's numbers: "
                 "`mentionwatch rules rescore` fills them in)")


def explanation_lines(explanation: dict[str, Any] | None, priority: float,
                      flag: str | None) -> list[str]:
    """What the triage screen and `mentions show` print under the rules' reasons."""
    if explanation is None:
        return [NOT_EXPLAINED] if flag is not None else []
    return [line for line in (priority_text(explanation, priority),
                              complaint_text(explanation)) if line]


def complaint_text(explanation: dict[str, Any] | None) -> str | None:
    """`complaint score 0.91 (words 0.74 and sentence model 0.88 together): @handle +1.17,
    outage terms +1.08`, or None when the mention has no score."""
    explanation = explanation or {}
    score = explanation.get("complaint_score")
    if score is None:
        return None
    from mentionwatch.rules_engine.classifier import features_text
    from mentionwatch.rules_engine.sentence import together_text

    line = f"complaint score {score:.2f}"
    if explanation.get("complaint_sentence") is not None:
        both = together_text(explanation.get("complaint_word_model", 0.0),
                             explanation["complaint_sentence"])
        line += f" ({both})"
    features = explanation.get("complaint_features") or []
    if features:
        line += ": " + features_text(features)
    return line
