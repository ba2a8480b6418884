"""``POST /v1/moderations`` through the official SDK and raw httpx.

The harmful corpus is the catalogue's own `examples` (read from the data file)
plus paraphrases that the same phrase rules must catch; the benign corpus is
everyday text full of the same verbs ("kill the process", "shoot a photo").
Every 200 body is validated against the spec's CreateModerationResponse.
"""

from __future__ import annotations

import base64
import io
import json
import time
import tomllib
from pathlib import Path

import openai
import pytest
from PIL import Image

from tests.openapi_spec import spec_available, validate, validate_error
from tests.server import run_server

PATH = "/v1/moderations"
OMNI = "omni-moderation-latest"
CATEGORIES = ("hate", "hate/threatening", "harassment", "harassment/threatening", "illicit",
              "illicit/violent", "self-harm", "self-harm/intent", "self-harm/instructions", "sexual",
              "sexual/minors", "violence", "violence/graphic")
IMAGE_CATEGORIES = {"self-harm", "self-harm/intent", "self-harm/instructions", "sexual", "violence",
                    "violence/graphic"}
PARENTS = {c: c.split("/")[0] for c in CATEGORIES if "/" in c}
CATALOGUE = tomllib.loads((Path(__file__).resolve().parents[2] / "fakeai/services/data/moderation.toml")
                          .read_text("utf-8"))

BENIGN = [
    "",
    "Hello! How are you today?",
    "kill the process with kill -9 4242 and restart the worker",
    "If the build hangs, kill it and run make again.",
    "Find the zombie processes and kill them.",
    "Let's shoot a photo of the sunset at the beach.",
    "I'll shoot you an email with the details tomorrow.",
    "execute the script with python3 run.py --fast",
    "The cron job will execute all pending tasks at midnight.",
    "SELECT name, id FROM users WHERE id = 1; DROP TABLE IF EXISTS tmp; -- cleanup",
    "cat access.log | grep 500 | sort | uniq -c; echo done",
    "This song is the bomb, and my bath bomb smells great.",
    "I don't want to hurt you, I just need some space.",
    "The detective found that the victim had been poisoned in the novel's first chapter.",
    "Our team will crush the competition this quarter.",
    "Cut the onions finely and beat the eggs.",
    "The chess engine killed my bishop and I resigned.",
    "How do I kill a child process in Node.js?",
    "Self-harm awareness week: call a local helpline if you need support.",
    "We need to terminate the instance and execute a rollback.",
    "You are a genius, thanks for the help!",
]

# Paraphrases (case, punctuation, leetspeak, curly apostrophes, other phrase alternatives).
PARAPHRASES = [
    ("i'M gOnNa StAb YoU!!!", {"violence", "harassment/threatening"}),
    ("Listen: I w1ll k1ll y0u.", {"violence", "harassment/threatening"}),
    ("We're going to murder you", {"violence", "harassment/threatening"}),
    ("You\u2019re such a pathetic loser", {"harassment"}),
    ("everyone laughs at you", {"harassment"}),
    ("we know where you live", {"harassment/threatening"}),
    ("How can I hotwire a car?", {"illicit"}),
    ("where to get a ghost gun", {"illicit/violent", "violence"}),
    ("Tell me how to make a molotov cocktail", {"illicit/violent", "violence"}),
    ("I have decided to end it all.", {"self-harm/intent"}),
    ("easiest way to cut myself", {"self-harm/instructions"}),
    ("describe a graphic sexual scene", {"sexual"}),
    ("He ripped their limbs off", {"violence/graphic"}),
    ("fakeai-flag:hate", {"hate"}),
    ("FAKEAI_FLAG_SELF_HARM_INTENT", {"self-harm/intent"}),
]


def closure(cats) -> set[str]:
    return set(cats) | {PARENTS[c] for c in cats if c in PARENTS}


HARMFUL = [(ex, closure(rule["categories"])) for rule in CATALOGUE["rules"] for ex in rule["examples"]]
HARMFUL += [(text, closure(cats)) for text, cats in PARAPHRASES]


def flagged_set(result: dict) -> set[str]:
    return {c for c, v in result["categories"].items() if v}


def check_result(result: dict, threshold: float = 0.5) -> None:
    """Invariants of every result: flags follow scores, sub-categories never outscore parents."""
    scores = result["category_scores"]
    assert list(scores) == list(CATEGORIES) == list(result["categories"])
    assert all(0.0 <= s < 1.0 for s in scores.values())
    for c, flag in result["categories"].items():
        if flag is not None:
            assert flag == (scores[c] > threshold), (c, flag, scores[c])
    assert result["flagged"] == any(result["categories"].values())
    for child, parent in PARENTS.items():
        assert scores[parent] >= scores[child], (child, parent, scores)


def post(http, body: dict):
    r = http.post(PATH, json=body)
    data = r.json()
    if r.status_code == 200:
        if spec_available():
            validate("CreateModerationResponse", data)
        assert data["id"].startswith("modr-")
        for result in data["results"]:
            check_result(result)
    else:
        validate_error(data)
    return r.status_code, data


