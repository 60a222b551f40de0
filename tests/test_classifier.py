"""The complaint classifier: features, scoring and its explanation, deterministic training
from the shipped CSV, and the `complaint_score` rule condition."""

from __future__ import annotations

import hashlib
import math
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from mentionwatch.errors import RuleError
from mentionwatch.judgement import MentionFacts, complaint_text
from mentionwatch.resources import rules_dir
from mentionwatch.rules_engine import BrandFacts, Engine, load_packs, train
from mentionwatch.rules_engine import classifier as clf

NOW = datetime.now(UTC)
TRAINING = rules_dir() / "training" / "complaints.csv"


def facts(text: str) -> MentionFacts:
    return MentionFacts(
        source="x", source_kind="twitter", text=text, title=None, url=None,
        author_handle="sam", author_name="Sam", followers=10, verified=False, language="en",
        created_at=NOW - timedelta(minutes=5), likes=0, reposts=0, replies=0,
        is_reply_to_brand=False)


def test_tokens_replace_handles_links_numbers_and_keep_hashtag_words() -> None:
    toks = clf.tokens("@AcmeHelp my order #12345 is late!! http://t.co/Ab12 #Fail don’t")
    assert toks == ["<desk>", "my", "order", "<num>", "is", "late", "!", "!", "<url>",
                    "fail", "don't"]
    assert {"#fail", "fail", "<url> fail"} <= clf.features(
        "@AcmeHelp my order #12345 is late!! http://t.co/Ab12 #Fail don’t")


@pytest.mark.parametrize(("handle", "token"), [
    ("@AmazonHelp", "<desk>"), ("@AskPlayStation", "<desk>"), ("@BTCare", "<desk>"),
    ("@KenyaPower_Care", "<desk>"), ("@HondaCustSvc", "<desk>"), ("@XboxSupport", "<desk>"),
    ("@MACcosmetics", "<user>"), ("@alaskaair", "<user>"), ("@jess_m92", "<user>"),
])
def test_a_help_desk_handle_is_told_from_other_handles(handle: str, token: str) -> None:
    assert clf.tokens(f"{handle} hi") == [token, "hi"]
    assert "shape:starts-with-handle" in clf.features(f"{handle} hi")


def test_the_lexicon_adds_one_feature_per_rule_whose_terms_occur() -> None:
    lexicon = clf.lexicon_of([("outage", ["down", "Not Working"]), ("billing", ["refund", "down"])])
    assert lexicon == {"down": "terms:outage", "not working": "terms:outage",
                       "refund": "terms:billing"}
    model = clf.Model(0.0, {"terms:outage": 1.0}, {}, lexicon)
    feats = model.features("@acme app NOT   working, want a refund")
    assert {"terms:outage", "terms:billing"} <= feats
    assert clf.features("@acme app NOT   working, want a refund") <= feats
    assert not any(f.startswith("terms:") for f in model.features("lovely day"))
    # What a caller's matcher found is used as it is.
    assert "terms:billing" in model.features("nothing here", found={"refund"})
    assert clf.readable("terms:outage") == "outage terms"
    again = clf.Model.from_json(model.to_json())
    assert again.lexicon == lexicon
    assert again.features("down again") == model.features("down again")


def test_the_shipped_lexicon_holds_what_speaks_for_a_rule_not_its_exclusions() -> None:
    lexicon = clf.default_model().lexicon
    assert lexicon == train.default_lexicon()
    assert lexicon["outage"] == "terms:outage" and lexicon["refund"] == "terms:billing"
    # "calm down" and "condolences" are `none` terms: they speak against their rules.
    assert "calm down" not in lexicon and "condolences" not in lexicon


def test_the_engine_passes_its_found_terms_and_they_match_the_models_own(tmp_path: Path) -> None:
    engine = Engine(load_packs([rules_dir()]), BrandFacts("Acme"), {})
    model = clf.default_model()
    assert model.lexicon and set(model.lexicon) <= engine.matcher.terms
    for text in ["@acme my internet is down AGAIN and no refund", "@AcmeHelp still waiting",
                 "Ordered on the 3rd, never arrived. Cancelling.", "lovely weather"]:
        sentiment = _vader(text)
        own = model.features(text, sentiment)
        via_engine = model.features(text, sentiment, engine.matcher.find(text))
        assert own == via_engine
        assert engine.complaint_score(text, sentiment) == (model.score(own), model.explain(own))


def test_the_l2_penalty_holds_rare_features_back() -> None:
    samples = [({"rare", "common"}, 1), ({"rare", "common"}, 1)] + [({"common"}, i % 2)
                                                                    for i in range(40)]
    _, loose = clf.train(samples, l2=0.0, min_count=1)
    _, tight = clf.train(samples, l2=3e-2, min_count=1)
    assert loose["rare"] > 1.0
    assert 0 < tight["rare"] < loose["rare"] / 2


