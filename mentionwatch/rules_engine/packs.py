"""Rule packs: TOML files of rules, validated with messages naming the file and the rule.

A pack file:

    [pack]
    name = "complaints"
    description = "..."

    [[rules]]
    name = "outage"
    flag = "complaint"          # complaint, crisis, question, praise, spam, ignore
    severity = 0.6              # 0..1, the rule's weight in the priority
    alert = false               # email on-call when it matches
    [rules.when]                # every condition given must hold
    any = ["down", "outage"]    # at least one term or phrase
    regex = ['order #\\d+']     # at least one pattern (case-insensitive)
    sentiment_below = 0.3       # VADER compound score
    complaint_score_at_least = 0.6   # the complaint classifier's score, 0..1
    [rules.reply]
    public = "Sorry {first_name}, ..."
    private = "..."
    channel = "dm"              # dm, email or phone
"""

from __future__ import annotations

import difflib
import re
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import regex
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from mentionwatch.errors import RuleError
from mentionwatch.rules_engine.templates import OPTIONAL, RESERVED

Flag = Literal["crisis", "complaint", "question", "praise", "spam", "ignore"]

#: Fields a template may use. Mention text is never one of them: it is data, not template.
TEMPLATE_FIELDS = frozenset(
    {"author", "first_name", "brand", "case_ref", "support_email", "support_phone",
     "support_hours", "contact", "source", "reach_us"}
)
_FIELD = re.compile(r"\{([^{}]*)\}")
#: Pack and rule names: shown on screens and in emails, so plain.
NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"


def language_code(value: str | None) -> str:
    """A language tag's primary subtag in lower case: "en" for "EN", "en-GB" or "en_US"."""
    return (value or "").replace("_", "-").split("-")[0].strip().lower()


class _Strict(BaseModel):
    # strict: "0.9" is not a severity, "yes" not a boolean, 5.0 not a follower count (a
    # pack that says them is wrong somewhere, and is told so instead of guessed at).
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class Condition(_Strict):
    """Conditions on one mention; every one that is set must hold (AND)."""

    any: list[str] = []
    all: list[str] = []
    none: list[str] = []
    regex: list[str] = []
    sentiment_below: float | None = Field(default=None, ge=-1, le=1)
    sentiment_above: float | None = Field(default=None, ge=-1, le=1)
    #: The complaint classifier's score (0..1, see classifier.py).
    complaint_score_at_least: float | None = Field(default=None, ge=0, le=1)
    complaint_score_below: float | None = Field(default=None, ge=0, le=1)
    source: list[str] = []
    language: list[str] = []
    followers_at_least: int | None = Field(default=None, ge=0)
    verified: bool | None = None
    engagement_at_least: int | None = Field(default=None, ge=0)
    reply_to_brand: bool | None = None
    complained_within_days: int | None = Field(default=None, ge=1, le=365)
    any_of: list[Condition] = []
    all_of: list[Condition] = []
    not_: Condition | None = Field(default=None, alias="not")

    @field_validator("regex")
    @classmethod
    def _compiles(cls, value: list[str]) -> list[str]:
        for pattern in value:
            if not pattern:
                raise ValueError("an empty pattern matches every post")
            try:
                regex.compile(pattern)  # as the engine runs it (engine._bounded_search)
            except regex.error as exc:
                raise ValueError(f"bad regular expression {pattern!r}: {exc}") from None
        return value

    @model_validator(mode="after")
    def _no_empty_parts(self) -> Condition:
        parts = [(f"any_of[{i}]", c) for i, c in enumerate(self.any_of)]
        parts += [(f"all_of[{i}]", c) for i, c in enumerate(self.all_of)]
        parts += [("not", self.not_)] if self.not_ is not None else []
        for where, part in parts:
            if part.is_empty():
                raise ValueError(f"{where} is empty: a condition with nothing in it would "
                                 "hold for every post")
        return self

    @field_validator("language")
    @classmethod
    def _language_codes(cls, value: list[str]) -> list[str]:
        # Compared with the mention's primary subtag, lower case ("EN", "en-GB", "en_US").
        return [language_code(v) for v in value]

    @field_validator("any", "all", "none")
    @classmethod
    def _no_blank(cls, value: list[str]) -> list[str]:
        if any(not t.strip() for t in value):
            raise ValueError("terms must not be empty strings")
        return value

    def is_empty(self) -> bool:
        return not any(
            getattr(self, name) not in (None, [])
            for name in type(self).model_fields
        )

    def terms(self) -> set[str]:
        """Every term and phrase used here or in nested conditions."""
        out = set(self.any) | set(self.all) | set(self.none)
        for sub in self._children():
            out |= sub.terms()
        return out

    def wanted_terms(self) -> set[str]:
        """The terms whose presence speaks for this condition: `any` and `all`, here and in
        nested `any_of`/`all_of` (not `none`, and nothing under `not`)."""
        out = set(self.any) | set(self.all)
        for sub in (*self.any_of, *self.all_of):
            out |= sub.wanted_terms()
        return out

    def uses_classifier(self) -> bool:
        """Whether this condition or a nested one needs the complaint classifier's score."""
        own = self.complaint_score_at_least is not None or self.complaint_score_below is not None
        return own or any(sub.uses_classifier() for sub in self._children())

    def _children(self) -> list[Condition]:
        return [*self.any_of, *self.all_of, *([self.not_] if self.not_ else [])]

    def parts(self) -> Iterator[Condition]:
        """This condition and every one nested in it (under `not` too)."""
        yield self
        for sub in self._children():
            yield from sub.parts()

    def history_days(self) -> int:
        days = self.complained_within_days or 0
        for sub in self._children():
            days = max(days, sub.history_days())
        return days


