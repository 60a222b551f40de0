"""Who is at the keyboard, and the second pair of eyes on crisis replies.

The rules (pure functions; the outbox applies them inside its transactions):

- With a [team]: only its operators may triage. A reply (public or private) to a
  crisis-flagged mention needs an approver. When the person who approves first is not an
  approver, the action waits in `needs_approval` until a different person who is an approver
  approves it too. (An approver approving a junior's edited draft IS that second person.)
- Without a [team]: everyone may approve, and a crisis reply needs two different people (the
  one who edited the draft and the one who approves, or two approvers); until then it waits.
"""

from __future__ import annotations

from mentionwatch.audit import operator_name
from mentionwatch.config import Config, TeamConfig
from mentionwatch.errors import ConfigError

APPROVED = "approved"
NEEDS_APPROVAL = "needs_approval"
#: Flags whose replies need the second pair of eyes.
SENSITIVE_FLAGS = ("crisis",)


def current_operator(config: Config) -> str:
    """$MENTIONWATCH_OPERATOR or the login name; with a [team], it must be one of its
    operators (returned as spelled there). Raises ConfigError naming the key otherwise."""
    name = operator_name()
    team = config.team
    if team is None:
        return name
    found = team.find(name)
    if found is None:
        known = ", ".join(o.name for o in team.operators)
        raise ConfigError(
            f"{config.path}: team.operators: the operator {name!r} is not in the team "
            f"({known}).",
            hint=f'Add [[team.operators]] name = "{name}" to the config, or set '
            "$MENTIONWATCH_OPERATOR to your name as written there.")
    return found.name


def is_approver(team: TeamConfig | None, name: str | None) -> bool:
    """Without a team everyone counts as an approver (there is no one to ask)."""
    if name is None:
        return False
    if team is None:
        return True
    found = team.find(name)
    return bool(found and found.approver)


def first_state(team: TeamConfig | None, *, flag: str | None, operator: str,
                editor: str | None) -> str:
    """The state a fresh approval starts in: `approved`, or `needs_approval` when a crisis
    reply still lacks its approver or its second person."""
    if flag not in SENSITIVE_FLAGS:
        return APPROVED
    if team is None:
        two_people = editor is not None and editor.casefold() != operator.casefold()
        return APPROVED if two_people else NEEDS_APPROVAL
    return APPROVED if is_approver(team, operator) else NEEDS_APPROVAL


def second_refusal(team: TeamConfig | None, *, operator: str, first: str | None) -> str | None:
    """Why `operator` may not give the second approval, or None when they may."""
    if first is not None and operator.casefold() == first.casefold():
        return (f"{operator} approved this first; a second, different person must approve "
                "it.")
    if not is_approver(team, operator):
        return (f"{operator} is not an approver; {waiting_for(team, first)} must approve "
                "this crisis reply.")
    return None


def waiting_for(team: TeamConfig | None, first: str | None) -> str:
    """Who may give the missing approval, in words: "dana or lee", "someone other than sam"."""
    if team is None:
        return f"someone other than {first}" if first else "a second person"
    names = [n for n in team.approvers() if first is None or n.casefold() != first.casefold()]
    if not names:
        return "an approver other than " + (first or "the first one") + " (none in [team])"
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1]
