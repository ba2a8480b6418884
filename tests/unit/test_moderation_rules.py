"""The moderation service's pure parts: normalisation, phrase syntax, the catalogue, scoring."""

from __future__ import annotations

import copy
import re
import tomllib
from importlib import resources

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fakeai.registry import ModelRegistry
from fakeai.services.moderation import (
    CATEGORIES,
    IMAGE_CATEGORIES,
    PARENTS,
    _bounded,
    compile_phrase,
    image_text,
    load_catalogue,
    moderate,
    normalize,
    parse_catalogue,
)

REGISTRY = ModelRegistry.load()
OMNI = REGISTRY.resolve("omni-moderation-latest")
LEGACY = REGISTRY.resolve("text-moderation-latest")
DOC = tomllib.loads(resources.files("fakeai.services").joinpath("data/moderation.toml").read_text("utf-8"))


def phrase(p: str) -> re.Pattern[str]:
    return _bounded([compile_phrase(p)])


def finds(p: str, text: str) -> bool:
    return bool(phrase(p).search(normalize(text)))


# ---------------------------------------------------------------- normalize


@pytest.mark.parametrize("raw,norm", [
    ("I WILL   Kill you!!!", "i will kill you"),
    ("I\u2019m gonna", "im gonna"),
    ("k1ll y0u", "kill you"),
    ("pay $5 for h@ts", "pay 5 for hats"),       # leetspeak only inside words with a letter
    ("fakeai-flag:self-harm/intent", "fakeai flag self harm intent"),
    ("FAKEAI_FLAG_HATE", "fakeai flag hate"),
    ("\uff2b\uff29\uff2c\uff2c", "kill"),           # full-width letters (NFKC)
    ("SELECT a | b; -- x", "select a b x"),
    ("", ""),
])
def test_normalize(raw, norm):
    assert normalize(raw) == norm


# ------------------------------------------------------------ phrase syntax


def test_words_match_on_boundaries_only():
    assert finds("kill you", "i will KILL you.")
    assert not finds("kill you", "skill yours")
    assert not finds("kill you", "killyou")


def test_groups_and_optional_groups():
    p = "(you are|you're) (such|) (a|an|) (worthless|pathetic) (idiot|)"
    for text in ("you are worthless", "You're such a pathetic idiot", "you are an worthless", "youre pathetic idiots"):
        assert finds(p, text), text
    for text in ("you are a", "you are such idiot", "we are worthless"):
        assert not finds(p, text), text
    assert finds("(really|) bad (thing|)", "a bad day") and finds("(really|) bad", "really bad")


@pytest.mark.parametrize("bad", ["(a|)", "()", "(|) (x|)"])
def test_phrase_needs_a_required_word(bad):
    with pytest.raises(ValueError):
        compile_phrase(bad)


# --------------------------------------------------------------- catalogue


def test_catalogue_examples_trigger_their_rules():
    cat = load_catalogue()
    assert len(cat.rules) == len(DOC["rules"])
    for raw, rule in zip(DOC["rules"], cat.rules):
        assert raw["examples"], raw["categories"]
        want = set(raw["categories"]) | {PARENTS[c] for c in raw["categories"] if c in PARENTS}
        assert rule.categories == want
        for ex in raw["examples"]:
            assert rule.pattern.search(normalize(ex)), ex
            assert cat.matches(normalize(ex)) >= want


def test_every_category_has_a_trigger_phrase():
    cat = load_catalogue()
    for c in CATEGORIES:
        assert c in cat.matches(normalize(f"fakeai-flag:{c}")), c


@pytest.mark.parametrize("text", [
    "kill the process", "shoot a photo", "execute the script", "SELECT * FROM t WHERE a = 1; | b",
    "I'll shoot you an email", "how do I kill a child process", "make a bath bomb", "I hurt myself skiing",
])
def test_benign_phrases_match_nothing(text):
    assert load_catalogue().matches(normalize(text)) == frozenset()


