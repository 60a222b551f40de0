"""Write an alert email: a plain text part and a simple HTML part, built from stored values.

User text (mention text, author names, rule explanations, drafts) is data: it is HTML-escaped
in the HTML part, a subject built from it is cleaned to one bounded line, and in the plain
part it never starts a line (multi-line text is indented, one-line fields flattened), so a
mention cannot add headers, markup or lines that pass for the email's own fields.
"""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from datetime import datetime
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, make_msgid
from typing import Any
from urllib.parse import urlsplit

from mentionwatch.alerts.rules import clean_header
from mentionwatch.alerts.store import AlertRow, MentionView
from mentionwatch.judgement import author_label, complaint_text, priority_text, reasons_text
from mentionwatch.text import one_line

SUBJECT_PREFIX = "[mentionwatch] "
#: How a person opens the mention in the triage TUI.
TUI_COMMAND = "mentionwatch tui --mention {id}"
TEXT_LIMIT = 2000


def build_message(
    rows: Sequence[AlertRow],
    mentions: dict[int, MentionView],
    *,
    sender: str,
    recipients: Sequence[str],
    now: datetime,
) -> EmailMessage:
    """One email for `rows` (a digest when there are several)."""
    msg = EmailMessage(policy=SMTP)
    msg["Subject"] = subject_for(rows, mentions)
    msg["From"] = sender
    msg["To"] = ", ".join(recipients)
    msg["Date"] = format_datetime(now)
    msg["Message-ID"] = make_msgid(domain="mentionwatch.local")
    msg["X-Mentionwatch-Alerts"] = ",".join(str(r.id) for r in rows)
    sections = [_section(group, mentions.get(group[0].mention_id)
                         if group[0].mention_id else None) for group in _by_mention(rows)]
    intro = (f"{len(sections)} alerts from mentionwatch." if len(sections) > 1
             else "An alert from mentionwatch.")
    msg.set_content(_plain(intro, sections))
    msg.add_alternative(_html(intro, sections), subtype="html")
    return msg


def _by_mention(rows: Sequence[AlertRow]) -> list[list[AlertRow]]:
    """Several triggers for one mention (rule, priority, escalation) make one section."""
    groups: dict[object, list[AlertRow]] = {}
    for row in rows:
        groups.setdefault(row.mention_id if row.mention_id is not None else ("a", row.id),
                          []).append(row)
    return list(groups.values())


def subject_for(rows: Sequence[AlertRow], mentions: dict[int, MentionView]) -> str:
    first = rows[0]
    mention = mentions.get(first.mention_id) if first.mention_id else None
    about = first.headline
    if mention is not None:
        who = author_label(mention.author_handle, mention.source_kind) or "someone"
        about += f" from {who}: {mention.title or mention.text}"
    count = len(_by_mention(rows))
    if count > 1:
        about = f"{count} alerts: {about}"
    return clean_header(SUBJECT_PREFIX + about)


# A section is a title plus (label, value, kind) lines; kind "link" makes an <a> in HTML and
# "block" a preformatted paragraph.
Line = tuple[str, str, str]


def _section(group: list[AlertRow], mention: MentionView | None) -> tuple[str, list[Line]]:
    row = group[0]
    lines: list[Line] = [("What happened", "\n".join(r.headline for r in group), "block")]
    if mention is not None:
        lines.append(("Source", mention.source, "text"))
        author = author_label(mention.author_handle, mention.source_kind) or "unknown"
        if mention.author_name and mention.author_name != mention.author_handle:
            author += f" ({mention.author_name})"
        lines.append(("Author", author, "text"))
        reach = f"{mention.followers:,} followers" if mention.followers is not None else "unknown"
        if mention.verified:
            reach += ", verified"
        lines.append(("Reach", reach, "text"))
        lines.append(("Flag / priority",
                      f"{mention.flag or 'none'} / {mention.priority:g}", "text"))
        if mention.title:
            lines.append(("Title", mention.title, "text"))
        lines.append(("Mention", _cut(mention.text), "block"))
        lines.append(("Why flagged", _why(group, mention), "block"))
        if mention.public_draft:
            lines.append(("Drafted reply", _cut(mention.public_draft), "block"))
        if mention.private_draft:
            lines.append(("Drafted follow-up", _cut(mention.private_draft), "block"))
        if mention.url:
            lines.append(("Link", mention.url, "link"))
        lines.append(("Open in the TUI", TUI_COMMAND.format(id=mention.id), "code"))
    else:
        for key, value in row.details.items():
            lines.append((key.replace("_", " ").capitalize(), _value(value), "text"))
    for r in group:
        if r.trigger == "escalation" and r.details.get("backlog"):
            backlog = ", ".join(f"{n} {flag}" for flag, n in r.details["backlog"].items())
            lines.append(("Overdue backlog", backlog, "text"))
    return row.headline, lines


