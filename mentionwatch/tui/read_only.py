"""Browsing a store this user may only read (an auditor, a second screen): the keys that
would change something say so, once, and change nothing."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from typing import Any, TypeVar

from mentionwatch import db
from mentionwatch.store import Store

R = TypeVar("R")
#: How long the notice stays; the key pressed again meanwhile adds no second one.
NOTICE_SECONDS = 6.0
NOTICE = "Read-only store: nothing was changed (? says why)."
MARK = "READ-ONLY"


def writes(action: Callable[..., R]) -> Callable[..., R | None]:
    """Mark a key's action (of the app or one of its screens) as one that writes to the
    store: on a read-only store it tells the person (see `tell`) and does nothing."""

    @functools.wraps(action)
    def guarded(self: Any, *args: Any, **kwargs: Any) -> R | None:
        if self.app.store.read_only:
            tell(self.app)
            return None
        return action(self, *args, **kwargs)

    return guarded


def tell(app: Any) -> None:
    """One notice that the store is read-only, not one more for every key pressed while it
    is still on screen."""
    now = time.monotonic()
    if now - app.read_only_told_at < NOTICE_SECONDS:
        return
    app.read_only_told_at = now
    app.notify(NOTICE, severity="warning", markup=False, timeout=NOTICE_SECONDS)


def reason(store: Store) -> str:
    """Why this user may not write the store: the file and the permission (or URL option),
    and what still works."""
    return (f"{db.read_only_error(store.engine.url).message} Browsing works; the keys that "
            "would change a mention or the outbox say so and change nothing.")
