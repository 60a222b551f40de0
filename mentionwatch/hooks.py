"""Work that follows every poll pass, whoever ran it (`mentionwatch poll` or `run`).

Kept in one place so cron mode and the daemon cannot drift apart. Each step is optional: a
feature that is not configured does nothing here.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from sqlalchemy.exc import OperationalError

from mentionwatch import db
from mentionwatch.config import Config
from mentionwatch.pipeline import PollReport
from mentionwatch.store import Store

log = logging.getLogger(__name__)


def after_poll(config: Config, store: Store, report: PollReport) -> None:
    """Run the follow-up steps (alerts, ...) after a pass. Never raises for a step's failure:
    polling must not be blocked by, say, a mail server being down."""
    for step in _steps():
        name = getattr(step, "__module__", step)
        try:
            step(config, store, report)
        except OperationalError as exc:  # the database is down: one line, not a traceback
            log.error("after-poll step %s not done: %s", name,
                      db.connect_message(store.engine, exc))
        except Exception:
            log.exception("after-poll step %s failed", name)


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
