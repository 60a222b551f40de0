"""Google Alerts Atom feeds: an RSS-like feed whose links are Google redirects
(`https://www.google.com/url?...&url=REAL`) and whose titles carry `<b>` highlighting and
second-level entities. The RSS connector unwraps and cleans both; this one only differs in
what counts as the author and in trusting Google's filtering."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from connectors.rss import RssConnector, host_of
from mentionwatch.connector import AuthorIn, MentionIn


class GoogleAlertsConnector(RssConnector):
    kind: ClassVar[str] = "google_alerts"
    # Google already matched the alert's query; entries that do not spell a brand term
    # (stemming, translations) are still kept.
    prefiltered: ClassVar[bool] = True

    def _to_mention(self, entry: Mapping[str, Any], feed: Mapping[str, Any]) -> MentionIn:
        mention = super()._to_mention(entry, feed)
        # Alert entries have an empty <author>; the feed title ("Google Alert - Acme") is not
        # an author either. The site that published the article is.
        if mention.url:
            mention.author = AuthorIn(handle=host_of(mention.url))
        return mention