def test_features_are_words_pairs_shapes_and_sentiment_band() -> None:
    feats = clf.features("@acme still WAITING", sentiment=-0.6)
    assert {"<user>", "still", "waiting", "<s> <user>", "<user> still", "still waiting",
            "shape:starts-with-handle", "shape:caps-word", "sent:neg"} <= feats
    assert "sent:neg" not in clf.features("@acme still waiting", sentiment=0.7)


def test_features_read_as_words_in_explanations() -> None:
    assert clf.readable("<s> <user>") == "(start) @handle"
    assert clf.readable("day <num>") == "day N"
    assert clf.readable("sent:neg") == "sentiment negative"
    assert clf.readable("<url>") == "link"


def test_score_is_the_logistic_of_bias_plus_weights_and_explain_orders_by_weight() -> None:
    model = clf.Model(bias=-1.0, weights={"late": 2.0, "thanks": -0.5, "order": 0.25},
                      trained_on={})
    feats = {"late", "thanks", "order", "unseen"}
    assert model.score(feats) == pytest.approx(1 / (1 + math.exp(-(-1.0 + 2.0 - 0.5 + 0.25))))
    assert model.explain(feats) == [("late", 2.0), ("thanks", -0.5), ("order", 0.25)]
    assert model.score(set()) == pytest.approx(1 / (1 + math.exp(1.0)))


def test_training_learns_a_separable_toy_set_and_round_trips_through_json() -> None:
    texts = [("my parcel is late again", 1), ("parcel never came, late", 1),
             ("late delivery and no reply", 1), ("lovely sunny day", 0),
             ("what a lovely day at the beach", 0), ("sunny and lovely", 0)]
    samples = [(clf.features(t), y) for t, y in texts]
    bias, weights = clf.train(samples, min_count=1)
    model = clf.Model(bias, weights, {"rows": 6})
    assert model.score(clf.features("late parcel")) > 0.8
    assert model.score(clf.features("a lovely sunny beach")) < 0.2
    again = clf.Model.from_json(model.to_json())
    assert again.score(clf.features("late parcel")) == pytest.approx(
        model.score(clf.features("late parcel")), abs=1e-5)


def test_unknown_model_format_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown complaint model format"):
        clf.Model.from_json('{"format": 99, "bias": 0, "weights": {}}')


