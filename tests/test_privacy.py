"""Private data in public text (mentionwatch.privacy): what customers post to a brand in
public, and what must not be said back in a public reply."""

from __future__ import annotations

import pytest

from mentionwatch.privacy import (
    CARD,
    EMAIL,
    ORDER,
    PHONE,
    Finding,
    describe,
    luhn_valid,
    private_data,
)
from tests.conftest import deadline

SUPPORT = ("help@acme.example", "+44 20 7946 0000")


def found(text: str, own: tuple[str | None, ...] = SUPPORT) -> list[tuple[str, str]]:
    """(kind, the text found) of each finding, in order."""
    return [(f.kind, text[f.start:f.end]) for f in private_data(text, own)]


@pytest.mark.parametrize(("text", "expected"), [
    ("@acme order #4471 never came, call me on 07700 900123",
     [(ORDER, "4471"), (PHONE, "07700 900123")]),
    ("ring me: +44 7700 900123", [(PHONE, "+44 7700 900123")]),
    ("my number is (555) 010-0199, evenings", [(PHONE, "(555) 010-0199")]),
    ("07700900123 is my mobile", [(PHONE, "07700900123")]),
    ("call 555-010-0199 or 1-800-555-0199 or 555.010.0199",
     [(PHONE, "555-010-0199"), (PHONE, "1-800-555-0199"), (PHONE, "555.010.0199")]),
    ("landline +44 (0)20 7946 0123.", [(PHONE, "+44 (0)20 7946 0123")]),
    ("appelez le 06 12 34 56 78 svp", [(PHONE, "06 12 34 56 78")]),
    ("tel:+15550100199", [(PHONE, "+15550100199")]),
    ("email me at jane.doe+acme@mail.example.co.uk.",
     [(EMAIL, "jane.doe+acme@mail.example.co.uk")]),
    ("order number 123-4567 still not here", [(ORDER, "123-4567")]),
    ("acct ending 4471 was charged twice", [(ORDER, "4471")]),
    ("acct ending in 4471", [(ORDER, "4471")]),
    ("account no. 88812345", [(ORDER, "88812345")]),
    ("Booking ref ABC123, flight cancelled", [(ORDER, "ABC123")]),
    ("tracking number 1Z999AA10123456784 says delivered", [(ORDER, "1Z999AA10123456784")]),
    ("Ticket #90210 closed without an answer", [(ORDER, "90210")]),
    ("case: 0045123 (third time I write)", [(ORDER, "0045123")]),
    ("ORDER#5566778", [(ORDER, "5566778")]),
    ("charged on 4111 1111 1111 1111 twice", [(CARD, "4111 1111 1111 1111")]),
    ("card 4111-1111-1111-1111 was declined", [(CARD, "4111-1111-1111-1111")]),
    ("amex 378282246310005", [(CARD, "378282246310005")]),
    # A card told as an order number is a card number, said once.
    ("order #4111111111111111", [(CARD, "4111111111111111")]),
])
def test_finds_what_customers_post(text: str, expected: list[tuple[str, str]]) -> None:
    assert found(text) == expected


@pytest.mark.parametrize("text", [
    "delivery was promised for 2026-12-01 and then 01/12/2026",
    "it came at 10:30, then at 14:45:10, and 2026-12-01T10:30:00Z",
    "paid $1,299.00 and then £1,299.99 and € 12 345 678",
    "a 1 000 000 000 euro company",
    "since 2019 2020 2021 it has got worse",
    "since 1998, every year until 2026",
    "booked for 2026 12 01 0930 and again 01 12 2026 1400",
    "the app is at version 10.0.19041.1 (build 2.14.3)",
    "router 192.168.100.200 keeps rebooting",
    "order came late",
    "my order never came and nobody answers",
    "gate 12, row 7, seat 14",
    "the pin was 1234",
    "execute order 66",
    "in case 2 people ask",
    "@alice@mastodon.social says acme is down",
    "write to help@acme.example",
    "call them on 020 7946 0000",
    "https://x.example/status/1767225600123456789 and id 1767225600",
    "4111 1111 1111 1112 is not a real card",
    "12345678",
])
def test_leaves_what_is_not_private_data(text: str) -> None:
    assert found(text) == []
    # Beside a real one, only the real one is found: the detector works in this text.
    assert found(f"{text}, call 07700 900123") == [(PHONE, "07700 900123")]


def test_the_brands_own_contact_details_are_not_private_in_any_spelling() -> None:
    reply = ("Please email help@acme.example or HELP@Acme.Example, or call +44 20 7946 0000 "
             "(020 7946 0000, +442079460000).")
    assert found(reply) == []
    assert found(reply, own=()) == [
        (EMAIL, "help@acme.example"), (EMAIL, "HELP@Acme.Example"), (PHONE, "+44 20 7946 0000"),
        (PHONE, "020 7946 0000"), (PHONE, "+442079460000")]
    # Unset fields (None) and another brand's address change nothing.
    assert found("jane@example.com", own=(None, "help@acme.example", None)) == [
        (EMAIL, "jane@example.com")]


def test_luhn() -> None:
    for valid in ("4111111111111111", "378282246310005", "6011111111111117", "79927398713"):
        assert luhn_valid(valid), valid
    for invalid in ("4111111111111112", "378282246310006", "79927398710", ""):
        assert not luhn_valid(invalid), invalid
    # Only a number that passes is a card; one that fails and is too long for a phone is
    # nothing, and one of a phone's length is a phone.
    assert found("4539 1488 0343 6467") == [(CARD, "4539 1488 0343 6467")]
    assert found("4539 1488 0343 6468") == []


def test_findings_are_masked_and_described_without_the_value() -> None:
    text = ("I'm jane.doe@example.com, 07700 900123, order #4471, booking ref ABC123, card "
            "4111 1111 1111 1111; again 07700 900123")
    findings = private_data(text)
    assert [(f.kind, f.masked) for f in findings] == [
        (EMAIL, "j…@example.com"), (PHONE, "…0123"), (ORDER, "…71"), (ORDER, "…123"),
        (CARD, "…1111"), (PHONE, "…0123")]
    said = describe(findings)
    assert said == ("an email address (j…@example.com), a phone number (…0123), an order or "
                    "account number (…71), an order or account number (…123) and a card number "
                    "(…1111)")  # the same phone twice is said once
    for value in ("jane.doe", "07700 900123", "900123", "4471", "ABC123", "4111 1111"):
        assert value not in said
    assert describe(findings[:1]) == "an email address (j…@example.com)"
    assert describe([]) == ""
    assert Finding(PHONE, "…0123", 0, 12).describe() == "a phone number (…0123)"


@pytest.mark.parametrize("hostile", [
    "1 " * 200_000, "1." * 200_000, "+1 " * 200_000, "(1) " * 200_000, "a@" * 200_000,
    "a@" + "b." * 200_000, ("x" * 63 + "@") * 6_000, "order number is ending in " * 16_000,
    "1 2 3 4 5 6 7 8 9 0.5 " * 20_000, "9" * 400_000,
])
def test_a_hostile_post_costs_no_more_than_a_long_one(hostile: str) -> None:
    with deadline(5):  # linear: each of these takes well under a second
        findings = private_data(hostile + " call 07700 900123")
    assert (findings[-1].kind, findings[-1].masked) == (PHONE, "…0123")  # and still finds
