"""Reranking over HTTP: NVIDIA NIM ``/v1/ranking``, Cohere-style ``/v1/rerank`` and
``/v2/rerank``, and TEI ``/rerank``; each dialect's shape, order and error envelope."""

from __future__ import annotations

import math
import time

import pytest

from fakeai.engine.tokenizer import get_tokenizer
from fakeai.registry import ModelRegistry
from tests.server import run_server

REGISTRY = ModelRegistry.load()
RERANKER = "nvidia/llama-3.2-nv-rerankqa-1b-v2"
SHORT = "nvidia/nv-rerankqa-mistral-4b-v3"  # the catalog's first reranker: 512-token window
SHORT_LIMIT = REGISTRY.get(SHORT).context_window
QUERY = "What is the memory bandwidth of the H100 GPU?"
PASSAGES = [
    "Bananas are rich in potassium and easy to digest.",
    "A100 provides up to 20X higher performance over the prior generation.",
    "Accelerated servers with H100 deliver 3 terabytes per second of memory bandwidth per GPU.",
    "The Grace CPU is paired with the Hopper GPU over a fast chip-to-chip interconnect.",
]
BEST = 2
NIM_ERROR_KEYS = {"object", "message", "detail", "type"}


@pytest.fixture(scope="module")
def http(server):
    with server.http() as h:
        yield h


def nim(http, **overrides):
    body = {"model": RERANKER, "query": {"text": QUERY}, "passages": [{"text": p} for p in PASSAGES]}
    return http.post("/v1/ranking", json={**body, **overrides})


def nim_error(r, status: int) -> str:
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == NIM_ERROR_KEYS and body["object"] == "error", body
    assert body["type"] == "invalid_request_error" and isinstance(body["message"], str)
    return body["message"]


def cohere_error(r, status: int) -> str:
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == {"id", "message"} and body["message"], body
    return body["message"]


def tei_error(r, status: int, kind: str) -> str:
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == {"error", "error_type"} and body["error_type"] == kind, body
    return body["error"]


def sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


# -- NVIDIA NIM -----------------------------------------------------------------------

def test_nim_rankings_sorted_by_logit(http):
    r = nim(http)
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == {"rankings"}
    ranks = body["rankings"]
    assert all(set(x) == {"index", "logit"} and isinstance(x["logit"], float) for x in ranks)
    assert sorted(x["index"] for x in ranks) == list(range(len(PASSAGES)))
    logits = [x["logit"] for x in ranks]
    assert logits == sorted(logits, reverse=True)
    assert ranks[0]["index"] == BEST
    assert ranks[0]["logit"] - ranks[-1]["logit"] > 3  # a clear winner, raw logits not probabilities


def test_nim_is_deterministic_and_order_independent(http):
    a = {x["index"]: x["logit"] for x in nim(http).json()["rankings"]}
    again = {x["index"]: x["logit"] for x in nim(http).json()["rankings"]}
    reversed_ = nim(http, passages=[{"text": p} for p in reversed(PASSAGES)]).json()["rankings"]
    assert a == again
    assert {len(PASSAGES) - 1 - x["index"]: x["logit"] for x in reversed_} == a


def test_nim_rejects_unknown_fields(http):
    msg = nim_error(nim(http, top_k=2), 400)
    assert msg == "top_k: unknown field, expected one of model, query, passages, truncate"
    nim_error(nim(http, passages=[{"text": "a", "title": "b"}]), 400)


def test_nim_over_long_passage_without_truncation_is_400(http):
    tok = get_tokenizer(REGISTRY.get(SHORT).tokenizer)
    long = "memory bandwidth " * 400
    pair = tok.count(QUERY) + tok.count(long)
    assert pair > SHORT_LIMIT
    for extra in ({}, {"truncate": "NONE"}):
        r = nim(http, model=SHORT, passages=[{"text": "short"}, {"text": long}], **extra)
        assert nim_error(r, 400) == f"Input length {pair} exceeds maximum allowed token size {SHORT_LIMIT}"
    r = nim(http, model=SHORT, passages=[{"text": "short"}, {"text": long}], truncate="END")
    assert r.status_code == 200 and r.json()["rankings"][0]["index"] == 1


