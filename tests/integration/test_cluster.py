"""The simulated cluster through the real server: prefix caching, TTFT, routing, live state,
runtime reconfiguration, small KV pools (eviction, preemption), disaggregation and vLLM's
kv_transfer_params.

Timing assertions use lower bounds from the configured profile and generous upper bounds;
nothing sleeps: state is polled with ``wait_for``.
"""

from __future__ import annotations

import json
import math
import textwrap
import threading
import time
import uuid

import httpx
import pytest

from tests.openapi_spec import validate, validate_error
from tests.server import run_server, wait_for

MODEL = "acme/prefill-heavy"
PREFILL_MS_PER_TOKEN = 0.1  # the test model's profile: 3000 uncached prompt tokens take 300 ms
CATALOG = textwrap.dedent(f"""\
    [[models]]
    id = "{MODEL}"
    provider = "meta"
    owned_by = "acme"
    created = 2024-06-01
    context_window = 32768
    max_output_tokens = 4096
    tokenizer = "o200k_base"
    tokenizer_exact = true
    capabilities = ["chat", "completions"]
    latency = {{ prefill_ms_per_token = {PREFILL_MS_PER_TOKEN}, prefill_overhead_ms = 5, itl_ms = 2, jitter = 0.0 }}
    """)
FILLER = "alpha beta gamma delta "  # o200k_base: 4 tokens


@pytest.fixture(scope="module")
def catalog(tmp_path_factory):
    path = tmp_path_factory.mktemp("cluster") / "models.toml"
    path.write_text(CATALOG, encoding="utf-8")
    return str(path)


@pytest.fixture(scope="module")
def modelled(catalog):
    """Catalog timing (no --ttft/--itl): TTFT is queueing + overhead + uncached prefill."""
    with run_server("--models-file", catalog) as s:
        yield s


def messages(system: str, question: str) -> list[dict]:
    return [{"role": "system", "content": system}, {"role": "user", "content": question}]


def cluster(s) -> dict:
    with s.http() as h:
        return h.get("/cluster").json()


def decisions(s) -> dict[int, int]:
    return {int(k): v for k, v in cluster(s)["router"]["decisions"].items()}


def stream_ttft(base_url: str, msgs: list[dict], model: str = MODEL, headers=None, **extra) -> tuple[float, dict]:
    """Seconds to the first content chunk, measured here, and the final usage."""
    body = {"model": model, "messages": msgs, "stream": True, "max_tokens": 3,
            "stream_options": {"include_usage": True}, **extra}
    usage, first = None, None
    with httpx.Client(base_url=base_url, timeout=60) as c:
        t0 = time.perf_counter()
        with c.stream("POST", "/v1/chat/completions", json=body, headers=headers or {}) as r:
            assert r.status_code == 200
            for line in r.iter_lines():
                if first is None and '"content":"' in line and '"content":""' not in line:
                    first = time.perf_counter() - t0
                if '"usage":{' in line:
                    usage = json.loads(line.removeprefix("data: "))["usage"]
    return first, usage


# -- prefix cache ------------------------------------------------------------------------------

def test_cached_tokens_grow_on_a_repeated_prefix_and_never_exceed_the_prompt(modelled):
    system = "You are a meticulous analyst. " + FILLER * 400
    client = modelled.client()
    seen = []
    with modelled.http() as h:
        for q in ("First question?", "Second question, longer than the first?", "Third?"):
            r = h.post("/v1/chat/completions", json={"model": MODEL, "messages": messages(system, q), "max_tokens": 4})
            body = r.json()
            validate("CreateChatCompletionResponse", body)
            u = body["usage"]
            seen.append((u["prompt_tokens"], u["prompt_tokens_details"]["cached_tokens"]))
    assert seen[0][1] == 0
    for prompt, cached in seen[1:]:
        assert cached % 16 == 0  # whole blocks
        assert prompt - 32 <= cached < prompt  # everything but the question's blocks
    # the SDK sees the same, also for a prompt that is entirely cached
    again = client.chat.completions.create(model=MODEL, messages=messages(system, "Third?"), max_tokens=2)
    details = again.usage.prompt_tokens_details
    assert 0 < details.cached_tokens < again.usage.prompt_tokens
    with modelled.http() as h:
        kv = h.get("/kv-cache/metrics").json()
    assert kv["cache_performance"]["tokens_reused"] >= sum(c for _, c in seen)


