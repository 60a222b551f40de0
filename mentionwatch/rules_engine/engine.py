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
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import regex

from mentionwatch.errors import RuleError
from mentionwatch.judgement import AT_HANDLE_KINDS, NO_DM_KINDS, Judgement, MentionFacts, RuleHit
from mentionwatch.rules_engine import classifier, prefilter
from mentionwatch.rules_engine.packs import Condition, Rule, RulePack, language_code
from mentionwatch.rules_engine.sentence import SentenceScorer, combine
from mentionwatch.rules_engine.sentiment import Sentiment
from mentionwatch.rules_engine.templates import first_name, fit, render
from mentionwatch.terms import TermMatcher, normalise_term

#: When several flags match, the first in this order wins.
FLAG_ORDER = ("ignore", "crisis", "spam", "complaint", "question", "praise")
#: The `source` value that also takes every source configured with `press = true`.
PRESS = "press"

WEIGHTS = {"severity": 0.45, "negativity": 0.20, "reach": 0.15, "engagement": 0.10,
           "velocity": 0.10}
_W_SEVERITY, _W_NEGATIVITY, _W_REACH, _W_ENGAGEMENT, _W_VELOCITY = WEIGHTS.values()


@dataclass(frozen=True, slots=True)
class BrandFacts:
    """What templates may say about the brand."""

    name: str
    support_email: str | None = None
    support_phone: str | None = None
    support_hours: str | None = None

    def contact(self) -> str:
        """The `{contact}` field: "help@acme.example or +1 555 0100 (Mon-Fri 9-5)", with
        what is configured; empty when there is neither an address nor a phone number."""
        ways = " or ".join(w for w in (self.support_email, self.support_phone) if w)
        return f"{ways} ({self.support_hours})" if ways and self.support_hours else ways


@dataclass(slots=True)  # not frozen: one is made per mention, and frozen ones cost more
class _Context:
    """One mention as every rule sees it. The per-mention features (the text, its terms, its
    sentiment) are computed once in `Engine._contexts` and shared by all rules; a new feature
    (a classifier score, say) is one more field here, filled there."""

    facts: MentionFacts
    terms: set[str]
    text: str
    sentiment: float
    now: datetime
    #: The complaint classifier's score (when a pack uses the classifier) and the features
    #: that weighed most (the feature set itself is not kept: a batch of them costs more in
    #: garbage collection than they save).
    complaint: float | None = None
    complaint_top: list[tuple[str, float]] | None = None
    #: The sentence model's and the word model's own probabilities, when the sentence model
    #: takes part (complaint is then the two combined, see sentence.combine).
    complaint_sentence: float | None = None
    complaint_word_model: float | None = None
    #: Each pattern searched in this text so far, and what it found: a pattern several rules
    #: share (the packs' "a problem that is over") is searched once per mention.
    searched: dict[str, Any] | None = None


#: A condition compiled to a pure test of a context (see `_compile`).
Test = Callable[[_Context], bool]


@dataclass(frozen=True, slots=True)
class _CompiledRule:
    pack: str
    rule: Rule
    test: Test


