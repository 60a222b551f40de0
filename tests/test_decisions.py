"""Retraining the complaint classifier on a team's own decisions: approvals and dismissals in
the audit trail become labelled posts, `rules train` writes a model, and the config uses it.
Real approvals and dismissals through the outbox, on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import sys
from pathlib import Path
from typing import Any

import pytest

from mentionwatch import outbox
from mentionwatch.cli import cli
from mentionwatch.cli.context import run_guarded
from mentionwatch.config import load_config
from mentionwatch.decisions import decisions, write_training
from mentionwatch.errors import RuleError
from mentionwatch.rules_engine import classifier as clf
from mentionwatch.rules_engine import load_judge
from mentionwatch.store import Store
from tests.conftest import make_config
from tests.test_outbox import setup_mention


def _set_text(store: Store, mention_id: int, text: str, flag: str) -> None:
    from sqlalchemy import update

    from mentionwatch.models import Mention

    with store.engine.begin() as conn:
        conn.execute(update(Mention).where(Mention.id == mention_id)
                     .values(text=text, flag=flag))


def _mention(store: Store, config: Any, external_id: str, text: str, flag: str) -> int:
    mention_id = setup_mention(store, config, flag=flag, external_id=external_id)
    _set_text(store, mention_id, text, flag)
    return mention_id


def test_decisions_become_labels_and_only_the_latest_counts(postbox: None, receiver: Any,
                                                            store: Store, db_url: str) -> None:
    config = make_config(db_url, [{"name": "box", "kind": "postbox", "url": receiver.url}])
    answered = _mention(store, config, "a", "@acme day 4 without internet", "complaint")
    question = _mention(store, config, "b", "@acme do you ship to Ireland?", "question")
    spam = _mention(store, config, "c", "WIN a free acme phone, click here", "complaint")
    homonym = _mention(store, config, "d", "acme anvils in cartoons lol", "complaint")
    undone = _mention(store, config, "e", "@acme still no refund", "complaint")
    elsewhere = _mention(store, config, "f", "@acme answered on the phone", "complaint")
    _mention(store, config, "g", "@acme never looked at", "complaint")
    by_hand = _mention(store, config, "h", "acme forum: billed twice again", "complaint")
    outbox.mark(store, by_hand, "replied_elsewhere", operator="dana")
    unflagged = setup_mention(store, config, flag=None, external_id="i")  # type: ignore[arg-type]
    outbox.approve(store, unflagged, "reply", operator="dana")
    outbox.approve(store, answered, "reply", operator="dana")
    outbox.approve(store, question, "reply", operator="dana")
    outbox.mark(store, spam, "dismissed", operator="dana", reason="spam")
    outbox.mark(store, homonym, "dismissed", operator="dana", reason="not relevant")
    outbox.mark(store, undone, "dismissed", operator="dana", reason="not relevant")
    store.set_status(undone, "new", actor="dana", event="undo_dismiss")
    outbox.mark(store, elsewhere, "dismissed", operator="dana", reason="handled elsewhere")

    # A rescore that later unflags an answered complaint does not relabel the decision.
    _set_text(store, answered, "@acme day 4 without internet", "question")
    got = {d.mention_id: (d.label, d.kind, d.text) for d in decisions(store)}
    assert got == {
        answered: (1, "answered-complaint", "@acme day 4 without internet"),
        question: (0, "answered-question", "@acme do you ship to Ireland?"),
        spam: (0, "dismissed-spam", "WIN a free acme phone, click here"),
        homonym: (0, "dismissed-not relevant", "acme anvils in cartoons lol"),
        by_hand: (1, "answered-complaint", "acme forum: billed twice again"),
    }


def test_the_training_file_keeps_the_shipped_posts_and_adds_the_decisions(
        tmp_path: Path) -> None:
    from mentionwatch.decisions import Decision

    shipped = tmp_path / "shipped.csv"
    shipped.write_text('text,label,kind,set\n"a, b",1,x,s1\nc,0,y,s2\n', encoding="utf-8")
    out = tmp_path / "mine.csv"
    found = [Decision(1, 'line one\nsaid "no"', 1, "answered-complaint")]
    assert write_training(out, found, shipped) == (2, 1)
    rows = list(csv.DictReader(out.open(encoding="utf-8", newline="")))
    assert [(r["text"], r["label"], r["set"]) for r in rows] == [
        ("a, b", "1", "s1"), ("c", "0", "s2"), ('line one\nsaid "no"', "1", "decisions")]
    assert clf.read_training(out)[-1] == ('line one\nsaid "no"', 1)


def run_cli(argv: list[str], monkeypatch: pytest.MonkeyPatch,
         capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    monkeypatch.setattr(sys, "argv", ["mentionwatch", *argv])
    try:
        code = run_guarded(cli)
    except SystemExit as exc:  # a command that sets its own exit code (poll: 1)
        code = int(exc.code or 0)
    captured = capsys.readouterr()
    return code, " ".join((captured.out + captured.err).split())


def test_rules_train_writes_a_model_the_config_then_uses(
        postbox: None, receiver: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "mw.db"
    path = tmp_path / "mentionwatch.toml"
    path.write_text('[brand]\nname = "Acme"\nterms = ["acme"]\n'
                    f'[database]\nurl = "sqlite:///{db}"\n'
                    '[[sources]]\nname = "box"\nkind = "postbox"\n'
                    f'url = "{receiver.url}"\n', encoding="utf-8")
    config = load_config(path, environ={})
    store = Store.open(config.database_url())
    try:
        code, output = run_cli(["--config", str(path), "rules", "train", "--decisions-only"],
                            monkeypatch, capsys)
        assert code == 1 and "Not enough decisions" in output
        # A brand whose customers say "zorbed" when its service fails.
        for i in range(6):
            mid = _mention(store, config, f"c{i}", f"@acme my line is zorbed again, day {i}",
                           "complaint")
            outbox.approve(store, mid, "reply", operator="dana")
            nid = _mention(store, config, f"n{i}", f"acme zorbing class {i} was fun",
                           "complaint")
            outbox.mark(store, nid, "dismissed", operator="dana", reason="not relevant")
    finally:
        store.close()
    out = tmp_path / "models" / "mine.json"
    out.parent.mkdir()
    code, output = run_cli(["--config", str(path), "rules", "train", "--decisions-only",
                         "--out", str(out)], monkeypatch, capsys)
    assert code == 0, output
    assert "from 12 decisions (6 complaints, 6 not)" in output
    assert "complaint_model_file" in output and "Only 12 decisions" in output
    trained = clf.Model.from_json(out.read_text(encoding="utf-8"))
    assert trained.trained_on["rows"] == 12 and (out.parent / "mine.csv").is_file()
    # The shipped teacher knows none of these posts: every target is the team's label.
    assert trained.trained_on["teacher"]["rows"] == 0  # type: ignore[index]
    assert trained.weights.get("zorbed", 0) > 0 > trained.weights.get("zorbing", 0)

    with path.open("a", encoding="utf-8") as handle:
        handle.write('[rules]\ncomplaint_model_file = "models/mine.json"\n')
    engine = load_judge(load_config(path, environ={}))
    assert engine.complaint_score("@acme zorbed again", 0.0)[0] == pytest.approx(
        trained.score(trained.features("@acme zorbed again", 0.0)))
    code, output = run_cli(["--config", str(path), "rules", "check"], monkeypatch, capsys)
    assert code == 0 and "complaint_model_file: OK" in output


def test_an_unreadable_model_file_names_itself(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "mentionwatch.toml"
    (tmp_path / "bad.json").write_text("{not json", encoding="utf-8")
    path.write_text('[brand]\nname = "Acme"\nterms = ["acme"]\n'
                    '[rules]\ncomplaint_model_file = "bad.json"\n', encoding="utf-8")
    with pytest.raises(RuleError) as err:
        load_judge(load_config(path, environ={}))
    assert str(tmp_path / "bad.json") in str(err.value)
    assert "rules train" in str(err.value.hint)
    # `rules check` says what is wrong, and never "OK" first.
    code, output = run_cli(["--config", str(path), "rules", "check"], monkeypatch, capsys)
    assert code == 2 and str(tmp_path / "bad.json") in output
    assert "OK" not in output
    (tmp_path / "bad.json").unlink()
    with pytest.raises(RuleError, match="cannot be read as a complaint model"):
        load_judge(load_config(path, environ={}))


def test_a_judgement_is_unchanged_without_the_setting(tmp_path: Path) -> None:
    path = tmp_path / "mentionwatch.toml"
    path.write_text('[brand]\nname = "Acme"\nterms = ["acme"]\n', encoding="utf-8")
    engine = load_judge(load_config(path, environ={}))
    shipped = clf.default_model()
    text = "@acme still no refund"
    assert engine.complaint_score(text, -0.3)[0] == pytest.approx(
        shipped.score(shipped.features(text, -0.3)))
