"""Per-source locks so overlapping runs (cron firing twice, `poll` beside `run`) skip a source
that is already being polled instead of polling it twice.

SQLite: a file lock in a folder beside the database file. PostgreSQL: a session-level
advisory lock held on its own connection. Both are released if the process dies.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from filelock import FileLock, Timeout
from sqlalchemy import text

from mentionwatch.store import Store


def _key(name: str) -> int:
    # A stable signed 64-bit key for pg advisory locks (namespace + source name).
    digest = hashlib.sha256(f"mentionwatch:source:{name}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


@contextmanager
def source_lock(store: Store, name: str) -> Iterator[bool]:
    """Try to take the lock for source `name` without waiting; yield whether it was taken."""
    dialect = store.engine.dialect.name
    if dialect == "postgresql":
        with store.engine.connect() as conn:
            taken = bool(conn.execute(text("SELECT pg_try_advisory_lock(:k)"),
                                      {"k": _key(name)}).scalar())
            conn.commit()
            try:
                yield taken
            finally:
                if taken:
                    conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _key(name)})
                    conn.commit()
        return
    database = store.engine.url.database
    if dialect != "sqlite" or not database or database == ":memory:":
        yield True  # one process owns an in-memory database; nothing to coordinate
        return
    folder = Path(database).with_name(Path(database).name + ".locks")
    folder.mkdir(parents=True, exist_ok=True)
    safe = hashlib.sha256(name.encode()).hexdigest()[:16]
    lock = FileLock(str(folder / f"{safe}.lock"))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        yield False
        return
    try:
        yield True
    finally:
        lock.release()