def _why(group: list[AlertRow], mention: MentionView) -> str:
    parts = ["trigger: " + ", ".join(r.trigger for r in group)]
    for rule, flag, alert, explanation in mention.reasons:
        text = f"rule {rule} -> {flag or '-'}" + (" (alert)" if alert else "")
        if explanation:
            text += ": " + reasons_text(explanation)
        parts.append(text)
    for row in group:
        if row.trigger == "priority" and "threshold" in row.details:
            parts.append(f"priority {mention.priority:g} >= threshold "
                         f"{row.details['threshold']:g}")
    for line in (priority_text(mention.explanation, mention.priority),
                 complaint_text(mention.explanation)):
        if line:
            parts.append(line)
    return "\n".join(parts)


def _value(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, default=str, sort_keys=True)


def _cut(text: str) -> str:
    return text if len(text) <= TEXT_LIMIT else text[: TEXT_LIMIT - 1] + "…"


def _plain(intro: str, sections: list[tuple[str, list[Line]]]) -> str:
    out = [intro, ""]
    for index, (title, lines) in enumerate(sections, 1):
        out.append(f"== {index}. {clean_header(title, 200)} ==")
        for label, value, kind in lines:
            # User text never starts a line: a block's lines are indented, and a one-line
            # value is made one line again (whatever is stored), so a feed item cannot
            # forge a "Link:" or "Reach:" line of ours.
            if kind == "block":
                out.append(f"{label}:")
                out.extend("    " + line for line in value.splitlines() or [""])
            else:
                out.append(f"{label}: {one_line(value)}")
        out.append("")
    out.append("-- mentionwatch (answer in the TUI; nothing is posted without approval)")
    return "\n".join(out) + "\n"


def _html(intro: str, sections: list[tuple[str, list[Line]]]) -> str:
    e = html.escape
    out = ["<!DOCTYPE html><html><body style=\"font-family: sans-serif\">", f"<p>{e(intro)}</p>"]
    for index, (title, lines) in enumerate(sections, 1):
        out.append(f"<h3>{index}. {e(title)}</h3><table cellpadding=\"4\">")
        for label, value, kind in lines:
            if kind == "block":
                cell = f"<pre style=\"white-space: pre-wrap\">{e(value)}</pre>"
            elif kind == "link" and urlsplit(value).scheme in ("http", "https"):
                cell = f"<a href=\"{e(value, quote=True)}\">{e(value)}</a>"
            elif kind == "code":
                cell = f"<code>{e(value)}</code>"
            else:
                cell = e(value)
            out.append(f"<tr><th align=\"left\" valign=\"top\">{e(label)}</th><td>{cell}</td></tr>")
        out.append("</table>")
    out.append("<p><small>mentionwatch: answer in the TUI; nothing is posted without "
               "approval.</small></p></body></html>")
    return "\n".join(out) + "\n"


def check_message(*, sender: str, recipients: Sequence[str], now: datetime) -> EmailMessage:
    """The message `mentionwatch alerts test` sends."""
    msg = EmailMessage(policy=SMTP)
    msg["Subject"] = SUBJECT_PREFIX + "test alert"
    msg["From"] = sender
    msg["To"] = ", ".join(recipients)
    msg["Date"] = format_datetime(now)
    msg["Message-ID"] = make_msgid(domain="mentionwatch.local")
    body = ("This is a test from `mentionwatch alerts test`. If you can read it, alert emails "
            "reach you.")
    msg.set_content(body + "\n")
    msg.add_alternative(f"<p>{html.escape(body)}</p>\n", subtype="html")
    return msg
