"""`mentionwatch rules test|check|rescore`: see what the rules would do, check packs, re-run."""

from __future__ import annotations

import contextlib
import json
import sys
import textwrap
import unicodedata
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from rich.panel import Panel
from rich.text import Text

from mentionwatch.cli.context import AppContext, pass_app
from mentionwatch.config import BrandConfig, Config
from mentionwatch.errors import ConfigError, MentionwatchError, RuleError
from mentionwatch.judgement import Judgement, MentionFacts, explanation_lines, reasons_text
from mentionwatch.text import clean_text, one_line

if TYPE_CHECKING:  # the rules engine loads VADER: imported when a command needs it
    from mentionwatch.rules_engine.packs import Rule, RulePack
    from mentionwatch.store import Rescored


@click.group("rules")
def rules_group() -> None:
    """Rule packs: try a text, check packs, re-score stored mentions."""


def _engine(config: Config) -> Any:
    from mentionwatch.rules_engine import load_judge

    return load_judge(config)


#: What `rules test` judges as when there is no configuration yet (straight after `demo`).
_EXAMPLE_BRAND = {"brand": {"name": "Acme", "terms": ["acme"]}}


@rules_group.command("test")
@click.argument("text")
@click.option("--source", "source", default="twitter", show_default=True,
              help="Where the post came from: a source kind (twitter, reddit, mastodon, "
                   "bluesky, hackernews, rss, google_alerts) or the name of one of your "
                   "sources. Sets the reply's length limit and how the author is addressed.")
@click.option("--author", default="customer", show_default=True, help="Author handle.")
@click.option("--name", "author_name", default=None, help="Author display name.")
@click.option("--followers", type=click.IntRange(min=0), default=0, show_default=True,
              help="The author's followers (reach, and followers_at_least).")
@click.option("--verified", is_flag=True, help="The author's account is verified (only "
              "rules with a `verified` condition read it; the shipped packs have none).")
@click.option("--likes", type=click.IntRange(min=0), default=0,
              help="Likes so far (engagement and its velocity).")
@click.option("--reposts", type=click.IntRange(min=0), default=0, help="Reposts so far.")
@click.option("--replies", type=click.IntRange(min=0), default=0, help="Replies so far.")
@click.option("--age", "age_minutes", type=click.IntRange(min=0, max=10 * 365 * 24 * 60),
              default=5, show_default=True, help="Minutes since it was posted.")
@click.option("--reply-to-brand", is_flag=True, help="The post answers the brand account "
              "(only rules with a `reply_to_brand` condition read it; the shipped packs have "
              "none).")
@click.option("--language", default="en", show_default=True,
              help="The post's language code (for language conditions).")
