"""Work that follows every poll pass, whoever ran it (`mentionwatch poll` or `run`).

Kept in one place so cron mode and the daemon cannot drift apart. Each step is optional: a
feature that is not configured does nothing here.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from mentionwatch.config import Config
from mentionwatch.pipeline import PollReport
from mentionwatch.store import Store

log = logging.getLogger(__name__)


def after_poll(config: Config, store: Store, report: PollReport) -> None:
    """Run the follow-up steps (alerts, ...) after a pass. Never raises for a step's failure:
    polling must not be blocked by, say, a mail server being down."""
    for step in _steps():
        try:
            step(config, store, report)
        except Exception:
            log.exception("after-poll step %s failed", getattr(step, "__name__", step))


def _steps() -> list[Callable[[Config, Store, PollReport], None]]:
    from mentionwatch.outbox import after_poll as send_approved

    steps: list[Callable[[Config, Store, PollReport], None]] = [send_approved]
    try:
        from mentionwatch.alerts import after_poll as alerts_step
    except ImportError:
        pass
    else:
        steps.append(alerts_step)
    return steps