@pytest.mark.parametrize("overrides,status", [
    ({"passages": []}, 400),
    ({"model": "no-such-reranker"}, 404),
    ({"model": "gpt-4o"}, 400),
    ({"model": "text-embedding-3-small"}, 400),
    ({"query": "a plain string"}, 400),
    ({"query": {"text": 5}}, 400),
    ({"passages": ["a plain string"]}, 400),
    ({"truncate": "START"}, 400),
    ({"model": None}, 400),
])
def test_nim_bad_requests_use_the_nim_envelope(http, overrides, status):
    nim_error(nim(http, **overrides), status)


def test_nim_malformed_json_uses_the_nim_envelope(http):
    r = http.post("/v1/ranking", content=b"{not json", headers={"content-type": "application/json"})
    nim_error(r, 400)


# -- Cohere / Jina / vLLM -------------------------------------------------------------

@pytest.mark.parametrize("path,version", [("/v1/rerank", "1"), ("/v2/rerank", "2")])
def test_cohere_results_sorted_by_relevance(http, path, version):
    r = http.post(path, json={"model": RERANKER, "query": QUERY, "documents": PASSAGES})
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == {"id", "model", "results", "meta", "usage"}
    assert body["model"] == RERANKER and body["id"]
    assert body["meta"] == {"api_version": {"version": version}, "billed_units": {"search_units": 1}}
    results = body["results"]
    assert sorted(x["index"] for x in results) == list(range(len(PASSAGES)))
    scores = [x["relevance_score"] for x in results]
    assert scores == sorted(scores, reverse=True) and all(0 < s < 1 for s in scores)
    assert results[0]["index"] == BEST
    assert ("document" in results[0]) == (version == "1")  # v1 (Jina, vLLM) returns documents
    tok = get_tokenizer(REGISTRY.get(RERANKER).tokenizer)
    assert body["usage"]["total_tokens"] == sum(tok.count(QUERY) + tok.count(p) for p in PASSAGES)


def test_cohere_top_n_and_documents(http):
    docs = [PASSAGES[0], {"text": PASSAGES[1]}, PASSAGES[2]]
    r = http.post("/v2/rerank", json={"model": RERANKER, "query": QUERY, "documents": docs, "top_n": 2,
                                      "return_documents": True})
    results = r.json()["results"]
    assert [x["index"] for x in results][:1] == [BEST] and len(results) == 2
    assert all(x["document"] == {"text": PASSAGES[x["index"]]} for x in results)
    r = http.post("/v1/rerank", json={"model": RERANKER, "query": QUERY, "documents": PASSAGES, "top_n": 99,
                                      "return_documents": False})
    assert len(r.json()["results"]) == len(PASSAGES) and "document" not in r.json()["results"][0]


def test_cohere_truncates_long_documents_instead_of_failing(http):
    long = "memory bandwidth " * 2000
    r = http.post("/v1/rerank", json={"model": SHORT, "query": QUERY, "documents": [long, "bananas"]})
    assert r.status_code == 200, r.text
    assert r.json()["usage"]["total_tokens"] <= 2 * SHORT_LIMIT


def test_cohere_without_model_uses_the_first_reranker(http):
    r = http.post("/v1/rerank", json={"query": QUERY, "documents": PASSAGES})
    assert r.status_code == 200 and r.json()["model"] == SHORT


@pytest.mark.parametrize("body,status", [
    ({"query": QUERY, "documents": []}, 400),
    ({"query": QUERY, "documents": PASSAGES, "top_n": 0}, 400),
    ({"documents": PASSAGES}, 400),
    ({"query": QUERY, "documents": "one string"}, 400),
    ({"query": QUERY, "documents": [1, 2]}, 400),
    ({"query": QUERY, "documents": PASSAGES, "model": "no-such-reranker"}, 404),
    ({"query": QUERY, "documents": PASSAGES, "model": "gpt-4o"}, 400),
])
def test_cohere_errors_use_the_cohere_envelope(http, body, status):
    cohere_error(http.post("/v1/rerank", json=body), status)