@click.option("--json", "as_json", is_flag=True, help="Print the judgement as JSON.")
@pass_app
def rules_test(app: AppContext, text: str, source: str, author: str,
               author_name: str | None, followers: int, verified: bool, likes: int,
               reposts: int, replies: int, age_minutes: int, reply_to_brand: bool,
               language: str, as_json: bool) -> None:
    """Show the flags, priority (with why) and both drafts the rules give TEXT
    (`-` reads it from standard input: a pasted post with quotes and line breaks).

    Example: mentionwatch rules test "@acme down again, 3rd time this week" --followers 12000
    """
    if text == "-":
        text = sys.stdin.read()
    # As a poll would store it: terminal escapes and control characters out, whitespace
    # tidied (so the rules judge what they would judge, and nothing reaches the terminal).
    text = clean_text(text, is_html=False)
    author = one_line(author)
    author_name = one_line(author_name) or None
    # Nothing visible (only spaces, or only zero-width characters) is no post either.
    if not any(not c.isspace() and unicodedata.category(c) not in ("Cc", "Cf") for c in text):
        raise click.UsageError("TEXT is empty: give the post to try, or - to read it from "
                               "standard input.")
    config = _config_if_any(app)
    if config is None:
        from mentionwatch.config import parse_config

        config = parse_config(_EXAMPLE_BRAND, Path("(built-in example)"))
        app.err.print(Text("No configuration file: judging with the shipped packs, for an "
                           "example brand called Acme (`mentionwatch init` writes your own).",
                           style="dim"))
    source_kind = _source_kind(config, source)
    engine = _engine(config)
    facts = MentionFacts(
        source=source, source_kind=source_kind, text=text, title=None, url=None,
        author_handle=author, author_name=author_name, followers=followers,
        verified=verified, language=language,
        created_at=datetime.now(UTC) - timedelta(minutes=age_minutes),
        likes=likes, reposts=reposts, replies=replies, is_reply_to_brand=reply_to_brand,
    )
    judgement: Judgement = engine.judge_one(facts)
    if as_json:
        click.echo(json.dumps(judgement_json(judgement), indent=2, ensure_ascii=False))
        return
    out = app.out
    out.print(Text.assemble(("flag: ", "bold"), judgement.flag or "none (a plain mention)",
                            ("   priority: ", "bold"), f"{judgement.priority:.3f}",
                            ("   sentiment: ", "bold"), f"{judgement.sentiment:+.3f}"))
    if judgement.hits:
        # As the triage screen has them: the rule on one line, its reasons indented below
        # (a table squeezed the reasons into a narrow column on an 80-column terminal).
        out.print(Text("Rules that matched", style="bold"))
        for hit in judgement.hits:
            alert = ", alerts on-call" if hit.alert else ""
            out.print(Text(f"  {hit.pack or '-'}/{hit.rule} ({hit.flag}, severity "
                           f"{hit.severity:.2f}{alert})"))
            out.print(Text(textwrap.fill(reasons_text(hit.explanation), width=max(out.width, 40),
                                         initial_indent=" " * 6, subsequent_indent=" " * 6,
                                         break_on_hyphens=False)))
    for line in explanation_lines(judgement.explanation, judgement.priority, judgement.flag):
        out.print(Text(line))
    for title, draft in (("public reply", judgement.public_draft),
                         (f"private follow-up ({judgement.private_channel})",
                          judgement.private_draft)):
        if draft:
            out.print(Panel(Text(draft), title=title, title_align="left"))


def _source_kind(config: Config, source: str) -> str:
    """The kind behind --source: one of the user's sources by name, else a kind."""
    from mentionwatch import registry

    by_name = {s.name: s.kind for s in config.sources}
    if source in by_name:
        return by_name[source]
    kinds = registry.available_kinds()
    if source not in kinds:
        names = f"; your sources: {', '.join(sorted(by_name))}" if by_name else ""
        raise click.BadParameter(
            f"{source!r} is neither a source kind nor one of your sources. "
            f"Kinds: {', '.join(sorted(kinds))}{names}.", param_hint="--source")
    return source


def judgement_json(j: Judgement) -> dict[str, Any]:
    return {
        "flag": j.flag, "priority": j.priority, "sentiment": j.sentiment,
        "hits": [{"rule": h.rule, "pack": h.pack, "flag": h.flag, "severity": h.severity,
                  "alert": h.alert, "why": h.explanation} for h in j.hits],
        "explanation": j.explanation, "public_draft": j.public_draft,
        "private_draft": j.private_draft, "private_channel": j.private_channel,
        "draft_rule": j.draft_rule,
    }


