"""Judge mentions against rule packs: flags, an explainable priority, and drafts. Pure: values
in, values out; the store writes the results.

Priority, a score from 0 to 1 (documented in the README):

    severity    highest severity among the rules that set the final flag (0..1)
    negativity  max(0, -VADER compound)                                   (0..1)
    reach       log10(1 + followers) / 6        capped at 1 (1M followers = 1)
    engagement  log10(1 + likes + reposts + replies) / 4    capped at 1 (10k = 1)
    velocity    log10(1 + engagement per hour since posted) / 3   capped at 1
    freshness   0.5 ** (age in hours / 24)

    priority = (0.45 severity + 0.20 negativity + 0.15 reach + 0.10 engagement
                + 0.10 velocity) * (0.5 + 0.5 freshness)
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

from mentionwatch.judgement import Judgement, MentionFacts, RuleHit
from mentionwatch.rules_engine import classifier
from mentionwatch.rules_engine.matcher import TermMatcher, normalise_term
from mentionwatch.rules_engine.packs import Condition, Rule, RulePack
from mentionwatch.rules_engine.templates import first_name, fit, render

#: When several flags match, the first in this order wins.
FLAG_ORDER = ("ignore", "spam", "crisis", "complaint", "question", "praise")
WEIGHTS = {"severity": 0.45, "negativity": 0.20, "reach": 0.15, "engagement": 0.10,
           "velocity": 0.10}


@dataclass(frozen=True, slots=True)
class BrandFacts:
    """What templates may say about the brand."""

    name: str
    support_email: str | None = None
    support_phone: str | None = None
    support_hours: str | None = None


@dataclass(slots=True)
class _Context:
    facts: MentionFacts
    terms: set[str]
    text: str
    sentiment: float
    now: datetime
    reasons: dict[str, Any]
    #: Per-mention values computed once on first use and shared by every rule's context
    #: (the complaint classifier's score).
    cache: dict[str, Any]


class Engine:
    """Evaluates rule packs. Build once (compiles one term matcher), call `judge` often."""

    def __init__(self, packs: Sequence[RulePack], brand: BrandFacts,
                 reply_limits: Mapping[str, int | None] | Callable[[str], int | None] | None
                 = None) -> None:
        self.packs = list(packs)
        self.rules: list[tuple[str, Rule]] = [(p.name, r) for p in packs for r in p.rules]
        self.brand = brand
        # A mapping, or a function of the source kind (looked up lazily: importing every
        # connector just to read its limit costs seconds at start-up).
        limits = reply_limits or {}
        self._limit_for: Callable[[str], int | None] = (
            limits if callable(limits) else dict(limits).get
        )
        all_terms: set[str] = set()
        for _, rule in self.rules:
            all_terms |= rule.when.terms()
        self.matcher = TermMatcher(all_terms)
        self._regex: dict[str, re.Pattern[str]] = {}
        # Normalised term sets per condition (conditions are frozen and live with the engine).
        self._sets: dict[int, tuple[frozenset[str], frozenset[str], frozenset[str]]] = {}
        self.history_days = max((r.when.history_days() for _, r in self.rules), default=0)
        # A rule with `any` terms cannot match a text that has none of them: skip it early.
        self._required = [frozenset(normalise_term(t) for t in r.when.any) for _, r in self.rules]
        self._vader = SentimentIntensityAnalyzer()
        self._model = (classifier.default_model()
                       if any(r.when.uses_classifier() for _, r in self.rules) else None)

    def complaint_score(self, text: str, sentiment: float) -> tuple[float, list[tuple[str, float]]]:
        """The classifier's score for a text, with the features that weighed most."""
        model = self._model or classifier.default_model()
        feats = classifier.features(text, sentiment)
        return model.score(feats), model.explain(feats)

    # ------------------------------------------------------------------ public

    def judge(self, mentions: Sequence[MentionFacts]) -> list[Judgement]:
        now = datetime.now(UTC)
        return [self.judge_one(m, now=now) for m in mentions]

    def judge_one(self, facts: MentionFacts, *, now: datetime | None = None) -> Judgement:
        now = now or datetime.now(UTC)
        text = f"{facts.title}\n{facts.text}" if facts.title else facts.text
        sentiment = self._vader.polarity_scores(text)["compound"]
        terms = self.matcher.find(text)
        hits: list[RuleHit] = []
        cache: dict[str, Any] = {}
        for (pack, rule), required in zip(self.rules, self._required, strict=True):
            if required and not (required & terms):
                continue
            ctx = _Context(facts, terms, text, sentiment, now, {}, cache)
            if self._holds(rule.when, ctx):
                hits.append(RuleHit(rule=rule.name, pack=pack, flag=rule.flag,
                                    severity=rule.severity, alert=rule.alert,
                                    explanation=ctx.reasons))
        flag = next((f for f in FLAG_ORDER if any(h.flag == f for h in hits)), None)
        priority, parts = self._priority(facts, flag, hits, sentiment, now)
        explanation: dict[str, Any] = {
            "flag": flag, "sentiment": round(sentiment, 3), "priority": priority,
            "components": parts, "weights": WEIGHTS,
            "rules": [h.rule for h in hits],
        }
        if "complaint" in cache:
            score, top = cache["complaint"]
            explanation["complaint_score"] = round(score, 3)
            explanation["complaint_features"] = top
        public: str | None = None
        private: str | None = None
        channel: str | None = None
        draft_rule: str | None = None
        chosen = self._draft_rule(flag, hits)
        if chosen is not None and chosen.reply is not None:
            reply = chosen.reply
            fields = self._fields(facts)
            limit = self._limit_for(facts.source_kind)
            if reply.public:
                public = fit(render(reply.public, fields), limit)
            if reply.private:
                private = render(reply.private, fields)
            channel = reply.channel
            draft_rule = chosen.name
        return Judgement(flag=flag, priority=priority, sentiment=sentiment, hits=tuple(hits),
                         public_draft=public, private_draft=private, private_channel=channel,
                         draft_rule=draft_rule, explanation=explanation)

    # ------------------------------------------------------------------ conditions

    def _holds(self, cond: Condition, ctx: _Context) -> bool:
        f, r = ctx.facts, ctx.reasons
        sets = self._sets.get(id(cond))
        if sets is None:
            sets = self._sets[id(cond)] = tuple(  # type: ignore[assignment]
                frozenset(normalise_term(t) for t in ts) for ts in (cond.any, cond.all, cond.none)
            )
        any_terms, all_terms, none_terms = sets  # type: ignore[misc]
        if any_terms:
            found = sorted(ctx.terms & any_terms)
            if not found:
                return False
            r.setdefault("terms", []).extend(t for t in found if t not in r.get("terms", []))
        if all_terms:
            if not all_terms <= ctx.terms:
                return False
            r.setdefault("terms", []).extend(sorted(all_terms))
        if none_terms and ctx.terms & none_terms:
            return False
        if cond.regex:  # like `any`: one of the patterns must match
            match = None
            for pattern in cond.regex:
                compiled = self._regex.get(pattern)
                if compiled is None:
                    compiled = self._regex[pattern] = re.compile(pattern, re.IGNORECASE)
                match = compiled.search(ctx.text)
                if match:
                    break
            if not match:
                return False
            r.setdefault("regex", []).append(match.group(0)[:80])
        if cond.sentiment_below is not None:
            if not ctx.sentiment <= cond.sentiment_below:
                return False
            r["sentiment"] = f"{ctx.sentiment:.3f} <= {cond.sentiment_below}"
        if cond.sentiment_above is not None:
            if not ctx.sentiment >= cond.sentiment_above:
                return False
            r["sentiment"] = f"{ctx.sentiment:.3f} >= {cond.sentiment_above}"
        if cond.complaint_score_at_least is not None or cond.complaint_score_below is not None:
            if "complaint" not in ctx.cache:
                ctx.cache["complaint"] = self.complaint_score(ctx.text, ctx.sentiment)
            score, top = ctx.cache["complaint"]
            words = ", ".join(f"{classifier.readable(feat)} {weight:+.2f}"
                              for feat, weight in top)
            if cond.complaint_score_at_least is not None:
                if not score >= cond.complaint_score_at_least:
                    return False
                r["complaint_score"] = f"{score:.2f} >= {cond.complaint_score_at_least} ({words})"
            if cond.complaint_score_below is not None:
                if not score < cond.complaint_score_below:
                    return False
                r["complaint_score"] = f"{score:.2f} < {cond.complaint_score_below} ({words})"
        if cond.source and f.source_kind not in cond.source and f.source not in cond.source:
            return False
        if cond.language and (f.language or "").split("-")[0] not in cond.language:
            return False
        if cond.followers_at_least is not None:
            if (f.followers or 0) < cond.followers_at_least:
                return False
            r["followers"] = f"{f.followers} >= {cond.followers_at_least}"
        if cond.verified is not None and bool(f.verified) != cond.verified:
            return False
        if cond.engagement_at_least is not None:
            engagement = f.likes + f.reposts + f.replies
            if engagement < cond.engagement_at_least:
                return False
            r["engagement"] = f"{engagement} >= {cond.engagement_at_least}"
        if cond.reply_to_brand is not None and f.is_reply_to_brand != cond.reply_to_brand:
            return False
        if cond.complained_within_days is not None:
            since = ctx.now - timedelta(days=cond.complained_within_days)
            earlier = [at for at, _ in f.author_history if at >= since]
            if not earlier:
                return False
            r["earlier_complaints"] = len(earlier)
        if cond.all_of and not all(self._holds(c, ctx) for c in cond.all_of):
            return False
        if cond.any_of and not any(self._holds(c, ctx) for c in cond.any_of):
            return False
        if cond.not_ is not None:
            probe = _Context(f, ctx.terms, ctx.text, ctx.sentiment, ctx.now, {}, ctx.cache)
            if self._holds(cond.not_, probe):
                return False
        return True

    # ------------------------------------------------------------------ priority

    def _priority(self, f: MentionFacts, flag: str | None, hits: Sequence[RuleHit],
                  sentiment: float, now: datetime) -> tuple[float, dict[str, float]]:
        if flag in ("ignore", "spam"):
            return 0.0, {"severity": 0.0}
        severity = max((h.severity for h in hits if h.flag == flag), default=0.0)
        engagement_total = f.likes + f.reposts + f.replies
        age_h = max((now - f.created_at).total_seconds() / 3600, 0.0)
        parts = {
            "severity": severity,
            "negativity": max(0.0, -sentiment),
            "reach": min(1.0, math.log10(1 + (f.followers or 0)) / 6),
            "engagement": min(1.0, math.log10(1 + engagement_total) / 4),
            "velocity": min(1.0, math.log10(1 + engagement_total / max(age_h, 0.25)) / 3),
        }
        freshness = 0.5 ** (age_h / 24)
        raw = sum(WEIGHTS[k] * v for k, v in parts.items())
        score = round(raw * (0.5 + 0.5 * freshness), 4)
        rounded = {k: round(v, 3) for k, v in parts.items()}
        rounded["freshness"] = round(freshness, 3)
        return score, rounded

    # ------------------------------------------------------------------ drafts

    def _draft_rule(self, flag: str | None, hits: Sequence[RuleHit]) -> Rule | None:
        if flag is None or flag in ("ignore", "spam"):
            return None
        by_name = {r.name: r for _, r in self.rules}
        candidates = [by_name[h.rule] for h in hits if h.flag == flag and by_name[h.rule].reply]
        return max(candidates, key=lambda r: r.severity, default=None)

    def _fields(self, f: MentionFacts) -> dict[str, str]:
        handle = (f.author_handle or "").strip()
        author = f"@{handle.lstrip('@')}" if handle and f.source_kind in (
            "twitter", "mastodon", "bluesky") else handle
        digest = hashlib.sha256(f"{f.source}:{f.url}:{f.text}".encode()).hexdigest()
        return {
            "author": author,
            "first_name": first_name(f.author_name),
            "brand": self.brand.name,
            "case_ref": "MW-" + digest[:6].upper(),
            "support_email": self.brand.support_email or "",
            "support_phone": self.brand.support_phone or "",
            "support_hours": self.brand.support_hours or "",
            "source": f.source_kind,
        }
