"""Private data in public text: the email address, phone number, order or account number or
payment card number that a customer posted in public, or that a public reply would post.

Pure: a text in, findings out. Every pattern is linear in the text: possessive or bounded
repeats only, and lookbehinds that start a number or an address only where one can begin, so
a hostile post costs no more than a long one.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

#: What was found, in the words a warning uses.
CARD = "a card number"
ORDER = "an order or account number"
EMAIL = "an email address"
PHONE = "a phone number"
#: Where two findings overlap, the one earlier here is kept ("order #4111 1111 1111 1111"
#: is a card number; "order 07700900123" an order number, not also a phone number).
PRECEDENCE = (CARD, ORDER, EMAIL, PHONE)

_EMAIL = re.compile(
    r"(?<![\w.%+@-])"  # not a part of a longer address, nor a handle's @user@instance
    r"(?P<local>[\w.%+-]{1,64}+)@"
    r"(?P<domain>(?:[^\W_][\w-]{0,62}+\.){1,8}[^\W\d_]{2,24}+)(?![\w-])")

# A run of digit groups with one separator between groups, and an optional +country code and
# (area code) in front. It starts only where a number can (not inside a word, a handle, a
# price, a date or a decimal) and ends only where one does (not before a letter, a decimal or
# a time), and once matched it is never cut shorter to fit.
_NUMBER = re.compile(
    r"(?<![\w@$£€¥+.,/'-])(?<![$£€¥] )"
    r"(?P<number>(?:\+\d{1,3}+[ .-]?)?+(?:\(\d{1,5}+\)[ .-]?)?+\d{1,19}+(?:[ .-]\d{1,19}+){0,7}+)"
    r"(?![\w$£€¥%@])(?![.,:/-]\d)")

# A number told as such: "order #12345", "account no. 88812345", "acct ending in 4471",
# "booking ref ABC123", "tracking number 1Z999AA10123456784".
_REFERENCE = re.compile(
    r"\b(?:order|acct|account|booking|reservation|confirmation|reference|ref|ticket|case"
    r"|tracking|invoice|customer|membership|member|policy|claim|parcel|shipment)s?"
    r"(?:\s{1,3}(?:number|num|no|nr|id|ref|reference|code)\b\.?)?"
    r"(?:\s{1,3}(?:is|was|ending|ends|in)\b){0,2}"
    r"\s{0,3}[:#]?\s{0,3}[#]?"
    r"(?P<value>[^\W_][\w-]{2,29}+)(?![\w-])",
    re.IGNORECASE)

_NOT_DIGIT = re.compile(r"\D")
_GROUPS = re.compile(r"\d+")
_GROUPED_AMOUNT = re.compile(r"\d{1,3}(?:[ .]\d{3})+")  # 1 000 000, 12.345.678
_DOTTED_PHONE = re.compile(r"\d{3}\.\d{3}\.\d{4}")  # 555.010.0199; not 10.0.19041.1
_YEAR = re.compile(r"(?:19|20)\d\d")
_NORTH_AMERICAN = re.compile(r"1?[2-9]\d{9}")  # 2125550199, 12125550199


@dataclass(frozen=True, slots=True)
class Finding:
    """One piece of private data: its kind in words, a masked form to show in its place,
    and where it is in the text (`text[start:end]`)."""

    kind: str
    masked: str
    start: int
    end: int

    def describe(self) -> str:
        """As a warning says it, "a phone number (…0123)": never the whole value."""
        return f"{self.kind} ({self.masked})"


def private_data(text: str, own: Iterable[str | None] = ()) -> list[Finding]:
    """The private data in `text`, in order of appearance. `own`: the brand's own contact
    details (support email, support phone), which are not private: an address matches one
    case-insensitively, a phone number whether written with the country code or without."""
    if not text:
        return []
    contacts = [o for o in own if o]
    own_emails = {o.strip().casefold() for o in contacts if "@" in o}
    own_phones = {d for d in (_digits(o) for o in contacts if "@" not in o) if len(d) >= 7}
    found = [*_references(text), *_emails(text, own_emails), *_numbers(text, own_phones)]
    kept: list[Finding] = []
    for finding in sorted(found, key=lambda f: (PRECEDENCE.index(f.kind), f.start)):
        if not any(finding.start < k.end and k.start < finding.end for k in kept):
            kept.append(finding)
    return sorted(kept, key=lambda f: f.start)


def describe(findings: Iterable[Finding]) -> str:
    """The findings as a warning says them, each distinct one once and in order: "a phone
    number (…0123) and an order or account number (…71)"."""
    parts = list(dict.fromkeys(f.describe() for f in findings))
    if len(parts) <= 1:
        return "".join(parts)
    return ", ".join(parts[:-1]) + " and " + parts[-1]