def test_bad_training_row_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("text,label,kind\nok post,1,x\nbad post,maybe,x\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"t\.csv:3: expected text and label 0 or 1"):
        clf.read_training(path)


def test_a_teacher_softens_the_targets_of_the_posts_it_knows(tmp_path: Path) -> None:
    data = tmp_path / "t.csv"
    rows = [("my parcel is late again", 1), ("parcel never came, late", 1),
            ("late delivery and no reply", 1), ("lovely sunny day", 0),
            ("what a lovely day at the beach", 0), ("sunny and lovely", 0)]
    data.write_text("text,label\n" + "".join(f'"{t}",{y}\n' for t, y in rows), encoding="utf-8")
    plain = clf.train_file(data, sentiment=False, min_count=1)
    assert "teacher" not in plain.trained_on
    # The teacher doubts every post: the targets move to the middle, and so do the scores.
    doubts = {clf.text_key(t): 0.5 for t, _ in rows[:5]}
    teacher = clf.teacher_path(data)
    assert teacher == tmp_path / "t.teacher.csv"
    clf.write_teacher(teacher, doubts)
    assert clf.read_teacher(teacher) == doubts
    taught = clf.train_file(data, sentiment=False, teacher=teacher, min_count=1)
    assert taught.trained_on["teacher"] == {
        "file": "t.teacher.csv", "rows": 5, "weight": clf.TEACHER_WEIGHT,
        "sha256": hashlib.sha256(teacher.read_bytes()).hexdigest()}
    late = clf.features("late parcel")
    assert 0.5 < taught.score(late) < plain.score(late)


@pytest.mark.parametrize("row", ["abc,1.5", "abc,", ",0.3", "abc,lots"])
def test_a_bad_teacher_row_names_the_line(tmp_path: Path, row: str) -> None:
    path = tmp_path / "t.teacher.csv"
    path.write_text(f"key,teacher\nfine,0.25\n{row}\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"t\.teacher\.csv:3: expected a key and a probability"):
        clf.read_teacher(path)


def test_the_shipped_teacher_knows_every_shipped_post_and_the_model_learnt_from_it() -> None:
    teacher = clf.teacher_path(TRAINING)
    opinions = clf.read_teacher(teacher)
    assert set(opinions) == {clf.text_key(t) for t, _ in clf.read_training(TRAINING)}
    recorded = clf.default_model().trained_on["teacher"]
    assert isinstance(recorded, dict)
    assert recorded["sha256"] == hashlib.sha256(teacher.read_bytes()).hexdigest()
    assert recorded["rows"] == len(opinions) and recorded["weight"] == clf.TEACHER_WEIGHT
    # Opinions, not copies of the labels: out-of-fold, they disagree with about one in ten.
    labels = {clf.text_key(t): y for t, y in clf.read_training(TRAINING)}
    disagree = sum((opinions[k] >= 0.5) != bool(y) for k, y in labels.items())
    assert 0.03 < disagree / len(labels) < 0.2


def test_shipped_model_is_reproduced_by_training_on_the_shipped_csv(tmp_path: Path) -> None:
    """Provenance: the weights come from the CSV in the repository and nothing else."""
    out = tmp_path / "model.json"
    assert train.main(["--data", str(TRAINING), "--out", str(out)]) == 0
    assert out.read_text(encoding="utf-8") == clf.MODEL_PATH.read_text(encoding="utf-8")
    trained = clf.default_model().trained_on
    assert trained["file"] == "complaints.csv" and int(str(trained["rows"])) > 3000


@pytest.mark.parametrize(("text", "complaint"), [
    ("@acmehelp my order was due on tuesday and it still hasn't arrived", True),
    ("thanks @acme for the 3 hour wait on hold, really made my day", True),
    ("@acme charged me twice this month and nobody replies to my emails", True),
    ("@acme the app keeps logging me out every few minutes since the update", True),
    ("@acme do you open at 9 on sundays?", False),
    ("shout out to @acme support, sorted in five minutes. legends", False),
    ("so tired today, mondays are the worst lol", False),
    ("@jess_m92 haha same, see you at 8!", False),
])
def test_shipped_model_separates_complaints_from_the_rest(text: str, complaint: bool) -> None:
    feats = clf.default_model().features(text, _vader(text))
    score = clf.default_model().score(feats)
    assert (score >= 0.6) if complaint else (score < 0.4), clf.default_model().explain(feats)


def _vader(text: str) -> float:
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    return float(SentimentIntensityAnalyzer().polarity_scores(text)["compound"])


def _engine(tmp_path: Path, when: str) -> Engine:
    (tmp_path / "p.toml").write_text(
        f'[pack]\nname = "t"\n[[rules]]\nname = "r"\nflag = "complaint"\n[rules.when]\n{when}\n',
        encoding="utf-8")
    return Engine(load_packs([tmp_path]), BrandFacts("Acme"), {})


def test_complaint_score_condition_holds_and_explains_its_numbers(tmp_path: Path) -> None:
    engine = _engine(tmp_path, "complaint_score_at_least = 0.6")
    text = "@acme my parcel is 5 days late and nobody answers"
    late = engine.judge_one(facts(text), now=NOW)
    assert late.flag == "complaint"
    # The rule names its threshold; the words behind the score are said once, in the
    # judgement's complaint line, not in every rule that used the score.
    why = late.hits[0].explanation["complaint_score"]
    assert re.fullmatch(r"\d\.\d\d >= 0\.6", why)
    line = complaint_text(late.explanation)
    assert line is not None
    assert re.fullmatch(r"complaint score \d\.\d\d: (.+ [+-]\d+\.\d\d)(, .+ [+-]\d+\.\d\d)*", line)
    named = [feat for feat, _ in late.explanation["complaint_features"]]
    assert named and set(named) <= clf.default_model().features(text, late.sentiment)
    assert all(clf.readable(feat) in line for feat in named)
    assert late.explanation["complaint_score"] >= 0.6
    assert engine.judge_one(facts("what a lovely morning for a run"), now=NOW).flag is None


def test_complaint_score_below_and_composition(tmp_path: Path) -> None:
    engine = _engine(tmp_path, 'any = ["hell"]\ncomplaint_score_below = 0.4')
    assert engine.judge_one(facts("hell yes, what a goal!!"), now=NOW).flag == "complaint"
    assert engine.judge_one(facts("@acme hell of a wait, 2 hours on hold and still no answer"),
                            now=NOW).flag is None
    nested = _engine(tmp_path, "[[rules.when.any_of]]\ncomplaint_score_at_least = 0.7\n"
                               "[[rules.when.any_of]]\nany = [\"refund\"]")
    assert nested.judge_one(facts("where is my refund"), now=NOW).flag == "complaint"


def test_the_score_is_computed_once_per_mention_not_per_rule(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "p.toml").write_text(
        '[pack]\nname = "t"\n' + "".join(
            f'[[rules]]\nname = "r{i}"\nflag = "complaint"\n[rules.when]\n'
            f"complaint_score_at_least = 0.{i}\n" for i in range(1, 6)), encoding="utf-8")
    engine = Engine(load_packs([tmp_path]), BrandFacts("Acme"), {})
    calls: list[Any] = []
    real = clf.features
    monkeypatch.setattr(clf, "features", lambda *a, **k: calls.append(a) or real(*a, **k))
    judgement = engine.judge_one(facts("@acme still no refund after three weeks"), now=NOW)
    assert len(judgement.hits) == 5
    assert len(calls) == 1


@pytest.mark.parametrize("value", ["1.5", "-0.1", '"high"'])
def test_bad_complaint_score_threshold_names_file_and_rule(tmp_path: Path, value: str) -> None:
    with pytest.raises(RuleError) as err:
        _engine(tmp_path, f"complaint_score_at_least = {value}")
    assert "p.toml" in str(err.value) and "rule 'r'" in str(err.value)
    assert "complaint_score_at_least" in str(err.value)
