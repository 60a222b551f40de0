"""Which file a SQLite URL names, in both forms SQLAlchemy documents: a path
(`sqlite:///data/mentionwatch.db`) and a SQLite `file:` URI with its own options
(`sqlite:///file:data/mentionwatch.db?mode=ro&uri=true`). Pure: no engine, no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote

from sqlalchemy.engine import URL, make_url

#: Query parameters SQLAlchemy's pysqlite dialect gives to `sqlite3.connect`; the others of a
#: `file:` URI's query are the URI's own (mode, immutable, cache, vfs, ...).
DRIVER_ARGS = ("uri", "timeout", "isolation_level", "detect_types", "check_same_thread",
               "cached_statements")
_TRUE = ("1", "true", "yes", "on")


@dataclass(frozen=True, slots=True)
class SqliteTarget:
    """The database a SQLite URL opens: its file (None when in memory), and for a `file:`
    URI the URI's options."""

    path: Path | None
    uri: bool = False
    options: dict[str, str] = field(default_factory=dict)

    @property
    def read_only_option(self) -> str | None:
        """The URI option that opens the file read-only (`mode=ro`, `immutable=1`), or None."""
        if self.options.get("mode") == "ro":
            return "mode=ro"
        if self.options.get("immutable", "").lower() in _TRUE:
            return "immutable=1"
        return None

    @property
    def no_create_option(self) -> str | None:
        """The URI option with which SQLite opens the file only if it is there (`mode=ro`,
        `immutable=1`, `mode=rw`), or None: a missing file is then "unable to open database
        file", where a plain path or `mode=rwc` creates it."""
        if self.read_only_option is not None:
            return self.read_only_option
        return "mode=rw" if self.options.get("mode") == "rw" else None


def sqlite_target(url: URL) -> SqliteTarget | None:
    """The database `url` names; None for a backend other than SQLite.

    Raises ValueError, saying what to write instead, for a `file:` URI SQLite would not read
    as one: without `uri=true` (SQLAlchemy then opens a file named "file:...") or with a
    host (SQLite takes only an empty one or localhost).
    """
    if url.get_backend_name() != "sqlite":
        return None
    database = url.database or ""
    if not database.startswith("file:"):
        memory = database in ("", ":memory:")
        return SqliteTarget(None if memory else Path(database))
    if str(url.query.get("uri", "")).lower() not in _TRUE:
        raise ValueError(
            f"the SQLite URI {database!r} needs uri=true in the URL's query "
            f"(sqlite:///{database}?{_query_with(url, 'uri=true')}), as SQLAlchemy documents; "
            "without it the options are not read and a file named "
            f"{database.split('?')[0]!r} is opened")
    options = {key: str(value) for key, value in url.query.items() if key not in DRIVER_ARGS}
    path = _uri_path(database)
    if path is None or options.get("mode") == "memory":
        return SqliteTarget(None, uri=True, options=options)
    return SqliteTarget(Path(path), uri=True, options=options)


def _query_with(url: URL, extra: str) -> str:
    return "&".join([*(f"{k}={v}" for k, v in url.query.items()), extra])


def _uri_path(database: str) -> str | None:
    """The file of a SQLite `file:` URI as SQLite reads it: after an empty or `localhost`
    authority, up to `?` or `#`, %-escapes decoded. None for `file::memory:`."""
    rest = database.removeprefix("file:").split("?")[0].split("#")[0]
    if rest.startswith("//"):
        host, slash, path = rest[2:].partition("/")
        if host not in ("", "localhost"):
            raise ValueError(f"the SQLite URI {database!r} names the host {host!r}; SQLite "
                             "opens only local files (file:/path or file:///path)")
        rest = slash + path
    if rest in ("", ":memory:"):
        return None
    return unquote(rest)


def resolve_sqlite_url(url: str, base: Path) -> str:
    """`url` with a relative SQLite path, also inside a `file:` URI, made absolute against
    `base` (the config file's folder); any other URL as given. The URI's options are kept."""
    prefix = "sqlite:///"
    if not url.startswith(prefix) or url.startswith(prefix + "/"):
        return url
    rest = url[len(prefix):]
    if not rest or rest.startswith(":memory:"):
        return url
    if not rest.startswith("file:"):
        path, _, query = rest.partition("?")
        return prefix + str((base / path).resolve()) + (f"?{query}" if query else "")
    try:
        parsed = make_url(url)
        target = sqlite_target(parsed)
    except ValueError:  # make_engine says what is wrong with it
        return url
    if target is None or target.path is None or target.path.is_absolute():
        return url
    # What SQLite reads as the path: %, ? and # escaped, as a URI needs them.
    escaped = str((base / target.path).resolve()).replace("%", "%25").replace(
        "?", "%3F").replace("#", "%23")
    rendered = parsed.set(database=f"file:{escaped}").render_as_string(hide_password=False)
    return rendered.replace(f"{prefix}file%3A", f"{prefix}file:", 1)
