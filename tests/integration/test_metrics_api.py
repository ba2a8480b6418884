"""The JSON metrics API through the real server (docs/metrics-api.md): counts equal the requests
sent under concurrency, the JSON agrees with the Prometheus scrape, the per-model views, costs,
CSV, history and /health/detailed, and the metrics options."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import statistics
import uuid

import httpx
import openai
import pytest
from prometheus_client.parser import text_string_to_metric_families

from fakeai.registry import ModelRegistry
from tests.openapi_spec import validate_error
from tests.server import run_server, wait_for

MODEL = "gpt-4o-mini"
SLASHED = "meta-llama/Llama-3.1-8B-Instruct"
HISTORY_LEN = 5


@pytest.fixture(scope="module")
def srv():
    with run_server("--ttft", "0", "--itl", "0", "--metrics-history-interval-s", "0.1",
                    "--metrics-history-length", str(HISTORY_LEN)) as s:
        yield s


def get(s, path: str, status: int = 200):
    r = httpx.get(s.base_url + path, timeout=30)
    assert r.status_code == status, r.text
    return r.json() if r.headers["content-type"].startswith("application/json") else r


def doc(s, **params) -> dict:
    q = "&".join(f"{k}={v}" for k, v in params.items())
    return get(s, "/metrics/json" + (f"?{q}" if q else ""))


def scrape(s) -> list:
    r = httpx.get(s.base_url + "/metrics", timeout=30)
    return [x for f in text_string_to_metric_families(r.text) for x in f.samples]


def psum(samples, name: str, **labels) -> float:
    return sum(x.value for x in samples if x.name == name and all(x.labels.get(k) == v for k, v in labels.items()))


def client(s, key: str) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=s.api_url, api_key=key, max_retries=0)


def test_counts_equal_the_requests_sent_under_concurrency(srv):
    before = doc(srv)
    key_a, key_b = f"sk-a-{uuid.uuid4().hex}", f"sk-b-{uuid.uuid4().hex}"

    async def burst() -> tuple[int, int]:
        a, b = client(srv, key_a), client(srv, key_b)
        msgs = [{"role": "user", "content": "Count the requests, please."}]

        async def plain(i):
            r = await a.chat.completions.create(model=MODEL, messages=msgs, max_tokens=5 + i % 7)
            return r.usage.completion_tokens

        async def streamed(i):
            n = 0
            async for chunk in await a.chat.completions.create(model=MODEL, messages=msgs, max_tokens=6 + i,
                                                                  stream=True, stream_options={"include_usage": True}):
                if chunk.usage is not None:
                    n = chunk.usage.completion_tokens
            return n

        async def bad(_):
            with pytest.raises(openai.NotFoundError):
                await b.chat.completions.create(model="no-such-model", messages=msgs)
            return 0

        tokens = await asyncio.gather(*[plain(i) for i in range(40)], *[streamed(i) for i in range(10)],
                                      *[bad(i) for i in range(5)])
        return sum(tokens), len(tokens)

    completion, sent = asyncio.run(burst())
    after = doc(srv)
    assert sent == 55
    assert after["requests"]["total"] - before["requests"]["total"] == 55
    assert after["requests"]["in_flight"] == 0
    ep = "/v1/chat/completions"
    assert after["endpoints"][ep]["requests"]["total"] - before["endpoints"].get(ep, {"requests": {"total": 0}})[
        "requests"]["total"] == 55
    m0 = before["models"].get(MODEL, {"requests": {"completed": 0}, "tokens": {"completion": 0},
                                      "streaming": {"completed": 0}})
    m1 = after["models"][MODEL]
    assert m1["requests"]["completed"] - m0["requests"]["completed"] == 50
    assert m1["tokens"]["completion"] - m0["tokens"]["completion"] == completion
    assert m1["streaming"]["completed"] - m0["streaming"]["completed"] == 10
    new_keys = {k: v for k, v in after["keys"].items() if k not in before["keys"]}
    assert sorted(v["requests"]["total"] for v in new_keys.values()) == [5, 50]
    ka = next(v for v in new_keys.values() if v["requests"]["total"] == 50)
    kb = next(v for v in new_keys.values() if v["requests"]["total"] == 5)
    assert all(k.startswith("key_") and "sk-" not in k for k in new_keys)  # hashed ids only
    assert ka["tokens"]["completion"] == completion and ka["requests"]["by_status"] == {"200": 50}
    assert ka["streaming"]["completed"] == 10 and ka["latency"]["e2e"]["count"] == 50
    assert kb["errors"] == {"total": 5, "by_status": {"404": 5}, "by_type": {"invalid_request_error": 5},
                            "by_code": {"model_not_found": 5}}
    assert after["errors"]["by_code"]["model_not_found"] - before["errors"]["by_code"].get("model_not_found", 0) == 5


def test_json_agrees_with_the_prometheus_scrape(srv):
    c = srv.client()
    for i in range(6):
        c.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": f"consistency {i}"}],
                                  max_tokens=12)
    d = doc(srv)
    samples = scrape(srv)
    for model, m in d["models"].items():
        records = m["requests"]["completed"] + m["requests"]["cancelled"]
        assert records == psum(samples, "dynamo_frontend_requests_total", model=model)
        assert m["tokens"]["completion"] == psum(samples, "dynamo_frontend_output_tokens_total", model=model)
        assert m["tokens"]["prompt"] == psum(samples, "dynamo_frontend_input_sequence_tokens_sum", model=model)
        assert m["latency"]["ttft"]["count"] == psum(samples, "vllm:time_to_first_token_seconds_count",
                                                     model_name=model)
        assert m["requests"]["finish_reasons"].get("length", 0) == psum(
            samples, "vllm:request_success_total", model_name=model, finished_reason="length")
    for idx, w in d["cluster"]["workers"].items():
        assert w["running"] == psum(samples, "vllm:num_requests_running", engine=idx)
        assert w["kv"]["blocks_total"] == int(next(x.labels["num_gpu_blocks"] for x in samples
                                                   if x.name == "vllm:cache_config_info" and x.labels["engine"] == idx))
        hits = psum(samples, "vllm:prefix_cache_hits_total", engine=idx)
        queries = psum(samples, "vllm:prefix_cache_queries_total", engine=idx)
        assert w["kv"]["hit_rate"] == pytest.approx(hits / queries if queries else 0.0)
    for e, scope in d["endpoints"].items():
        if e.startswith("/v1/"):  # (the metrics and health routes are being polled meanwhile)
            assert scope["requests"]["total"] == psum(samples, "fakeai_http_requests_total", endpoint=e)
            assert scope["errors"]["total"] == psum(samples, "fakeai_http_errors_total", endpoint=e)
    assert d["requests"]["by_status"]["200"] == sum(
        x.value for x in samples if x.name == "fakeai_http_requests_total" and x.labels["status"] == "200"
        and x.labels["endpoint"].startswith("/v1/"))
    for gid, g in d["gpus"].items():
        assert g["memory_used_mib"] == psum(samples, "DCGM_FI_DEV_FB_USED", gpu=gid)
    assert d["cluster"]["router"]["total"] >= d["requests"]["completed"]


def test_per_model_views_compare_ranking_csv(srv):
    c = srv.client()
    c.chat.completions.create(model=SLASHED, messages=[{"role": "user", "content": "hi"}], max_tokens=4)
    one = get(srv, f"/metrics/by-model/{SLASHED}")
    assert one["model"] == SLASHED and one["requests"]["total"] == 1 and one["recent"]["requests"] == 1
    idle = get(srv, "/metrics/by-model/gpt-4o")  # in the catalog, no traffic
    assert idle["requests"]["total"] == 0 and idle["latency"]["ttft"]["p50"] is None
    err = get(srv, "/metrics/by-model/no/such-model", 404)
    validate_error(err)
    assert err["error"]["code"] == "model_not_found"
    listed = get(srv, "/metrics/by-model")
    assert {m["model"] for m in listed["data"]} >= {MODEL, SLASHED}

    cmp = get(srv, f"/metrics/compare?models={MODEL},{SLASHED}")
    assert cmp["models"] == [MODEL, SLASHED]
    assert cmp["data"][SLASHED]["requests"] == 1
    assert cmp["best"]["requests"] == MODEL
    validate_error(get(srv, "/metrics/compare", 400))
    assert get(srv, f"/metrics/compare?models={MODEL},nope", 404)["error"]["code"] == "model_not_found"

    ranked = get(srv, "/metrics/ranking?metric=requests")
    values = [row["value"] for row in ranked["data"]]
    assert ranked["order"] == "desc" and values == sorted(values, reverse=True)
    assert ranked["data"][0]["model"] == MODEL and [r["rank"] for r in ranked["data"]] == list(range(1, len(values) + 1))
    assert get(srv, "/metrics/ranking?metric=e2e_p99&limit=1")["order"] == "asc"
    assert len(get(srv, "/metrics/ranking?metric=e2e_p99&limit=1")["data"]) == 1
    bad = get(srv, "/metrics/ranking?metric=bogus", 400)
    validate_error(bad)
    assert bad["error"]["param"] == "metric" and "ttft_p50" in bad["error"]["message"]
    get(srv, "/metrics/ranking?metric=requests&order=sideways", 400)

    r = get(srv, "/metrics/csv")
    assert r.headers["content-type"].startswith("text/csv")
    rows = {row["model"]: row for row in csv.DictReader(io.StringIO(r.text))}
    assert int(rows[SLASHED]["requests"]) == 1
    by_model = {m["model"]: m for m in get(srv, "/metrics/by-model")["data"]}
    assert int(rows[MODEL]["completion_tokens"]) == by_model[MODEL]["tokens"]["completion"]
    endpoints = list(csv.DictReader(io.StringIO(get(srv, "/metrics/csv?by=endpoint").text)))
    assert "/v1/chat/completions" in {row["endpoint"] for row in endpoints}
    get(srv, "/metrics/csv?by=planet", 400)


def test_costs_use_catalog_prices_with_the_cached_input_discount(srv):
    c = srv.client()
    prompt = "Tell me about rivers. " + " ".join(f"stone{i % 97} meadow{i % 89}" for i in range(900))
    for _ in range(2):  # the second finds the prompt's blocks in the prefix cache
        c.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": prompt}], max_tokens=8)
    m = get(srv, f"/metrics/by-model/{MODEL}")
    assert m["tokens"]["cached"] > 0
    costs = get(srv, "/metrics/costs")
    p = ModelRegistry.load().get(MODEL).pricing
    t = m["tokens"]
    want = ((t["prompt"] - t["cached"]) * p.input + t["cached"] * p.cached_input + t["completion"] * p.output) / 1e6
    got = costs["by_model"][MODEL]
    assert got["amount"] == pytest.approx(want, rel=1e-6)
    assert got["line_items"][f"{MODEL}, cached input"] == pytest.approx(t["cached"] * p.cached_input / 1e6, rel=1e-6)
    assert costs["total"] == pytest.approx(sum(v["amount"] for v in costs["by_model"].values()), rel=1e-9)
    assert costs["total"] == pytest.approx(sum(costs["by_key"].values()), rel=1e-9)
    assert get(srv, "/metrics/costs?since=4000000000")["total"] == 0


@pytest.mark.parametrize("since", ["2.6e291", "-1e300", "1.7e12", "nan", "inf", "-inf", "soon"])
def test_costs_refuse_a_since_that_is_no_unix_time(srv, since):
    # found by fuzzing: a huge `since` reached the store as an integer past 2**63 (a 500)
    err = get(srv, f"/metrics/costs?since={since}", 400)["error"]
    assert (err["param"], err["code"]) == ("since", "invalid_value")


def test_errors_by_status_and_injected_faults(srv):
    before = doc(srv, families="errors,faults")
    h = httpx.Client(base_url=srv.base_url, timeout=30)
    body = {"model": MODEL, "messages": [{"role": "user", "content": "x"}]}
    assert h.post("/v1/chat/completions", json=body, headers={"x-fakeai-fault": "500"}).status_code == 500
    assert h.post("/v1/chat/completions", json={"model": MODEL}).status_code == 400
    after = doc(srv, families="errors,faults")
    assert set(after) == {"object", "time", "uptime_s", "version", "minimal", "errors", "faults"}

    def delta(path):
        a, b = after, before
        for p in path:
            a, b = a.get(p, {}), b.get(p, {})
        return (a or 0) - (b or 0)

    assert delta(("errors", "by_status", "500")) == 1 and delta(("errors", "by_status", "400")) == 1
    assert delta(("errors", "by_type", "server_error")) == 1
    assert delta(("faults", "by_type", "500")) == 1 and delta(("faults", "total")) == 1
    validate_error(get(srv, "/metrics/json?families=requests,bogus", 400))


def test_models_filter(srv):
    srv.client().chat.completions.create(model=SLASHED, messages=[{"role": "user", "content": "hi"}], max_tokens=3)
    d = doc(srv, families="models,cluster,gpus", models=SLASHED)
    assert list(d["models"]) == [SLASHED]
    assert d["cluster"]["workers"] and all(w["model"] == SLASHED for w in d["cluster"]["workers"].values())
    assert d["gpus"] and all(g["model"] == SLASHED for g in d["gpus"].values())


def test_history_bounded_and_interval(srv):
    assert wait_for(lambda: len(get(srv, "/metrics/history")["data"]) == HISTORY_LEN, timeout=10)
    srv.client().chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hi"}], max_tokens=3)
    seen = get(srv, "/metrics/json?families=requests")["requests"]["total"]
    assert wait_for(lambda: get(srv, "/metrics/history")["data"][-1]["requests"]["total"] >= seen, timeout=5)
    h = get(srv, "/metrics/history")
    assert h["interval_s"] == 0.1 and h["length"] == HISTORY_LEN and len(h["data"]) == HISTORY_LEN
    times = [e["time"] for e in h["data"]]
    assert times == sorted(times)
    gaps = [b - a for a, b in zip(times, times[1:])]
    assert 0.05 <= statistics.median(gaps) <= 0.5  # the default would be 1 s
    e = h["data"][-1]
    assert {"requests", "tokens", "recent", "cluster", "gpus", "throughput"} <= set(e) and "keys" not in e
    since = get(srv, f"/metrics/history?since={times[1]}")["data"]
    assert since and all(x["time"] > times[1] for x in since)
    assert len(get(srv, "/metrics/history?limit=2")["data"]) == 2
    r = get(srv, "/metrics/history.jsonl")
    lines = [json.loads(line) for line in r.text.splitlines()]
    assert 1 <= len(lines) <= HISTORY_LEN and all(x["object"] == "metrics" for x in lines)
    d = get(srv, "/health/detailed")
    assert d["metrics"]["history"]["entries"] == HISTORY_LEN


def test_health_detailed(srv):
    d = get(srv, "/health/detailed")
    assert d["status"] == "healthy" and d["ready"] is True
    assert d["store"]["backend"] in ("sqlite", "memory") and d["store"]["reachable"] is True
    assert d["cluster"]["workers"] >= 1 and MODEL in d["cluster"]["models"]
    assert d["metrics"]["minimal"] is False
    assert wait_for(lambda: get(srv, "/health/detailed")["uptime_s"] > d["uptime_s"], timeout=5)


def test_metrics_minimal_option():
    with run_server("--ttft", "0", "--itl", "0", env={"FAKEAI_METRICS_MINIMAL": "true"}) as s:
        c = s.client()
        for _ in range(3):
            c.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hi"}], max_tokens=3)
        d = doc(s)
        assert d["minimal"] is True
        assert "requests" not in d and "models" not in d and "cluster" in d and "gpus" in d
        for path in ("/metrics/by-model", f"/metrics/by-model/{MODEL}", "/metrics/history", "/metrics/csv"):
            err = get(s, path, 404)
            validate_error(err)
            assert err["error"]["code"] == "metrics_disabled"
        assert psum(scrape(s), "dynamo_frontend_requests_total", model=MODEL) == 3  # Prometheus unchanged
        assert get(s, "/health/detailed")["metrics"]["history"]["entries"] == 0