class Reply(_Strict):
    public: str | None = None
    private: str | None = None
    channel: Literal["dm", "email", "phone"] = "dm"

    @field_validator("public", "private")
    @classmethod
    def _known_fields(cls, value: str | None) -> str | None:
        if value is None:
            return value
        if re.search(f"[{RESERVED}]", value):
            raise ValueError("a template may not contain NUL or private-use characters "
                             "(U+E000-U+F8FF)")
        if "{{" in value or "}}" in value:
            raise ValueError("fields are written with single braces, {author}, not "
                             f"{{{{author}}}}: {value!r}")
        unknown = sorted({f for f in _FIELD.findall(value) if f not in TEMPLATE_FIELDS})
        if unknown:
            allowed = ", ".join(sorted(TEMPLATE_FIELDS))
            raise ValueError(
                f"unknown template field(s) {', '.join('{' + u + '}' for u in unknown)}; "
                f"allowed: {allowed}"
            )
        stray = _FIELD.sub("", value)
        if "{" in stray or "}" in stray:
            # "Ref {case_ref" would be drafted as it stands.
            raise ValueError(
                "a '{' or '}' that is not part of a field: a field is a lower-case name in "
                f"braces, such as {{case_ref}}: {value!r}")
        rest = OPTIONAL.sub("", value)
        if "[[" in rest or "]]" in rest:
            raise ValueError(
                "an optional part is written [[ ... ]], each '[[' closed by its own ']]' and "
                f"none inside another: {value!r}")
        return value


class Rule(_Strict):
    name: str = Field(min_length=1, pattern=NAME)
    flag: Flag
    severity: float = Field(default=0.5, ge=0, le=1)
    alert: bool = False
    description: str | None = None
    when: Condition
    reply: Reply | None = None


class PackInfo(_Strict):
    name: str = Field(min_length=1, pattern=NAME)
    description: str | None = None


class PackFile(_Strict):
    pack: PackInfo
    rules: list[Rule] = Field(min_length=1)


class RulePack(BaseModel):
    """A validated pack and where it came from."""

    model_config = ConfigDict(frozen=True)

    name: str
    path: Path
    rules: tuple[Rule, ...]