class Engine:
    """Evaluates rule packs. Build once (compiles one term matcher and each rule's test),
    call `judge` often."""

    def __init__(self, packs: Sequence[RulePack], brand: BrandFacts,
                 reply_limits: Mapping[str, int | None] | Callable[[str], int | None] | None
                 = None, sentence: SentenceScorer | None = None,
                 model: classifier.Model | None = None,
                 reply_lengths: Callable[[str], Callable[[str], int]] | None = None,
                 press_sources: Iterable[str] = (),
                 reply_prefixed: Callable[[str], bool] | None = None) -> None:
        self.packs = list(packs)
        #: The sources a `source = ["press"]` condition also takes (`press = true` in the
        #: config: a news site's feed), besides any source named "press".
        self._press = frozenset(press_sources)
        self.rules: list[tuple[str, Rule]] = [(p.name, r) for p in packs for r in p.rules]
        self.brand = brand
        # A mapping, or a function of the source kind (looked up lazily: importing every
        # connector just to read its limit costs seconds at start-up).
        limits = reply_limits or {}
        self._limit_for: Callable[[str], int | None] = (
            limits if callable(limits) else dict(limits).get
        )
        #: How each source kind counts a reply's length (plain characters unless told).
        self._length_for: Callable[[str], Callable[[str], int]] = (
            reply_lengths or (lambda kind: len))
        #: Whether a source kind puts `@author ` in front of a reply that does not name them
        #: (Mastodon notifies only the accounts a post names).
        self._prefixed: Callable[[str], bool] = reply_prefixed or (lambda kind: False)
        # The word model: the shipped one unless the config names another.
        self._model = ((model or classifier.default_model())
                       if any(r.when.uses_classifier() for _, r in self.rules) else None)
        all_terms: set[str] = set()
        for _, rule in self.rules:
            all_terms |= rule.when.terms()
        # The classifier's lexicon is found by the same one pass; rules only ever look at
        # their own terms, so the extra terms change nothing for them.
        if self._model is not None:
            all_terms |= self._model.lexicon.keys()
        self.matcher = TermMatcher(all_terms)
        self._regex: dict[str, Callable[[str], Any]] = {}
        # Which rules use each pattern, for the message of one that runs away.
        self._regex_rules: dict[str, list[str]] = {}
        for pack, rule in self.rules:
            for pattern in (p for part in rule.when.parts() for p in part.regex):
                self._regex_rules.setdefault(pattern, []).append(f"{pack}/{rule.name}")
        # Normalised term sets per condition (conditions are frozen and live with the engine).
        self._sets: dict[int, tuple[frozenset[str], frozenset[str], frozenset[str]]] = {}
        self.history_days = max((r.when.history_days() for _, r in self.rules), default=0)
        self._compiled = [_CompiledRule(pack, rule, self._compile(rule.when))
                          for pack, rule in self.rules]
        # A rule that cannot hold without one of its terms is tested only for a mention
        # that has one: a brand with 500 product rules pays for the few a post names.
        gates = [self._gate(rule.when) for _, rule in self.rules]
        self._ungated = [i for i, gate in enumerate(gates) if gate is None]
        self._ungated_rules = [self._compiled[i] for i in self._ungated]
        self._gated_by: dict[str, list[int]] = {}
        for i, gate in enumerate(gates):
            for term in gate or ():
                self._gated_by.setdefault(term, []).append(i)
        self._gate_terms = frozenset(self._gated_by)
        self._by_name = {r.name: r for _, r in self.rules}
        self._contact = brand.contact()
        # Where a source has no direct messages (Hacker News, Google Alerts), a reply asks
        # for an email or a call instead.
        self._reach_elsewhere = (f"email us at {brand.support_email}" if brand.support_email
                                 else f"call us on {brand.support_phone}" if brand.support_phone
                                 else "contact our support team")
        self._sentiment = Sentiment()
        #: The optional sentence model: complaint_score then combines both models' evidence.
        self.sentence = sentence

    def complaint_score(self, text: str, sentiment: float, found: set[str] | None = None,
                        sentence: float | None = None) -> tuple[float, list[tuple[str, float]]]:
        """The classifier's score for a text, with the word features that weighed most.
        `found`: the terms this engine's matcher found in the text (it includes the model's
        lexicon); `sentence`: the sentence model's probability, when already computed."""
        words, top = self._word_score(text, sentiment, found)
        if self.sentence is None:
            return words, top
        if sentence is None:
            sentence = self.sentence.scores([text])[0]
        return combine(words, sentence), top

    def _word_score(self, text: str, sentiment: float, found: set[str] | None
                    ) -> tuple[float, list[tuple[str, float]]]:
        model = self._model or classifier.default_model()
        # Only an engine with a model has the lexicon in its matcher (see __init__).
        feats = model.features(text, sentiment, found if self._model is not None else None)
        return model.score(feats), model.explain(feats)

    # ------------------------------------------------------------------ public

    def judge(self, mentions: Sequence[MentionFacts]) -> list[Judgement]:
        return [self._judge(ctx) for ctx in self._contexts(mentions, datetime.now(UTC))]

    def judge_one(self, facts: MentionFacts, *, now: datetime | None = None) -> Judgement:
        return self._judge(self._contexts([facts], now or datetime.now(UTC))[0])

    def _gate(self, cond: Condition) -> frozenset[str] | None:
        """Terms one of which must be in a mention for `cond` to hold, or None."""
        any_terms, all_terms, _ = self._term_sets(cond)
        if any_terms:
            return any_terms
        if all_terms:
            return frozenset([min(all_terms)])
        for sub in cond.all_of:
            gate = self._gate(sub)
            if gate is not None:
                return gate
        if cond.any_of:
            gates = [self._gate(sub) for sub in cond.any_of]
            if all(gate is not None for gate in gates):
                return frozenset().union(*(gate for gate in gates if gate is not None))
        return None

    def _candidates(self, terms: set[str]) -> list[_CompiledRule]:
        """The rules that may hold for a mention with these terms, in the packs' order."""
        compiled = self._compiled
        named = self._gate_terms.intersection(terms)
        if not named:
            return self._ungated_rules
        chosen = set(self._ungated)
        for term in named:
            chosen.update(self._gated_by[term])
        return [compiled[i] for i in sorted(chosen)]

    def _judge(self, ctx: _Context) -> Judgement:
        facts, sentiment, now = ctx.facts, ctx.sentiment, ctx.now
        hits: list[RuleHit] = []
        for compiled in self._candidates(ctx.terms):
            # The compiled test rejects most rules in a few comparisons; only a rule that
            # holds is walked again, the slow way, to say why.
            if not compiled.test(ctx):
                continue
            rule = compiled.rule
            why: dict[str, Any] = {}
            if self._holds(rule.when, ctx, why):
                hits.append(RuleHit(rule=rule.name, pack=compiled.pack, flag=rule.flag,
                                    severity=rule.severity, alert=rule.alert,
                                    explanation=why))
        flags = {h.flag for h in hits}
        flag = next((f for f in FLAG_ORDER if f in flags), None) if flags else None
        priority, parts = self._priority(facts, flag, hits, sentiment, now)
        explanation: dict[str, Any] = {
            "flag": flag, "sentiment": round(sentiment, 3), "priority": priority,
            "components": parts, "weights": WEIGHTS,
            "rules": [h.rule for h in hits],
        }
        if ctx.complaint is not None:
            explanation["complaint_score"] = round(ctx.complaint, 3)
            if ctx.complaint_top is not None:
                explanation["complaint_features"] = ctx.complaint_top
            if ctx.complaint_sentence is not None:
                explanation["complaint_sentence"] = round(ctx.complaint_sentence, 3)
                explanation["complaint_word_model"] = round(ctx.complaint_word_model or 0.0, 3)
        public: str | None = None
        private: str | None = None
        channel: str | None = None
        draft_rule: str | None = None
        chosen = self._draft_rule(flag, hits)
        if chosen is not None and chosen.reply is not None:
            reply = chosen.reply
            fields = self._fields(facts)
            if reply.public:
                public = self._fit_public(render(reply.public, fields), facts)
            if reply.private:
                private = render(reply.private, fields)
            channel = reply.channel
            draft_rule = chosen.name
        return Judgement(flag=flag, priority=priority, sentiment=sentiment, hits=tuple(hits),
                         public_draft=public, private_draft=private, private_channel=channel,
                         draft_rule=draft_rule, explanation=explanation)

    def _contexts(self, mentions: Sequence[MentionFacts], now: datetime) -> list[_Context]:
        """The per-mention features, each computed once per mention (VADER runs once per
        text), feature by feature over the batch: each stage keeps its own tables warm in the
        CPU caches (VADER's lexicon, the term automaton). A new feature is one more stage."""
        texts = [_text(m) for m in mentions]
        compound = self._sentiment.compound
        sentiments = [compound(_sentiment_part(text)) for text in texts]
        find = self.matcher.find
        terms = [find(text) for text in texts]
        contexts = [
            _Context(m, found, text, sentiment, now)
            for m, text, sentiment, found in zip(mentions, texts, sentiments, terms, strict=True)
        ]
        if self._model is not None:
            # The reasons of nearly every flagged mention name the strongest features, so
            # they are found now, with the score, and the feature set is let go.
            for ctx in contexts:
                ctx.complaint, ctx.complaint_top = self._word_score(
                    ctx.text, ctx.sentiment, ctx.terms)
            if self.sentence is not None:
                for ctx, sentence in zip(contexts, self.sentence.scores(texts), strict=True):
                    ctx.complaint_word_model, ctx.complaint_sentence = ctx.complaint, sentence
                    ctx.complaint = combine(ctx.complaint or 0.0, sentence)
        return contexts

    # ------------------------------------------------------------------ conditions

    # Every condition kind is written twice, side by side in meaning: `_compile` turns a
    # condition into a pure test (cheapest checks first, nothing recorded), run for every
    # rule and mention; `_holds` is the reference, in the pack's order, recording the reasons,
    # run only for rules whose test passed. A new kind goes into both (and into `_Context`
    # when it needs a per-mention feature); tests check that the two agree.

    def _term_sets(self, cond: Condition) -> tuple[frozenset[str], frozenset[str],
                                                    frozenset[str]]:
        """The normalised `any`, `all` and `none` terms of a condition."""
        sets = self._sets.get(id(cond))
        if sets is None:
            sets = self._sets[id(cond)] = (
                frozenset(normalise_term(t) for t in cond.any),
                frozenset(normalise_term(t) for t in cond.all),
                frozenset(normalise_term(t) for t in cond.none),
            )
        return sets

    def _pattern(self, pattern: str, parts: Sequence[str] = ()) -> Callable[[str], Any]:
        """A user pattern's search, case-insensitive and bounded in time (see
        REGEX_TIMEOUT): the pattern is a user's, the text a stranger's. `parts`: the
        patterns an alternation was joined from (an error names them, and their rules)."""
        search = self._regex.get(pattern)
        if search is None:
            named = parts or (pattern,)
            rules = sorted({r for p in named for r in self._regex_rules.get(p, [])})
            search = self._regex[pattern] = _bounded_search(pattern, rules, parts)
        return search

    def _any_regex(self, patterns: Sequence[str]) -> Test:
        """A test that one of `patterns` is found: one search of their alternation where
        they can be joined (each `search` call costs about as much as a short pattern's
        scan, mostly in setting up its time limit), else one search each."""
        joined = _alternation(patterns)
        if joined is None:
            return _any_pattern([(p, self._pattern(p)) for p in patterns])
        return _any_pattern([(joined, self._pattern(joined, patterns))])

    def _compile(self, cond: Condition) -> Test:
        """A pure test with the same verdict as `_holds(cond, ...)`, built once per rule: only
        the checks the condition uses, the ones that reject most mentions first."""
        checks: list[Test] = []
        any_terms, all_terms, none_terms = self._term_sets(cond)
        if any_terms:
            checks.append(lambda c: not any_terms.isdisjoint(c.terms))
        if cond.sentiment_below is not None:
            below = cond.sentiment_below
            checks.append(lambda c: c.sentiment <= below)
        if cond.sentiment_above is not None:
            above = cond.sentiment_above
            checks.append(lambda c: c.sentiment >= above)
        if cond.complaint_score_at_least is not None:
            least = cond.complaint_score_at_least
            checks.append(lambda c: (c.complaint or 0.0) >= least)
        if cond.complaint_score_below is not None:
            under = cond.complaint_score_below
            checks.append(lambda c: (c.complaint or 0.0) < under)
        if all_terms:
            checks.append(lambda c: all_terms <= c.terms)
        if none_terms:
            checks.append(lambda c: none_terms.isdisjoint(c.terms))
        checks += _fact_checks(cond, self._press)
        if cond.complained_within_days is not None:
            checks.append(_recent_complaint(timedelta(days=cond.complained_within_days)))
        if cond.regex:
            checks.append(self._any_regex(cond.regex))
        if cond.all_of:
            checks.append(_all_hold([self._compile(sub) for sub in cond.all_of]))
        if cond.any_of:
            checks.append(_any_holds([self._compile(sub) for sub in cond.any_of]))
        if cond.not_ is not None:
            negated = self._compile(cond.not_)
            checks.append(lambda c: not negated(c))
        return _all_hold(checks)

    def _holds(self, cond: Condition, ctx: _Context, r: dict[str, Any]) -> bool:
        """Whether the condition holds, recording in `r` the terms, patterns and numbers
        that made it (a failed alternative of `any_of` may leave some behind)."""
        f = ctx.facts
        any_terms, all_terms, none_terms = self._term_sets(cond)
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
                match = _searched(ctx, pattern, self._pattern(pattern))
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
            # Only the threshold: the words behind the score are the judgement's own
            # explanation (one line under the rules), not repeated in each rule that used it.
            # Shown as that line shows it (rounded as stored), so the two agree.
            score = ctx.complaint or 0.0
            shown = round(score, 3)
            if cond.complaint_score_at_least is not None:
                if not score >= cond.complaint_score_at_least:
                    return False
                r["complaint_score"] = f"{shown:.2f} >= {cond.complaint_score_at_least}"
            if cond.complaint_score_below is not None:
                if not score < cond.complaint_score_below:
                    return False
                r["complaint_score"] = f"{shown:.2f} < {cond.complaint_score_below}"
        if cond.source:
            sources = _sources(cond, self._press)
            if f.source_kind not in sources and f.source not in sources:
                return False
            if f.source_kind in sources:
                r["source"] = f.source_kind
            elif f.source in cond.source:
                r["source"] = f.source
            else:
                r["source"] = f"{f.source} (press)"
        if cond.language:
            code = language_code(f.language)
            if code not in cond.language:
                return False
            r["language"] = code
        if cond.followers_at_least is not None:
            if (f.followers or 0) < cond.followers_at_least:
                return False
            r["followers"] = f"{f.followers} >= {cond.followers_at_least}"
        if cond.verified is not None:
            if bool(f.verified) != cond.verified:
                return False
            r["verified"] = "yes" if f.verified else "no"
        if cond.engagement_at_least is not None:
            engagement = f.likes + f.reposts + f.replies
            if engagement < cond.engagement_at_least:
                return False
            r["engagement"] = f"{engagement} >= {cond.engagement_at_least}"
        if cond.reply_to_brand is not None:
            if f.is_reply_to_brand != cond.reply_to_brand:
                return False
            r["reply_to_brand"] = "yes" if f.is_reply_to_brand else "no"
        if cond.complained_within_days is not None:
            since = ctx.now - timedelta(days=cond.complained_within_days)
            earlier = [at for at, _ in f.author_history if at >= since]
            if not earlier:
                return False
            r["earlier_complaints"] = len(earlier)
        if cond.all_of and not all(self._holds(c, ctx, r) for c in cond.all_of):
            return False
        if cond.any_of and not any(self._holds(c, ctx, r) for c in cond.any_of):
            return False
        return cond.not_ is None or not self._holds(cond.not_, ctx, {})

    # ------------------------------------------------------------------ priority

    def _priority(self, f: MentionFacts, flag: str | None, hits: Sequence[RuleHit],
                  sentiment: float, now: datetime) -> tuple[float, dict[str, float]]:
        if flag in ("ignore", "spam"):
            return 0.0, {"severity": 0.0}
        severity = 0.0
        for hit in hits:
            if hit.flag == flag and hit.severity > severity:
                severity = hit.severity
        engagement_total = f.likes + f.reposts + f.replies
        age_h = max((now - f.created_at).total_seconds() / 3600, 0.0)
        negativity = max(0.0, -sentiment)
        reach = min(1.0, math.log10(1 + (f.followers or 0)) / 6)
        engagement = min(1.0, math.log10(1 + engagement_total) / 4)
        velocity = min(1.0, math.log10(1 + engagement_total / max(age_h, 0.25)) / 3)
        freshness = 0.5 ** (age_h / 24)
        # Summed in the order of WEIGHTS, written out: this runs for every mention.
        raw = (_W_SEVERITY * severity + _W_NEGATIVITY * negativity + _W_REACH * reach
               + _W_ENGAGEMENT * engagement + _W_VELOCITY * velocity)
        score = round(raw * (0.5 + 0.5 * freshness), 4)
        return score, {
            "severity": round(severity, 3), "negativity": round(negativity, 3),
            "reach": round(reach, 3), "engagement": round(engagement, 3),
            "velocity": round(velocity, 3), "freshness": round(freshness, 3),
        }

    # ------------------------------------------------------------------ drafts

    def _draft_rule(self, flag: str | None, hits: Sequence[RuleHit]) -> Rule | None:
        if flag is None or flag in ("ignore", "spam"):
            return None
        by_name = self._by_name
        candidates = [by_name[h.rule] for h in hits if h.flag == flag and by_name[h.rule].reply]
        return max(candidates, key=lambda r: r.severity, default=None)

    def _fit_public(self, text: str, f: MentionFacts) -> str:
        """A public reply fitted to its source's limit as the source will count it, with the
        `@author ` a Mastodon reply gets in front when the text does not name them (a pack's
        template without {author}); `@user@instance`, the longest form of the name."""
        kind = f.source_kind
        measure = self._length_for(kind)
        handle = (f.author_handle or "").strip().lstrip("@")
        limit = self._limit_for(kind)
        if handle and self._prefixed(kind) and f"@{handle}".lower() not in text.lower():
            prefix = f"@{handle} "
            return fit(text, limit, lambda draft: measure(prefix + draft))
        opener = f"@{handle} "
        if (limit is not None and handle and text.startswith(opener)
                and measure(text) > limit and measure(opener) > limit // 4):
            # A long handle (a Bluesky domain can take 253 of the 300) would leave no room
            # for what the reply says; the reply is threaded under the post without it.
            return fit(text[len(opener):], limit, measure)
        return fit(text, limit, measure)

    def _fields(self, f: MentionFacts) -> dict[str, str]:
        handle = (f.author_handle or "").strip().lstrip("@")
        # Where people are addressed by @handle. Elsewhere (Reddit, Hacker News, feeds) a
        # reply sits under the post it answers, and a bare user name in front of "Thank you"
        # reads as a slip ("anon Thank you for ..."), so the field is empty there.
        author = f"@{handle}" if handle and f.source_kind in AT_HANDLE_KINDS else ""
        digest = hashlib.sha256(
            f"{f.source}:{f.url}:{f.text}".encode("utf-8", "surrogatepass")).hexdigest()
        return {
            "author": author,
            "first_name": first_name(f.author_name),
            "brand": self.brand.name,
            "case_ref": "MW-" + digest[:6].upper(),
            "support_email": self.brand.support_email or "",
            "support_phone": self.brand.support_phone or "",
            "support_hours": self.brand.support_hours or "",
            "contact": self._contact,
            "source": f.source_kind,
            "reach_us": (self._reach_elsewhere if f.source_kind in NO_DM_KINDS
                         else "send us a direct message"),
        }


def _text(facts: MentionFacts) -> str:
    """What the rules read: the title (when there is one) and the text."""
    return f"{facts.title}\n{facts.text}" if facts.title else facts.text


#: How much of a text its sentiment is read from. VADER's time grows with the square of a
#: text's length (2,000 characters: about 2 ms; a 129 KB feed item: 23 s, a stalled poll),
#: and past a few thousand characters its compound score is near +1 or -1 whatever the
#: text says.
SENTIMENT_CHARS = 2000


def _sentiment_part(text: str) -> str:
    """The first SENTIMENT_CHARS characters of `text`, cut at a space where there is one."""
    if len(text) <= SENTIMENT_CHARS:
        return text
    head = text[:SENTIMENT_CHARS]
    cut = head.rfind(" ", SENTIMENT_CHARS // 2)
    return head[:cut] if cut > 0 else head


def _sources(cond: Condition, press: frozenset[str]) -> frozenset[str]:
    """The kinds and source names a `source` condition takes: "press" stands for the sources
    configured with `press = true` too."""
    named = frozenset(cond.source)
    return named | press if PRESS in named else named


def _fact_checks(cond: Condition, press: frozenset[str]) -> list[Test]:
    """Tests of the mention's own facts (source, language, reach, engagement, reply)."""
    checks: list[Test] = []
    if cond.source:
        sources = _sources(cond, press)
        checks.append(lambda c: c.facts.source_kind in sources or c.facts.source in sources)
    if cond.language:
        languages = frozenset(cond.language)
        checks.append(lambda c: language_code(c.facts.language) in languages)
    if cond.followers_at_least is not None:
        followers = cond.followers_at_least
        checks.append(lambda c: (c.facts.followers or 0) >= followers)
    if cond.verified is not None:
        verified = cond.verified
        checks.append(lambda c: bool(c.facts.verified) == verified)
    if cond.engagement_at_least is not None:
        engagement = cond.engagement_at_least
        checks.append(lambda c: c.facts.likes + c.facts.reposts + c.facts.replies >= engagement)
    if cond.reply_to_brand is not None:
        reply = cond.reply_to_brand
        checks.append(lambda c: c.facts.is_reply_to_brand == reply)
    return checks


def _recent_complaint(window: timedelta) -> Test:
    def test(ctx: _Context) -> bool:
        history = ctx.facts.author_history
        if not history:
            return False
        since = ctx.now - window
        return any(at >= since for at, _ in history)

    return test


#: How long one rule's regular expression may search one post. The `regex` module runs the
#: nested repeats that take the standard library exponential time ("(\w+\s?)+$" on a long
#: post) in linear time; the few patterns it cannot tame stop here with an error naming
#: them, instead of stalling the poll.
REGEX_TIMEOUT = 0.25


def _bounded_search(pattern: str, rules: Sequence[str] = (),
                    parts: Sequence[str] = ()) -> Callable[[str], Any]:
    """`pattern`'s search, bounded in time; `parts`: the patterns it was joined from."""
    search = regex.compile(pattern, regex.IGNORECASE).search
    used_by = f" (rule {', '.join(rules)})" if rules else ""
    if len(parts) > 1:
        what = "One of the regular expressions " + " or ".join(repr(p) for p in parts)
    else:
        what = f"The regular expression {pattern!r}"
    need = prefilter.required(pattern)

    def bounded(text: str) -> Any:
        if need is not None and not prefilter.may_match(need, text):
            return None  # none of the words it needs: it cannot match
        try:
            return search(text, timeout=REGEX_TIMEOUT)
        except TimeoutError:
            raise RuleError(
                f"{what}{used_by} took over {REGEX_TIMEOUT} s on one post.",
                hint="Simplify it: nested repeats such as ((a|aa)+)+ can take forever on "
                     "some texts.") from None

    return bounded


#: Inline flags at the start of a pattern ("(?s)..."), which apply to the whole pattern.
_LEADING_FLAGS = regex.compile(r"\(\?([aiLmsux]+)\)")
#: What a pattern can hold that would change meaning once joined to others: group numbers
#: and names (backreferences, conditionals, recursion), flags that are not at its start, and
#: the verbose flag (a comment would swallow the rest of the alternation).
_UNJOINABLE = regex.compile(r"\\[1-9g]|\(\?(?:P|<[A-Za-z_]|&|\(|R|[-+]?[0-9])"
                            r"|\(\?[a-zA-Z-]*[xV]|(?<!^)\(\?[aiLmsux]+\)")


def _alternation(patterns: Sequence[str]) -> str | None:
    """One pattern found wherever one of `patterns` is ("(?:a)|(?:b)", each one's leading
    flags kept to it), or None when there is one pattern or they cannot safely be joined."""
    if len(patterns) < 2:
        return None
    parts = []
    for pattern in patterns:
        if _UNJOINABLE.search(pattern):
            return None
        flags = _LEADING_FLAGS.match(pattern)
        if flags:
            parts.append(f"(?{flags.group(1)}:{pattern[flags.end():]})")
        else:
            parts.append(f"(?:{pattern})")
    joined = "|".join(parts)
    try:
        regex.compile(joined, regex.IGNORECASE)
    except regex.error:
        return None
    return joined


_UNSEEN = object()


def _searched(ctx: _Context, pattern: str, search: Callable[[str], Any]) -> Any:
    """`search(ctx.text)`, once per mention and pattern (see `_Context.searched`)."""
    memo = ctx.searched
    if memo is None:
        memo = ctx.searched = {}
    found = memo.get(pattern, _UNSEEN)
    if found is _UNSEEN:
        found = memo[pattern] = search(ctx.text)
    return found


def _any_pattern(patterns: Sequence[tuple[str, Callable[[str], Any]]]) -> Test:
    def test(ctx: _Context) -> bool:
        for pattern, search in patterns:  # noqa: SIM110 (a loop, not any(): see _all_hold)
            if _searched(ctx, pattern, search):
                return True
        return False

    return test


def _any_holds(alternatives: Sequence[Test]) -> Test:
    def test(ctx: _Context) -> bool:
        for alternative in alternatives:  # noqa: SIM110 (see _all_hold)
            if alternative(ctx):
                return True
        return False

    return test


def _all_hold(checks: Sequence[Test]) -> Test:
    """One test that holds when every check does (in order, stopping at the first miss)."""
    if len(checks) == 1:
        return checks[0]
    if len(checks) == 2:
        first, second = checks
        return lambda c: first(c) and second(c)

    def test(ctx: _Context) -> bool:
        # A loop, not all(genexpr): this runs for every rule and mention.
        for check in checks:  # noqa: SIM110
            if not check(ctx):
                return False
        return True

    return test