def test_a_shared_prefix_has_a_shorter_ttft_than_a_unique_prompt(modelled):
    prefix = "Shared context. " + FILLER * 750  # ~3000 tokens
    lower = 3000 * PREFILL_MS_PER_TOKEN / 1000  # prefill of the uncached prompt
    warm, usage = stream_ttft(modelled.base_url, messages(prefix, "warm up"))
    assert warm >= lower and usage["prompt_tokens_details"]["cached_tokens"] == 0
    shared, usage = stream_ttft(modelled.base_url, messages(prefix, "a follow-up"))
    assert usage["prompt_tokens_details"]["cached_tokens"] >= 2950
    unique, usage = stream_ttft(modelled.base_url, messages(f"{uuid.uuid4()} " + prefix, "a follow-up"))
    assert usage["prompt_tokens_details"]["cached_tokens"] == 0
    assert unique >= lower
    assert shared < lower / 2 < unique


def test_a_decode_side_request_skips_its_prefill(modelled):
    # vLLM P/D: do_remote_prefill means the prompt's KV arrives from a prefill engine
    prompt = f"{uuid.uuid4()} " + FILLER * 750
    params = {"do_remote_prefill": True, "remote_engine_id": "x", "remote_block_ids": [1, 2]}
    remote, _ = stream_ttft(modelled.base_url, messages(prompt, "go"), kv_transfer_params=params)
    assert remote < 3000 * PREFILL_MS_PER_TOKEN / 1000 / 2


def test_the_prefill_side_returns_kv_transfer_params(modelled):
    prompt = f"{uuid.uuid4()} " + FILLER * 100
    with modelled.http() as h:
        r = h.post("/v1/chat/completions", json={
            "model": MODEL, "messages": messages(prompt, "go"), "max_tokens": 1,
            "kv_transfer_params": {"do_remote_decode": True}})
        body = r.json()
        plain = h.post("/v1/completions", json={"model": MODEL, "prompt": prompt, "max_tokens": 1}).json()
    validate("CreateChatCompletionResponse", body)
    params = body["kv_transfer_params"]
    assert params["do_remote_prefill"] is True and params["do_remote_decode"] is False
    assert len(params["remote_block_ids"]) == math.ceil(body["usage"]["prompt_tokens"] / 16)
    assert params["tp_size"] >= 1 and params["remote_engine_id"] and params["remote_port"] > 0
    assert "kv_transfer_params" not in plain  # only a prefill-side request gets them


def test_cluster_state_follows_load(modelled):
    before = cluster(modelled)
    (w,) = [w for w in before["workers"] if w["model"] == MODEL] or [None]
    seen = {"running": 0, "decoding": 0, "active": 0}

    def one():
        with httpx.Client(base_url=modelled.base_url, timeout=60) as c:
            body = {"model": MODEL, "messages": [{"role": "user", "content": f"{uuid.uuid4()} " + FILLER * 50}],
                    "stream": True, "max_tokens": 250, "ignore_eos": True}
            with c.stream("POST", "/v1/chat/completions", json=body) as r:
                assert sum(1 for line in r.iter_lines() if '"content":"' in line) >= 250

    threads = [threading.Thread(target=one) for _ in range(4)]
    for t in threads:
        t.start()

    def busy() -> bool:
        for w in cluster(modelled)["workers"]:
            if w["model"] == MODEL:
                seen["running"] = max(seen["running"], w["running"])
                seen["decoding"] = max(seen["decoding"], w["batch"]["decoding"])
                seen["active"] = max(seen["active"], w["kv_cache"]["blocks_active"])
        loaded = seen["running"] >= 2 and seen["decoding"] >= 1 and seen["active"] > 0
        return loaded or not any(t.is_alive() for t in threads)

    assert wait_for(busy, timeout=20)
    for t in threads:
        t.join(60)
    assert seen["running"] >= 2 and seen["decoding"] >= 1 and seen["active"] > 0

    def idle() -> bool:
        ws = [w for w in cluster(modelled)["workers"] if w["model"] == MODEL]
        return all(w["running"] == 0 and w["waiting"] == 0 and w["kv_cache"]["blocks_active"] == 0 for w in ws)

    assert wait_for(idle, timeout=10)
    after = next(w for w in cluster(modelled)["workers"] if w["model"] == MODEL)
    assert after["counters"]["generation_tokens"] >= 1000
    assert after["counters"]["busy_seconds"] > (w["counters"]["busy_seconds"] if w else 0)
    gpu = after["gpus"][0]
    assert gpu["uuid"].startswith("GPU-") and gpu["memory_used_mib"] >= gpu["weights_mib"] > 0