def load_pack(path: Path) -> RulePack:
    """Read and validate one pack file. Raises RuleError naming the file and the rule."""
    try:
        raw = path.read_bytes()
        # utf-8-sig: Windows editors start a UTF-8 file with a byte-order mark.
        data = tomllib.loads(raw.decode("utf-8-sig"))
    except tomllib.TOMLDecodeError as exc:
        raise RuleError(f"{path}: not valid TOML: {exc}.") from None
    except UnicodeDecodeError as exc:
        line = raw[:exc.start].count(b"\n") + 1
        raise RuleError(f"{path}: line {line}: byte 0x{raw[exc.start]:02x} is not UTF-8.",
                        hint="Save the file as UTF-8 (your editor's encoding setting).") from None
    except OSError as exc:
        raise RuleError(f"{path}: cannot read: {exc}.") from None
    if not data:
        raise RuleError(f"{path}: the file is empty: a pack needs a [pack] table with its name "
                        "and at least one [[rules]] entry.",
                        hint="See the example pack in the README (\"The rules engine\"), "
                             "or remove the file.")
    try:
        parsed = PackFile.model_validate(data)
    except ValidationError as exc:
        raise RuleError(_describe(path, exc, data)) from None
    for rule in parsed.rules:
        if rule.when.is_empty():
            raise RuleError(f"{path}: rule {rule.name!r}: `when` has no condition; "
                            "a rule that matches everything is almost always a mistake.")
    return RulePack(name=parsed.pack.name, path=path, rules=tuple(parsed.rules))


def load_packs(dirs: list[Path]) -> list[RulePack]:
    """Load every `*.toml` in the folders (a path that is a file: that pack), in name order;
    rule names must be unique. Every file with a problem is named in the one RuleError raised,
    not only the first."""
    packs: list[RulePack] = []
    seen: dict[str, Path] = {}
    names: dict[str, Path] = {}
    problems: list[RuleError] = []
    for folder in dirs:
        if folder.is_file():
            files = [folder]
        elif not folder.is_dir():
            raise RuleError(f"Rule folder {folder} does not exist.",
                            hint="Fix [rules] dirs in the config.")
        else:
            files = sorted(folder.glob("*.toml"))
        if not files:
            # A folder the user named and nothing in it is read: a wrong path, or files
            # named otherwise ("billing.TOML", "billing.toml.txt").
            others = sorted(p.name for p in folder.iterdir() if ".toml" in p.name.lower())
            raise RuleError(
                f"Rule folder {folder} has no packs: they are the files named *.toml in it"
                + (f" (not {', '.join(others[:3])})" if others else "") + ".",
                hint="Fix [rules] dirs in the config, or rename the files.")
        for path in files:
            try:
                pack = load_pack(path)
            except RuleError as exc:
                problems.append(exc)
                continue
            if pack.name in names:
                problems.append(RuleError(f"{path}: pack name {pack.name!r} is also used by "
                                          f"{names[pack.name]}; pack names must be unique."))
                continue
            names[pack.name] = path
            for rule in pack.rules:
                if rule.name in seen:
                    problems.append(RuleError(
                        f"{path}: rule {rule.name!r} is also defined in {seen[rule.name]}; "
                        "rule names must be unique."))
                seen.setdefault(rule.name, path)
            packs.append(pack)
    if len(problems) == 1:
        raise problems[0]
    if problems:
        hints = dict.fromkeys(p.hint for p in problems if p.hint)
        raise RuleError("\n".join(p.message for p in problems), hint="\n".join(hints) or None)
    return packs


def _known_keys() -> list[str]:
    keys: set[str] = set()
    for model in (Condition, Reply, Rule, PackInfo, PackFile):
        for name, info in model.model_fields.items():
            keys.add(info.alias or name)
    return sorted(keys)


#: Every key a pack may use, for "did you mean" on an unknown one.
_KNOWN_KEYS = _known_keys()


def _describe(path: Path, exc: ValidationError, data: dict[str, Any]) -> str:
    lines = []
    raw_rules = data.get("rules")
    rules: list[Any] = raw_rules if isinstance(raw_rules, list) else []
    for error in exc.errors():
        loc = [str(p) for p in error["loc"]]
        where = ".".join(loc)
        if len(loc) >= 2 and loc[0] == "rules" and loc[1].isdigit():
            index = int(loc[1])
            name = rules[index].get("name") if index < len(rules) and isinstance(
                rules[index], dict) else None
            where = f"rule {name!r}" if name else f"rules[{index}]"
            if loc[2:]:
                where += ": " + ".".join(loc[2:])
        kind = error["type"]
        if kind == "extra_forbidden":
            close = difflib.get_close_matches(loc[-1], _KNOWN_KEYS, n=1)
            message = "unknown key" + (f" (did you mean {close[0]!r}?)" if close else "")
        elif kind == "missing":
            message = "required key is missing"
        else:
            message = error["msg"].removeprefix("Value error, ")
        lines.append(f"{path}: {where}: {message}")
    return "\n".join(lines)