def test_cohere_empty_documents_message(http):
    r = http.post("/v2/rerank", json={"model": RERANKER, "query": QUERY, "documents": []})
    assert cohere_error(r, 400) == "invalid request: list of documents must not be empty"


# -- Hugging Face TEI -----------------------------------------------------------------

def test_tei_scores_sorted_and_texts_returned(http):
    r = http.post("/rerank", json={"query": QUERY, "texts": PASSAGES, "return_text": True})
    assert r.status_code == 200, r.text
    ranks = r.json()
    assert isinstance(ranks, list) and all(set(x) == {"index", "score", "text"} for x in ranks)
    assert sorted(x["index"] for x in ranks) == list(range(len(PASSAGES)))
    scores = [x["score"] for x in ranks]
    assert scores == sorted(scores, reverse=True) and all(0 < s < 1 for s in scores)
    assert ranks[0]["index"] == BEST
    assert all(x["text"] == PASSAGES[x["index"]] for x in ranks)
    plain = http.post("/rerank", json={"query": QUERY, "texts": PASSAGES}).json()
    assert all(set(x) == {"index", "score"} for x in plain)


def test_one_scorer_behind_every_dialect(http):
    """NIM logits = TEI raw scores; Cohere and TEI probabilities = sigmoid(logit)."""
    logits = {x["index"]: x["logit"] for x in nim(http).json()["rankings"]}
    raw = http.post("/rerank", json={"model": RERANKER, "query": QUERY, "texts": PASSAGES, "raw_scores": True})
    assert {x["index"]: x["score"] for x in raw.json()} == pytest.approx(logits)
    probs = http.post("/rerank", json={"model": RERANKER, "query": QUERY, "texts": PASSAGES}).json()
    assert {x["index"]: x["score"] for x in probs} == pytest.approx({i: sigmoid(v) for i, v in logits.items()})
    cohere = http.post("/v2/rerank", json={"model": RERANKER, "query": QUERY, "documents": PASSAGES}).json()
    assert {x["index"]: x["relevance_score"] for x in cohere["results"]} == pytest.approx(
        {i: sigmoid(v) for i, v in logits.items()})


def test_tei_over_long_text(http):
    long = "memory bandwidth " * 400
    msg = tei_error(http.post("/rerank", json={"query": QUERY, "texts": [long]}), 413, "validation")
    assert msg.startswith(f"Input validation error: `inputs` must have less than {SHORT_LIMIT} tokens.")
    for direction in ("Right", "Left"):
        r = http.post("/rerank", json={"query": QUERY, "texts": [long, "x"], "truncate": True,
                                       "truncation_direction": direction})
        assert r.status_code == 200 and r.json()[0]["index"] == 0


@pytest.mark.parametrize("body,status,kind", [
    ({"query": QUERY, "texts": []}, 400, "empty"),
    ({"texts": PASSAGES}, 422, "validation"),
    ({"query": 1, "texts": PASSAGES}, 422, "validation"),
    ({"query": QUERY, "texts": [[1, 2]]}, 422, "validation"),
    ({"query": QUERY, "texts": PASSAGES, "raw_scores": "yes"}, 422, "validation"),
    ({"query": QUERY, "texts": PASSAGES, "truncation_direction": "up"}, 422, "validation"),
])
def test_tei_errors_use_the_tei_envelope(http, body, status, kind):
    tei_error(http.post("/rerank", json=body), status, kind)


def test_tei_empty_texts_message(http):
    assert tei_error(http.post("/rerank", json={"query": QUERY, "texts": []}), 400, "empty") == (
        "`texts` cannot be empty")


# -- timing ---------------------------------------------------------------------------

def test_ranking_waits_for_the_modelled_prefill():
    with run_server("--ttft", "150", "--itl", "0") as s, s.http() as h:
        for path, body in (("/v1/ranking", {"model": RERANKER, "query": {"text": QUERY},
                                            "passages": [{"text": p} for p in PASSAGES]}),
                           ("/rerank", {"query": QUERY, "texts": PASSAGES})):
            start = time.monotonic()
            assert h.post(path, json=body).status_code == 200
            assert time.monotonic() - start >= 0.15