@rules_group.command("check")
@click.argument("directory", required=False, type=click.Path(path_type=Path))
@pass_app
def rules_check(app: AppContext, directory: Path | None) -> None:
    """Validate rule packs: unknown keys, wrong types, bad regexes, unknown template fields,
    duplicate names. Without DIRECTORY, checks the packs the config uses; with it (a folder
    of *.toml packs, or one pack file), checks it together with them (what adding it to
    [rules] dirs would give). Every file with a problem is named. Warns about
    what is valid but likely wrong: a source no config has, a public reply longer than its
    source allows, a public reply asking for private data. Exit code 2 on a problem."""
    from mentionwatch.resources import rules_dir
    from mentionwatch.rules_engine import load_packs, pack_dirs

    if directory is not None and not directory.exists():
        raise RuleError(f"{directory}: no such folder or file.",
                        hint="Give the folder that holds your *.toml packs, or one pack file.")
    config = app.config if directory is None else _config_if_any(app)
    dirs = pack_dirs(config) if config is not None else [rules_dir()]
    if directory is not None and directory.resolve() not in {d.resolve() for d in dirs}:
        dirs.append(directory)
    if not dirs:
        raise RuleError("No rule packs: [rules] defaults = false and no [rules] dirs.",
                        hint="Enable [rules] defaults or add a folder to [rules] dirs.")
    packs = load_packs(dirs)  # every broken file named at once
    # Everything is checked before anything is called OK (a cron mail that says "OK" and
    # then an error reads as both).
    models: list[str] = []
    if directory is None and app.config.rules.complaint_model_file is not None:
        from mentionwatch.rules_engine import word_model

        model = word_model(app.config)
        assert model is not None
        models.append(f"complaint_model_file: OK ({len(model.weights)} weights, trained on "
                      f"{model.trained_on.get('rows', '?')} posts)")
    if directory is None and app.config.rules.complaint_model == "words+sentence":
        from mentionwatch.rules_engine import sentence_dir
        from mentionwatch.rules_engine.sentence import check

        folder, _ = check(sentence_dir(app.config))
        models.append(f"complaint_model words+sentence: OK (the model in {folder})")
    rules = sum(len(p.rules) for p in packs)
    app.out.print(Text(f"{len(packs)} packs, {rules} rules: OK "
                       f"({', '.join(p.name for p in packs)})"))
    for line in models:
        app.out.print(Text(line))
    for warning in _pack_warnings(packs, config):
        app.err.print(Text(f"warning: {warning}", style="yellow"))


def _config_if_any(app: AppContext) -> Config | None:
    """The config when there is one: `rules check DIR` also works without."""
    try:
        return app.config
    except ConfigError as exc:
        if "No configuration file found" in exc.message:
            return None
        raise


#: Words a public reply should not ask for (the private follow-up is for them).
_PRIVATE_ASKS = ("account number", "password", "address", "date of birth", "card number",
                 "social security", "pin code", "order number")


def _pack_warnings(packs: list[RulePack], config: Config | None) -> list[str]:
    """What is valid but likely a mistake, one line each, naming the file and the rule."""
    from mentionwatch import registry
    from mentionwatch.connector import StoredMentionRef
    from mentionwatch.rules_engine import BrandFacts
    from mentionwatch.rules_engine.engine import PRESS

    kinds = set(registry.available_kinds())
    names = {s.name: s.kind for s in config.sources} if config is not None else {}
    used_kinds = set(names.values()) or {"twitter"}
    brand = config.brand if config is not None else None
    # The longest values a draft is likely to get, to see whether a reply fits.
    sample = {"author": "@" + "a" * 15, "first_name": "Alexandra", "case_ref": "MW-ABC123",
              "brand": brand.name if brand else "Acme", "source": "bluesky",
              "support_email": (brand.support_email if brand else None) or "help@example.com",
              "support_phone": (brand.support_phone if brand else None) or "+1 555 0100",
              "support_hours": (brand.support_hours if brand else None) or "Mon-Fri 9-17"}
    sample["contact"] = BrandFacts(sample["brand"], sample["support_email"],
                                   sample["support_phone"], sample["support_hours"]).contact()
    # The sample author as a connector answers them (Mastodon names them unless the reply does).
    author = StoredMentionRef("1", None, sample["author"].lstrip("@"), None, None, "post", {})
    unset = _unset_fields(brand) if brand is not None else set()
    out: list[str] = []
    for pack in packs:
        for rule in pack.rules:
            where = f"{pack.path}: rule {rule.name!r}"
            sources = {s for part in rule.when.parts() for s in part.source}
            unknown = sorted(v for v in sources
                             if v not in kinds and v not in names and v != PRESS)
            if unknown:
                known = ", ".join(sorted(kinds | set(names)))
                out.append(f"{where}: source {', '.join(map(repr, unknown))} is neither a "
                           f"source kind nor one of your sources ({known}); it never matches")
            out += _empty_field_warnings(where, rule, unset)
            out += _length_warnings(where, rule, sorted(
                {names.get(v, v) for v in sources} & kinds or used_kinds), sample, author)
    return out


