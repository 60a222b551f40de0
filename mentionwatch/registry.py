"""Find connector classes by kind: built-ins plus `mentionwatch.connectors` entry points."""

from __future__ import annotations

import functools
import importlib
from importlib.metadata import entry_points
from typing import Any

# Built-ins are listed here too so a source checkout works without an install.
BUILTIN = {
    "rss": "connectors.rss:RssConnector",
    "google_alerts": "connectors.google_alerts:GoogleAlertsConnector",
    "twitter": "connectors.twitter:TwitterConnector",
    "hackernews": "connectors.hackernews:HackerNewsConnector",
    "mastodon": "connectors.mastodon:MastodonConnector",
    "bluesky": "connectors.bluesky:BlueskyConnector",
    "reddit": "connectors.reddit:RedditConnector",
}

GROUP = "mentionwatch.connectors"


@functools.cache
def available_kinds() -> dict[str, str]:
    """Map each known kind to its "module:Class" reference."""
    kinds = dict(BUILTIN)
    for ep in entry_points(group=GROUP):
        kinds.setdefault(ep.name, ep.value)
    return kinds


@functools.cache
def connector_class(kind: str) -> Any:
    """The connector class for `kind`. Raises KeyError with a readable message."""
    ref = available_kinds().get(kind)
    if ref is None:
        known = ", ".join(sorted(available_kinds()))
        raise KeyError(f"unknown source kind {kind!r} (known kinds: {known})")
    module_name, _, attr = ref.partition(":")
    return getattr(importlib.import_module(module_name), attr)
