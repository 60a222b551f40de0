"""A team's own decisions as labelled posts, to retrain the complaint classifier on them.

Every reply a person approved and every mention dismissed as not relevant or spam says
something about what counts as a complaint *for this brand*, in its customers' own words:

- an approved reply (or one marked as answered at the source, for feeds) to a mention
  flagged complaint or crisis: label 1 (a complaint, and the team answered it as one);
- the same for a mention flagged question or praise: label 0 (an answered mention no rule
  flagged is no label: it mattered, but as what?);
- a mention dismissed as "not relevant" or "spam": label 0 (an undone dismissal, or one
  "handled elsewhere", says nothing).

Only a mention's latest such decision counts, with the flag the mention had when it was taken
(so a later `rules rescore` does not relabel it). `mentionwatch rules train` adds these to the
shipped training posts and writes a model for `[rules] complaint_model_file`.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select

from mentionwatch.models import AuditEvent, Mention
from mentionwatch.store import Store

#: Dismissal reasons that say "this is not a complaint we answer".
NOT_A_COMPLAINT = ("not relevant", "spam")
COMPLAINT_FLAGS = ("complaint", "crisis")


@dataclass(frozen=True, slots=True)
class Decision:
    mention_id: int
    text: str
    label: int
    kind: str


def _latest(store: Store) -> dict[int, tuple[str, str | None]]:
    """Mention id -> its latest decision ("approve" for answered, or the dismissal reason)
    and the flag the mention had when it was taken (None in events older than that field)."""
    latest: dict[int, tuple[str, str | None]] = {}
    query = (select(AuditEvent.mention_id, AuditEvent.event, AuditEvent.details)
             .where(AuditEvent.event.in_(("approve", "replied_elsewhere", "dismiss",
                                          "undo_dismiss")),
                    AuditEvent.mention_id.is_not(None))
             .order_by(AuditEvent.at, AuditEvent.id))
    with store.session(readonly=True) as session:
        for mention_id, event, details in session.execute(query):
            details = details or {}
            reason, flag = details.get("reason"), details.get("flag")
            if event in ("approve", "replied_elsewhere"):
                latest[mention_id] = ("approve", flag)
            elif event == "dismiss" and reason in NOT_A_COMPLAINT:
                latest[mention_id] = (str(reason), flag)
            else:  # undone, or dismissed for a reason that is no label
                latest.pop(mention_id, None)
    return latest


def decisions(store: Store) -> list[Decision]:
    """The labelled posts, in mention order."""
    latest = _latest(store)
    ids = sorted(latest)
    out: list[Decision] = []
    with store.session(readonly=True) as session:
        for start in range(0, len(ids), 500):
            chunk = ids[start:start + 500]
            rows = session.execute(select(Mention.id, Mention.title, Mention.text, Mention.flag)
                                   .where(Mention.id.in_(chunk)).order_by(Mention.id))
            for mention_id, title, text, flag in rows:
                body = f"{title}\n{text}" if title else (text or "")
                if not body.strip():
                    continue
                decision, flag_then = latest[mention_id]
                if decision == "approve":
                    flag = flag_then or flag  # as the person saw it, when recorded
                    if flag is None:
                        # Answering a mention no rule flagged says it mattered, not whether
                        # it was a complaint or a question: no label.
                        continue
                    complaint = flag in COMPLAINT_FLAGS
                    out.append(Decision(mention_id, body, int(complaint), f"answered-{flag}"))
                else:
                    out.append(Decision(mention_id, body, 0, f"dismissed-{decision}"))
    return out


def write_training(path: Path, found: Iterable[Decision],
                   shipped: Path | None = None) -> tuple[int, int]:
    """Write a training CSV (`text,label,kind,set`): the shipped posts (when given), then the
    decisions. Returns (shipped rows, decision rows)."""
    base = 0
    count = 0
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "label", "kind", "set"])
        if shipped is not None:
            with shipped.open(encoding="utf-8", newline="") as source:
                for record in csv.DictReader(source):
                    writer.writerow([record["text"], record["label"], record.get("kind", ""),
                                     record.get("set", "shipped")])
                    base += 1
        for decision in found:
            writer.writerow([decision.text, decision.label, decision.kind, "decisions"])
            count += 1
    return base, count