def _length_warnings(where: str, rule: Any, kinds: list[str], sample: dict[str, str],
                     author: Any) -> list[str]:
    """A rule's drafts, filled with long sample values, against each source kind's limits."""
    from mentionwatch.rules_engine import measure_private, measure_reply
    from mentionwatch.rules_engine.templates import render

    public = rule.reply.public if rule.reply else None
    private = rule.reply.private if rule.reply else None
    out: list[str] = []
    if public:
        asks = [w for w in _PRIVATE_ASKS if w in public.lower()]
        if asks:
            out.append(f"{where}: the public reply mentions {', '.join(asks)}: ask for "
                       "private details in the private follow-up, never in public")
    # The engine cuts a public draft to fit; a follow-up is left whole for a person to cut.
    checks = ((public, "public reply", measure_reply, "",
               "drafts there are cut short (at a sentence or word)"),
              (private, "private follow-up", measure_private, " for a private message",
               "shorten it, or each one must be cut by hand before approval"))
    for template, what, measure, limit_of, then in checks:
        if not template:
            continue
        drafted = render(template, sample)
        for kind in kinds:
            length, limit = measure(kind, drafted, author)
            if limit is not None and length > limit:
                out.append(f"{where}: the {what} comes to about {length} characters, over "
                           f"{kind}'s {limit}{limit_of}: {then}")
    return out


def _flag_changes(done: Rescored) -> str:
    """"2 changed flag: none -> crisis 1, complaint -> none 1" (most first)."""
    if not done.changed:
        return "no flag changed"
    total = sum(done.changed.values())
    moves = sorted(done.changed.items(), key=lambda kv: (-kv[1], str(kv[0])))
    said = ", ".join(f"{old or 'none'} -> {new or 'none'} {n}" for (old, new), n in moves)
    return f"{total} changed flag: {said}"


def _unset_fields(brand: BrandConfig) -> set[str]:
    """The support fields this brand's drafts would get empty, as the engine fills them."""
    from mentionwatch.rules_engine import BrandFacts

    facts = BrandFacts(brand.name, brand.support_email, brand.support_phone,
                       brand.support_hours)
    values = {"support_email": facts.support_email, "support_phone": facts.support_phone,
              "support_hours": facts.support_hours, "contact": facts.contact()}
    return {name for name, value in values.items() if not value}


def _empty_field_warnings(where: str, rule: Rule, unset: set[str]) -> list[str]:
    """A template using a support field the config leaves empty (`unset`), outside an
    optional part: the draft would read "call us at." (the fields are [brand] settings)."""
    if not unset or rule.reply is None:
        return []
    from mentionwatch.rules_engine.templates import OPTIONAL, fields_in

    out = []
    for part, template in (("public reply", rule.reply.public),
                           ("private follow-up", rule.reply.private)):
        for field in sorted(unset.intersection(fields_in(OPTIONAL.sub("", template or "")))):
            setting = ("support_email or support_phone" if field == "contact" else field)
            out.append(f"{where}: the {part} uses {{{field}}} but [brand] {setting} is not "
                       "set, so the draft has a hole there: set it, or put that sentence in "
                       "[[ ... ]] so it is left out")
    return out


@rules_group.command("rescore")
@click.option("--since", metavar="DURATION|DATE", default=None,
              help="Only mentions found since then: a duration back from now (24h, 7d) or "
              "an ISO date. Default: every stored mention, however old.")
@click.option("--source", "sources", multiple=True, metavar="NAME",
              help="Only this source's mentions (repeatable).")