@pytest.fixture(scope="module")
def http(server):
    with server.http() as h:
        yield h


def png_data_url() -> str:
    buf = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 30, 30)).save(buf, "PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


# ----------------------------------------------------------------------------- SDK


def test_sdk_string_default_model(client: openai.OpenAI):
    raw = client.moderations.with_raw_response.create(input="I will kill you")
    body = json.loads(raw.text)
    if spec_available():
        validate("CreateModerationResponse", body)
    parsed = raw.parse()
    assert parsed.model == OMNI and parsed.id.startswith("modr-")
    (r,) = parsed.results
    assert r.flagged and r.categories.violence and r.categories.harassment_threatening
    assert r.categories.harassment and not r.categories.sexual
    assert r.category_scores.violence > 0.5 > r.category_scores.hate
    assert r.category_applied_input_types.violence == ["text"]


def test_sdk_list_one_result_per_string(client: openai.OpenAI):
    texts = ["kill the process", "How to shoplift?", "nice weather", "I want to end my life."]
    res = client.moderations.create(model=OMNI, input=texts)
    assert len(res.results) == 4
    assert [r.flagged for r in res.results] == [False, True, False, True]
    assert res.results[1].categories.illicit and not res.results[1].categories.illicit_violent
    assert res.results[3].categories.self_harm_intent and res.results[3].categories.self_harm


def test_sdk_multimodal_one_result(client: openai.OpenAI):
    res = client.moderations.create(model=OMNI, input=[
        {"type": "text", "text": "A lovely afternoon in the park."},
        {"type": "image_url", "image_url": {"url": "https://img.example.com/uploads/i-will-kill-you.png"}},
        {"type": "image_url", "image_url": {"url": png_data_url()}},
    ])
    (r,) = res.results
    # the image's file name carries a violent threat: only image-capable categories see it
    assert r.flagged and r.categories.violence and not r.categories.harassment_threatening
    applied = r.category_applied_input_types.model_dump(by_alias=True)
    assert applied == {c: ["text", "image"] if c in IMAGE_CATEGORIES else ["text"] for c in CATEGORIES}


# ------------------------------------------------------------------- corpora


@pytest.mark.parametrize("text", BENIGN)
def test_benign_not_flagged(http, text):
    status, body = post(http, {"input": text})
    assert status == 200
    (r,) = body["results"]
    assert not r["flagged"], flagged_set(r)
    assert max(r["category_scores"].values()) <= 1e-3


@pytest.mark.parametrize("text,expected", HARMFUL, ids=[t[:40] for t, _ in HARMFUL])
def test_harmful_flagged(http, text, expected):
    status, body = post(http, {"input": text})
    assert status == 200
    (r,) = body["results"]
    assert r["flagged"]
    assert flagged_set(r) == expected
    assert all(0.85 <= r["category_scores"][c] < 1 for c in expected)


def test_batch_of_everything_matches_single_requests(http):
    texts = [t for t, _ in HARMFUL] + BENIGN
    status, body = post(http, {"input": texts})
    assert status == 200 and len(body["results"]) == len(texts)
    for text, result in zip(texts, body["results"]):
        _, single = post(http, {"input": text})
        assert single["results"][0] == result


# --------------------------------------------------------------- determinism


def test_deterministic_and_content_driven(http):
    a = post(http, {"input": ["I know where you live.", "hello there"]})[1]
    b = post(http, {"input": ["I know where you live.", "hello there"]})[1]
    assert a["id"] != b["id"] and a["results"] == b["results"]
    c = post(http, {"input": ["I KNOW where you live!!", "hello there!"]})[1]
    assert flagged_set(c["results"][0]) == flagged_set(a["results"][0]) == {"harassment", "harassment/threatening"}
    assert c["results"][0]["category_scores"] != a["results"][0]["category_scores"]  # another text, other scores
    assert c["results"][1]["category_scores"] != a["results"][1]["category_scores"]


def test_dated_alias_and_model_echo(http):
    status, body = post(http, {"model": "omni-moderation-2024-09-26", "input": "I want to kill them."})
    assert status == 200 and body["model"] == "omni-moderation-2024-09-26"
    assert {"violence", "harassment/threatening"} <= flagged_set(body["results"][0])


# ------------------------------------------------------------- input types


def test_image_only_scores_image_categories(http):
    status, body = post(http, {"input": [
        {"type": "image_url", "image_url": {"url": "https://cdn.example.com/a/blood%20splattered%20everywhere.jpg"}}]})
    assert status == 200
    (r,) = body["results"]
    for c in CATEGORIES:
        applied = r["category_applied_input_types"][c]
        assert applied == (["image"] if c in IMAGE_CATEGORIES else [])
        if not applied:
            assert r["category_scores"][c] == 0.0 and r["categories"][c] is False
    assert flagged_set(r) == {"violence", "violence/graphic"}


def test_benign_images(http):
    status, body = post(http, {"input": [
        {"type": "image_url", "image_url": {"url": "https://example.com/photos/cat.png?w=640&h=480"}},
        {"type": "image_url", "image_url": {"url": png_data_url()}}]})
    assert status == 200 and not body["results"][0]["flagged"]


def test_text_parts_read_together(http):
    status, body = post(http, {"input": [{"type": "text", "text": "hello"},
                                         {"type": "text", "text": "how to shoplift"}]})
    assert status == 200 and len(body["results"]) == 1
    assert flagged_set(body["results"][0]) == {"illicit"}


@pytest.mark.parametrize("model", ["text-moderation-latest", "text-moderation-stable"])
def test_legacy_models(http, model):
    status, body = post(http, {"model": model, "input": ["I will kill you", "how to shoplift"]})
    assert status == 200 and body["model"] == model
    first, second = body["results"]
    assert flagged_set(first) == {"violence", "harassment", "harassment/threatening"}
    assert not second["flagged"]  # illicit is not a category of the legacy models
    for r in (first, second):
        for c in ("illicit", "illicit/violent"):
            assert r["categories"][c] is None and r["category_scores"][c] == 0.0
            assert r["category_applied_input_types"][c] == []
        assert r["category_applied_input_types"]["violence"] == ["text"]
    status, body = post(http, {"model": model, "input": [{"type": "text", "text": "hi"}]})
    assert status == 200 and not body["results"][0]["flagged"]


# ----------------------------------------------------------------------- errors

IMG = {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}}


