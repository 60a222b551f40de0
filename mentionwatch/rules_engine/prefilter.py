"""Words a regular expression cannot match without: a cheap test run before the search.

`required(pattern)` reads the pattern's parse tree (the standard library's parser, which reads
the syntax the packs use) and returns strings one of which every match must contain, in
case-folded form: for `\\bstole\\s+my\\s+(?:package|parcel)` that is {"stole"} (or
{"package", "parcel"}, whichever is longer). A post that holds none of them cannot match, and
`in` over its case-folded text costs a fraction of a search (a search costs about 2.5 us
in setting up its time limit alone). Where the parse could differ from the `regex` module's
reading (syntax only `regex` knows), or no string of at least MIN_CHARS is required, there
is no prefilter and every post is searched.
"""

from __future__ import annotations

import functools
import re
import warnings
from collections.abc import Iterable
from typing import Any

try:  # The standard library's own parser: private, but stable since Python 3.11.
    import re._constants as sre
    import re._parser as sre_parse
except ImportError:  # pragma: no cover - a Python that moved it: search every post
    sre = sre_parse = None

#: Shorter required strings are found in most posts ("the"), so they filter nothing.
MIN_CHARS = 3

#: A "{" that is not a repeat: the standard library reads it as a literal, `regex` may read it
#: as fuzzy matching ("(?:acme){e<=1}").
_NOT_A_REPEAT = re.compile(r"(?<!\\)\{(?!\d*,?\d*\})")

Requirement = frozenset[str]


@functools.cache
def required(pattern: str) -> Requirement | None:
    """Strings (case-folded, ASCII) one of which is in every text `pattern` matches, or None."""
    if sre_parse is None or _NOT_A_REPEAT.search(pattern):
        return None
    try:
        with warnings.catch_warnings():
            # A nested set ("[[:alpha:]]") or set operation is one thing to `regex` and
            # another to the standard library, which warns about it.
            warnings.simplefilter("error")
            tree = sre_parse.parse(pattern, re.IGNORECASE)
    except (re.error, Warning, RecursionError, OverflowError):
        return None
    best = _best(_candidates(list(tree)))
    if best is None or min(map(len, best)) < MIN_CHARS:
        return None
    return best


@functools.lru_cache(maxsize=256)
def folded(text: str) -> str:
    """`text` case-folded, kept for the few searches one post goes through in a row."""
    return text.casefold()


def may_match(need: Requirement, text: str) -> bool:
    """False only when `text` holds none of the required strings."""
    return any(map(folded(text).__contains__, need))  # map: no generator frame per word


def _candidates(items: Iterable[tuple[Any, Any]]) -> list[Requirement]:
    """Requirements of a sequence: each one holds for every match of it (so any may be
    used); a run of literal ASCII characters is one, a group or a repeat of at least one
    is its own best, an alternation the union of its branches' bests when each has one."""
    found: list[Requirement] = []
    run: list[str] = []

    def end_run() -> None:
        if run:
            found.append(frozenset(["".join(run)]))
            run.clear()

    for op, arg in items:
        if op is sre.LITERAL and chr(arg).isascii():
            run.append(chr(arg).casefold())
            continue
        end_run()
        sub: Requirement | None = None
        if op is sre.SUBPATTERN:
            sub = _best(_candidates(arg[-1]))
        elif op is sre.ATOMIC_GROUP:
            sub = _best(_candidates(arg))
        elif op in (sre.MAX_REPEAT, sre.MIN_REPEAT, sre.POSSESSIVE_REPEAT) and arg[0] >= 1:
            sub = _best(_candidates(arg[2]))
        elif op is sre.BRANCH:
            branches = [_best(_candidates(branch)) for branch in arg[1]]
            if branches and all(b is not None for b in branches):
                sub = frozenset().union(*(b for b in branches if b is not None))
        # Anything else (a class, a lookaround, an anchor, a repeat that may be empty, a
        # non-ASCII character) requires nothing and ends the run of literals.
        if sub:
            found.append(sub)
    end_run()
    return found


def _best(found: list[Requirement]) -> Requirement | None:
    """The most selective requirement: the longest shortest string, then the fewest."""
    if not found:
        return None
    return max(found, key=lambda need: (min(map(len, need)), -len(need)))