# -- routing -----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def three():
    """Three pinned-timing workers per model, round robin by default."""
    with run_server("--ttft", "0", "--itl", "0", "--workers-per-model", "3", "--router-strategy", "round_robin",
                    "--router-overlap-weight", "4", "--router-temperature", "0") as s:
        yield s


def routed(s, n: int, headers=None, content=None) -> dict[int, int]:
    """Send ``n`` requests one after the other; how many each worker got."""
    before = decisions(s)
    with s.http() as h:
        for i in range(n):
            text = content if content is not None else f"question {i} {uuid.uuid4()}"
            r = h.post("/v1/chat/completions", headers=headers or {},
                       json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": text}], "max_tokens": 2})
            assert r.status_code == 200
    after = decisions(s)
    return {k: v - before.get(k, 0) for k, v in after.items() if v - before.get(k, 0)}


def test_round_robin_spreads_evenly(three):
    got = routed(three, 9)
    assert sorted(got.values()) == [3, 3, 3]
    assert len([w for w in cluster(three)["workers"] if w["model"] == "gpt-4o-mini"]) == 3


def test_session_affinity_sticks(three):
    for session in ("alpha", "beta"):
        got = routed(three, 6, headers={"x-fakeai-router": "session", "x-session-id": session})
        assert list(got.values()) == [6]


def test_kv_routing_follows_the_cached_prefix(three):
    prompt = FILLER * 300
    got = routed(three, 5, headers={"x-fakeai-router": "kv"}, content=prompt)
    assert list(got.values()) == [5]  # weight 4: the worker holding the prefix wins every time
    spread = routed(three, 6, headers={"x-fakeai-router": "kv", "x-fakeai-overlap-weight": "0"}, content=prompt)
    assert len(spread) >= 2  # weight 0: load only, and the idle workers are as good


def test_bad_routing_headers_are_400(three):
    with three.http() as h:
        for headers in ({"x-fakeai-router": "fastest"}, {"x-fakeai-overlap-weight": "-2"},
                        {"x-fakeai-router-temperature": "hot"}):
            r = h.post("/v1/chat/completions", headers=headers,
                       json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]})
            assert r.status_code == 400
            validate_error(r.json())


# -- reconfiguration ---------------------------------------------------------------------------

def test_admin_reconfiguration_takes_effect_and_is_logged():
    with run_server("--ttft", "0", "--itl", "0", "--log-level", "info", "--gpu-type", "A100-80GB",
                    "--tensor-parallel-size", "2", "--gpu-memory-utilization", "0.5") as s, s.http() as h:
        state = h.get("/cluster").json()
        (w,) = state["workers"]
        assert w["tp"] == 2 and len(w["gpus"]) == 2 and w["gpus"][0]["name"] == "NVIDIA A100-SXM4-80GB"
        kv, gpu = w["kv_cache"], w["gpus"][0]
        # blocks = (memory x 0.5 - weights per GPU) / block bytes (weights reported in whole MiB)
        room = (gpu["memory_total_mib"] << 20) * 0.5 - (gpu["weights_mib"] << 20)
        assert abs(kv["blocks_total"] * kv["block_bytes"] - room) < kv["block_bytes"] + (1 << 20)
        r = h.patch("/admin/cluster", json={"workers_per_model": 2, "max_num_seqs": 3, "ttft_ms": 150})
        assert r.status_code == 200
        state = r.json()
        assert [x["max_num_seqs"] for x in state["workers"]] == [3, 3]
        assert state["config"]["ttft_ms"] == 150 and state["config"]["workers_per_model"] == 2
        t0 = time.perf_counter()
        h.post("/v1/chat/completions", json={"model": "gpt-4o-mini", "max_tokens": 2,
                                             "messages": [{"role": "user", "content": "hi"}]})
        assert time.perf_counter() - t0 >= 0.150
        r = h.patch("/admin/cluster", json={"workers_per_model": 1, "ttft_ms": None})
        assert len(r.json()["workers"]) == 1 and r.json()["config"]["ttft_ms"] is None
        assert [c["option"] for c in r.json()["changes"]][-2:] == ["ttft_ms", "workers_per_model"]
        for bad in ({"workers": 2}, {"max_num_seqs": 0}, {"workers_per_model": "two"}, {}):
            r = h.patch("/admin/cluster", json=bad)
            assert r.status_code == 400, bad
            validate_error(r.json())
        r = h.patch("/admin/config", json={"router_strategy": "least_loaded"})
        assert r.status_code == 200 and h.get("/cluster").json()["router"]["strategy"] == "least_loaded"
        assert wait_for(lambda: "cluster: workers_per_model changed from 2 to 1" in s.output(), timeout=5)