def luhn_valid(digits: str) -> bool:
    """Whether a string of digits passes the Luhn check that card numbers carry."""
    total = 0
    for i, char in enumerate(reversed(digits)):
        n = int(char)
        if i % 2:
            n = n * 2 - 9 if n > 4 else n * 2
        total += n
    return bool(digits) and total % 10 == 0


def _digits(value: str) -> str:
    return _NOT_DIGIT.sub("", value)


def _tail(value: str) -> str:
    """The last few characters, never more than half of them: "…0123", "…71"."""
    keep = min(4, len(value) // 2)
    return "…" + value[len(value) - keep:]


def _references(text: str) -> Iterable[Finding]:
    for match in _REFERENCE.finditer(text):
        value = match["value"]
        plain = value.replace("-", "").replace("_", "")
        digits = sum(c.isdigit() for c in plain)
        # "order 66", "case 2": too short to be anyone's; "order came late": no number.
        if (plain.isdigit() and len(plain) >= 4) or (digits >= 2 and len(plain) >= 5):
            yield Finding(ORDER, _tail(plain), match.start("value"), match.end("value"))


def _emails(text: str, own: set[str]) -> Iterable[Finding]:
    for match in _EMAIL.finditer(text):
        if match[0].casefold() in own:
            continue
        yield Finding(EMAIL, f"{match['local'][0]}…@{match['domain']}",
                      match.start(), match.end())


def _numbers(text: str, own_phones: set[str]) -> Iterable[Finding]:
    for match in _NUMBER.finditer(text):
        number = match["number"]
        digits = _digits(number)
        if _is_card(number, digits):
            yield Finding(CARD, "…" + digits[-4:], match.start(), match.end())
        elif _is_phone(number, digits) and not any(_same_phone(digits, o) for o in own_phones):
            yield Finding(PHONE, "…" + digits[-4:], match.start(), match.end())


def _is_card(number: str, digits: str) -> bool:
    # No card number starts with 0, and none is written with a +, brackets or dots.
    return (13 <= len(digits) <= 19 and digits[0] != "0" and not any(c in number for c in "+(.")
            and luhn_valid(digits))


def _is_phone(number: str, digits: str) -> bool:
    if not 9 <= len(digits) <= 15:
        return False
    marked = number.startswith(("+", "("))
    groups = _GROUPS.findall(number)
    if "." in number and not (marked or _DOTTED_PHONE.fullmatch(number)):
        return False  # a version (10.0.19041.1) or an address (192.168.100.200)
    if all(_YEAR.fullmatch(g) for g in groups):
        return False  # "2019 2020 2021"
    if _is_date(groups):
        return False  # "2026 12 01 0930"
    if marked or digits[0] == "0":
        return True
    if len(groups) == 1:
        # Unformatted and without a trunk 0: only the North American shapes, not an id or
        # a timestamp such as 1767225600.
        return bool(_NORTH_AMERICAN.fullmatch(digits))
    return not _GROUPED_AMOUNT.fullmatch(number)  # 1 000 000 000


def _is_date(groups: list[str]) -> bool:
    """Whether the number begins with a date: 2026 12 01 ..., 01 12 2026 ..."""
    if len(groups) < 3:
        return False
    a, b, c = (int(g) for g in groups[:3])
    if _YEAR.fullmatch(groups[0]):
        return 1 <= b <= 12 and 1 <= c <= 31
    return bool(_YEAR.fullmatch(groups[2])) and 1 <= a <= 31 and 1 <= b <= 31


def _same_phone(digits: str, own: str) -> bool:
    """The same number, with or without the country code or trunk 0 (+44 20 7946 0000 is
    020 7946 0000)."""
    a, b = digits.lstrip("0"), own.lstrip("0")
    shorter, longer = sorted((a, b), key=len)
    return len(shorter) >= 7 and longer.endswith(shorter)