@pytest.mark.parametrize("mutate,message", [
    (lambda d: d["rules"][0].update(categories=["violence/gore"]), "unknown"),
    (lambda d: d["rules"][0].update(phrases=[]), "no phrases"),
    (lambda d: d["thresholds"].update({"spam": 0.4}), "unknown category"),
    (lambda d: d["scoring"].update(threshold=0.95), "threshold"),
    (lambda d: d["scoring"].update(benign=[0, 0.001]), "benign"),
])
def test_catalogue_validation(mutate, message):
    doc = copy.deepcopy(DOC)
    mutate(doc)
    with pytest.raises(ValueError, match=message):
        parse_catalogue(doc)


def test_per_category_threshold():
    doc = copy.deepcopy(DOC)
    doc["thresholds"]["violence"] = 0.995   # above every hit score
    with pytest.raises(ValueError):
        parse_catalogue(doc)
    doc["thresholds"]["violence"] = 0.8
    assert parse_catalogue(doc).thresholds["violence"] == 0.8


# ------------------------------------------------------------------- images


def test_image_text():
    assert image_text("https://x.com/up/I%20will-kill_you.PNG?size=big") == "up i will kill you png size big"
    assert image_text("data:image/png;base64,aGVsbG8=") == ""


# ------------------------------------------------------------------ scoring


def check(result: dict, scored=CATEGORIES) -> None:
    scores, flags = result["category_scores"], result["categories"]
    assert list(scores) == list(flags) == list(result["category_applied_input_types"]) == list(CATEGORIES)
    for c in CATEGORIES:
        assert 0 <= scores[c] < 1
        assert flags[c] == (scores[c] > 0.5 if c in scored else None)
    for child, parent in PARENTS.items():
        assert scores[parent] >= scores[child]
    assert result["flagged"] == any(flags.values())


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(max_size=80), max_size=3), st.lists(st.text(max_size=40), max_size=2))
def test_result_invariants(texts, names):
    urls = [f"https://example.com/{n}.png" for n in names]
    check(moderate(OMNI, texts, urls))
    check(moderate(LEGACY, texts, []), [c for c in CATEGORIES if not c.startswith("illicit")])


def test_scores_are_deterministic_and_model_specific():
    a = moderate(OMNI, ["I will kill you"], [])
    assert a == moderate(OMNI, ["I will kill you"], [])
    assert a["category_scores"] != moderate(OMNI, ["I will kill you!"], [])["category_scores"]
    assert a["category_scores"] != moderate(LEGACY, ["I will kill you"], [])["category_scores"]


def test_matched_sub_category_lifts_parent_and_related_scores():
    r = moderate(OMNI, ["fakeai-flag:violence/graphic"], [])
    s = r["category_scores"]
    assert 0.85 <= s["violence/graphic"] < s["violence"] < 1
    r = moderate(OMNI, ["fakeai-flag:self-harm"], [])
    s = r["category_scores"]
    assert s["self-harm"] > 0.85 and 1e-3 <= s["self-harm/intent"] <= 0.05   # related, not flagged
    assert not r["categories"]["self-harm/intent"]


def test_benign_scores_are_low():
    s = moderate(OMNI, ["The quarterly report is attached."], [])["category_scores"]
    assert all(1e-8 < v <= 1e-3 for v in s.values())


def test_applied_input_types():
    both = moderate(OMNI, ["hi"], ["https://x/a.png"])["category_applied_input_types"]
    assert both == {c: ["text", "image"] if c in IMAGE_CATEGORIES else ["text"] for c in CATEGORIES}
    image = moderate(OMNI, [], ["https://x/a.png"])
    assert image["category_applied_input_types"] == {c: ["image"] if c in IMAGE_CATEGORIES else []
                                                     for c in CATEGORIES}
    assert all(image["category_scores"][c] == 0 for c in CATEGORIES if c not in IMAGE_CATEGORIES)
    legacy = moderate(LEGACY, ["hi"], [])
    assert legacy["categories"]["illicit"] is None and legacy["category_applied_input_types"]["illicit"] == []


def test_image_hits_only_image_categories():
    r = moderate(OMNI, [], ["https://x/i-will-kill-you.jpg"])
    assert {c for c, v in r["categories"].items() if v} == {"violence"}