# -- a small KV pool ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def small(catalog):
    with run_server("--models-file", catalog, "--kv-cache-blocks", "64", "--kv-block-size", "32",
                    "--max-num-batched-tokens", "512") as s, s.http() as h:
        # the model's workers come up with its first request
        assert h.post("/v1/completions", json={"model": MODEL, "prompt": "hi", "max_tokens": 1}).status_code == 200
        yield s


def model_worker(s) -> dict:
    return next(w for w in cluster(s)["workers"] if w["model"] == MODEL)


def test_block_size_sets_the_cache_granularity(small):
    prompt = FILLER * 200
    with small.http() as h:
        for _ in range(2):
            u = h.post("/v1/chat/completions", json={"model": MODEL, "messages": messages(prompt, "q"),
                                                     "max_tokens": 1}).json()["usage"]
    cached = u["prompt_tokens_details"]["cached_tokens"]
    assert cached > 0 and cached % 32 == 0


def test_the_token_budget_chunks_a_long_prefill(small):
    before = model_worker(small)["counters"]["steps"]
    with small.http() as h:
        h.post("/v1/chat/completions", json={"model": MODEL, "max_tokens": 1,
                                             "messages": [{"role": "user", "content": f"{uuid.uuid4()} " + FILLER * 500}]})
    assert model_worker(small)["counters"]["steps"] - before >= 4  # ~2000 tokens, 512 a step


def test_unique_prompts_evict_and_memory_stays_within_the_pool(small):
    with small.http() as h:
        for _ in range(4):
            h.post("/v1/chat/completions", json={"model": MODEL, "max_tokens": 1,
                                                 "messages": [{"role": "user", "content": f"{uuid.uuid4()} " + FILLER * 250}]})
    w = model_worker(small)
    assert w["counters"]["evicted_blocks"] > 0
    assert w["kv_cache"]["blocks_used"] <= w["kv_cache"]["blocks_total"] == 64


def test_preemption_when_the_pool_runs_out(small):
    counts = []

    def one():
        with httpx.Client(base_url=small.base_url, timeout=90) as c:
            body = {"model": MODEL, "stream": True, "max_tokens": 700, "ignore_eos": True,
                    "messages": [{"role": "user", "content": f"{uuid.uuid4()} " + FILLER * 75}]}
            with c.stream("POST", "/v1/chat/completions", json=body) as r:
                counts.append(sum(1 for line in r.iter_lines() if '"content":"' in line and '"content":""' not in line))

    threads = [threading.Thread(target=one) for _ in range(3)]  # 3 x ~32 blocks > 64
    for t in threads:
        t.start()
    for t in threads:
        t.join(90)
    assert counts == [700, 700, 700]
    assert model_worker(small)["counters"]["preemptions"] >= 1


# -- disaggregation and other options ----------------------------------------------------------

def test_disaggregated_prefill_and_decode(catalog):
    with run_server("--models-file", catalog, "--disaggregation", "--prefill-workers", "1",
                    "--workers-per-model", "2", "--no-enable-prefix-caching") as s:
        roles = sorted(w["role"] for w in cluster(s)["workers"] if w["model"] == "gpt-4o-mini")
        assert roles == ["decode", "decode", "prefill"]
        before = decisions(s)
        prompt = FILLER * 300
        ttft, usage = stream_ttft(s.base_url, messages(prompt, "go"))
        assert ttft >= usage["prompt_tokens"] * PREFILL_MS_PER_TOKEN / 1000
        ttft, usage = stream_ttft(s.base_url, messages(prompt, "go"))
        assert usage["prompt_tokens_details"]["cached_tokens"] == 0  # prefix caching is off
        workers = {w["index"]: w["role"] for w in cluster(s)["workers"]}
        got = {k: v - before.get(k, 0) for k, v in decisions(s).items() if v - before.get(k, 0)}
        assert sorted(workers[k] for k, v in got.items() for _ in range(v)) == ["decode"] * 2 + ["prefill"] * 2
        mine = [w for w in cluster(s)["workers"] if w["model"] == MODEL]
        assert sum(w["counters"]["requests_finished"] for w in mine if w["role"] == "decode") == 2
        assert all(w["running"] == 0 for w in mine)