@pass_app
def rules_rescore(app: AppContext, since: str | None, sources: tuple[str, ...]) -> None:
    """Re-run the rules over stored mentions after a rule change: flags, priorities and
    drafts. Drafts a person has edited are kept. Re-scoring old mentions changes the flags
    past reports count; --since 7d re-judges what is still current."""
    from rich.progress import Progress

    from mentionwatch.cli.context import parse_since
    from mentionwatch.cli.report import check_sources

    start = parse_since(since, datetime.now(UTC)) if since is not None else None
    check_sources(app, sources)
    engine = _engine(app.config)
    store = app.store
    total = store.count_mentions(sources=sources, since=start)
    with Progress(console=app.err, disable=not app.err.is_terminal) as progress:
        task = progress.add_task("Re-scoring", total=total)
        done = store.rescore(engine, on_progress=lambda n: progress.advance(task, n),
                             since=start, sources=sources)
    window = (f" found since {start.astimezone(UTC):%Y-%m-%d %H:%M} UTC" if start is not None
              else "")
    app.out.print(f"Re-scored {done.mentions - done.failed} mentions{window}; "
                  f"{_flag_changes(done)}.")
    if done.failed:
        app.err.print(Text(f"The rules failed on {done.failed} mentions, which keep their "
                           f"earlier judgement ({done.error}). The log has the traceback.",
                           style="red"))
        sys.exit(1)



@rules_group.command("train")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path),
              default=Path("complaint_model.json"), show_default=True,
              help="Where to write the model; the training posts go beside it as .csv.")
@click.option("--decisions-only", is_flag=True,
              help="Train on your decisions alone, without the shipped training posts.")
@pass_app
def rules_train(app: AppContext, out: Path, decisions_only: bool) -> None:
    """Retrain the complaint classifier on your team's own decisions.

    Approved replies to complaints count as complaints; approved replies to other mentions,
    and mentions dismissed as not relevant or spam, as not. They are added to the shipped
    training posts (unless --decisions-only). Then set [rules] complaint_model_file to the
    written model and run `mentionwatch rules rescore`.
    """
    from mentionwatch.decisions import decisions, write_training
    from mentionwatch.rules_engine.classifier import train_file
    from mentionwatch.rules_engine.train import L2, default_lexicon, shipped_training, word_teacher

    found = decisions(app.store)
    if not found or (decisions_only and len({d.label for d in found}) < 2):
        # Exit 1, not 2: nothing is misconfigured, the store holds too little yet.
        raise MentionwatchError(
            f"Not enough decisions to learn from ({len(found)} labelled mentions).",
            hint="Approve replies and dismiss mentions (d, s) in `mentionwatch tui` first"
                 + ("; --decisions-only needs both kinds." if decisions_only else "."))
    data = out.with_suffix(".csv")
    shipped = None if decisions_only else shipped_training()
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        base, count = write_training(data, found, shipped)
    except OSError as exc:
        raise RuleError(f"Cannot write the training posts to {data}: {exc.strerror or exc}.",
                        hint="Pass --out a path in a folder you can write to.") from None
    with app.err.status(f"Training on {base + count:,} posts...") if app.err.is_terminal \
            else contextlib.nullcontext():
        model = train_file(data, default_lexicon(), teacher=word_teacher(data), l2=L2)
    try:
        out.write_text(model.to_json(), encoding="utf-8")
    except OSError as exc:
        raise RuleError(f"Cannot write the model to {out}: {exc.strerror or exc}.",
                        hint="Pass --out a path in a folder you can write to.") from None
    complaints = sum(d.label for d in found)
    app.out.print(Text(f"Wrote {out} from {count} decisions ({complaints} complaints, "
                       f"{count - complaints} not) and {base:,} shipped posts; the training "
                       f"posts are in {data}."))
    if count < 50:
        # benchmarks/rules_train_gain.py: even a few hundred decisions teach the model little
        # beyond the words they use; say so rather than promise more.
        app.out.print(Text(f"Only {count} decisions: a word your customers use starts to "
                           "count once it is in several of them."))
    app.out.print(Text(f'To use it: [rules] complaint_model_file = "{out.resolve()}", then '
                       "`mentionwatch rules rescore`."))