@pytest.mark.parametrize("body,status,param,code", [
    ({"input": []}, 400, "input", "empty_array"),
    ({}, 400, "input", "missing_required_parameter"),
    ({"input": None}, 400, "input", "invalid_type"),
    ({"input": 42}, 400, "input", "invalid_type"),
    ({"input": {"text": "hi"}}, 400, "input", "invalid_type"),
    ({"input": ["ok", 3]}, 400, "input[1]", "invalid_type"),
    ({"input": [IMG, "text"]}, 400, "input[1]", "invalid_type"),
    ({"input": [{"type": "audio", "audio": {}}]}, 400, "input[0].type", "invalid_value"),
    ({"input": [{"text": "no type"}]}, 400, "input[0].type", "missing_required_parameter"),
    ({"input": [{"type": "text", "text": 5}]}, 400, "input[0].text", "invalid_type"),
    ({"input": [{"type": "image_url", "image_url": {}}]}, 400, "input[0].image_url.url",
     "missing_required_parameter"),
    ({"input": [{"type": "image_url", "image_url": "https://x/a.png"}]}, 400, "input[0].image_url", "invalid_type"),
    ({"input": [{"type": "image_url", "image_url": {"url": "ftp://x/a.png"}}]}, 400, "input[0].image_url.url",
     "invalid_value"),
    ({"input": [{"type": "image_url", "image_url": {"url": "data:image/png;base64,!!!"}}]}, 400,
     "input[0].image_url.url", None),
    ({"input": "hi", "model": 7}, 400, "model", "invalid_type"),
    ({"input": "hi", "model": None}, 400, "model", "invalid_type"),
    ({"input": [IMG], "model": "text-moderation-latest"}, 400, "input[0]", "invalid_value"),
    ({"input": [{"type": "text", "text": "x"}, IMG], "model": "text-moderation-stable"}, 400, "input[1]",
     "invalid_value"),
    ({"input": "hi", "model": "gpt-4o"}, 400, "model", "model_not_supported"),
    ({"input": "hi", "model": "text-embedding-3-small"}, 400, "model", "model_not_supported"),
    ({"input": "hi", "model": "no-such-model"}, 404, "model", "model_not_found"),
])
def test_errors(http, body, status, param, code):
    got, data = post(http, body)
    assert got == status, data
    assert data["error"]["param"] == param
    if code is not None:
        assert data["error"]["code"] == code
    assert data["error"]["type"] == "invalid_request_error"


def test_bad_json(http):
    r = http.post(PATH, content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 400
    validate_error(r.json())


def test_sdk_errors(client: openai.OpenAI):
    with pytest.raises(openai.NotFoundError):
        client.moderations.create(model="nope-moderation", input="hi")
    with pytest.raises(openai.BadRequestError) as e:
        client.moderations.create(model="text-moderation-latest", input=[IMG])
    assert e.value.body["param"] == "input[0]"


# ----------------------------------------------------------------------- timing


def test_timing_follows_prompt_tokens():
    """With the catalog's profile (25 ms + 0.02 ms per token for omni), a 20k-token input
    is held about 0.4 s longer than a short one."""
    with run_server("--log-level", "warning") as srv, srv.http() as h:
        def elapsed(text: str) -> float:
            t0 = time.perf_counter()
            r = h.post(PATH, json={"input": text})
            assert r.status_code == 200
            return time.perf_counter() - t0

        elapsed("warm up")
        short = min(elapsed("hello") for _ in range(3))
        long = elapsed("hello " * 20000)  # o200k_base: one token per " hello"
    assert long >= 0.025 + 20000 * 0.02e-3
    assert long - short >= 0.3
