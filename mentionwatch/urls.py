"""Canonical URLs for cross-source de-duplication. Pure functions."""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

# Query parameters that only track where a click came from; they never change the page.
_TRACKING_EXACT = frozenset(
    {
        "fbclid", "gclid", "dclid", "gbraid", "wbraid", "msclkid", "yclid", "twclid",
        "mc_cid", "mc_eid", "igshid", "igsh", "ref_src", "ref_url", "_hsenc", "_hsmi",
        "mkt_tok", "oly_anon_id", "oly_enc_id", "vero_id", "s_cid", "cmpid", "spm",
    }
)
_TRACKING_PREFIXES = ("utm_", "pk_", "mtm_", "hsa_")
_GOOGLE_HOSTS = frozenset({"www.google.com", "google.com"})
# Most URLs are plain (no query, fragment, port or user info): handled without urlsplit.
_SIMPLE = re.compile(r"(?i)(https?)://([a-z0-9.-]+)(/[^?#\s]*)?")


def unwrap_redirect(url: str) -> str:
    """The target of a Google redirect link (`https://www.google.com/url?...&url=REAL`)."""
    if "google.com/url" not in url:
        return url
    parts = urlsplit(url)
    if parts.hostname in _GOOGLE_HOSTS and parts.path == "/url":
        params = dict(parse_qsl(parts.query, keep_blank_values=True))
        target = params.get("url") or params.get("q")
        if target and target.startswith(("http://", "https://")):
            return target
    return url


def _is_tracking(name: str) -> bool:
    lowered = name.lower()
    return lowered in _TRACKING_EXACT or lowered.startswith(_TRACKING_PREFIXES)


def canonical_url(url: str | None) -> str | None:
    """A stable key for "the same page": redirect unwrapped, scheme and host lower-cased,
    default port, fragment and tracking parameters removed, remaining parameters sorted.

    Returns None for anything that is not an absolute http(s) URL.
    """
    if not url:
        return None
    simple = _SIMPLE.fullmatch(url)
    if simple:
        scheme, host, path = simple.groups()
        return f"{scheme.lower()}://{host.lower()}{path or '/'}"
    try:
        url = unwrap_redirect(url.strip())
        parts = urlsplit(url)
        port = parts.port
    except ValueError:  # malformed netloc or port
        return None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname:
        return None
    host = parts.hostname.lower()
    if port and not ((scheme == "http" and port == 80) or (scheme == "https" and port == 443)):
        host = f"{host}:{port}"
    query = sorted(
        (k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if not _is_tracking(k)
    )
    path = parts.path or "/"
    return urlunsplit((scheme, host, path, urlencode(query), ""))
