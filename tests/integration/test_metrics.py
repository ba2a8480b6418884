"""Telemetry through the real server: every series parses, both versions of vLLM's Grafana dashboard
find data, the metrics move together under load and settle after it, and the telemetry options
(DCGM exporter port and labels, KV events over ZMQ) change what the server exposes."""

from __future__ import annotations

import asyncio
import json
import re
import socket
import struct
import threading
import time
from pathlib import Path

import httpx
import msgpack
import pytest
import xxhash
import zmq
from prometheus_client.parser import text_string_to_metric_families

from tests.server import free_port, run_server, wait_for

MODEL = "gpt-4o-mini"
TEXT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
DASHBOARDS = json.loads((Path(__file__).parent / "vllm_grafana_queries.json").read_text(encoding="utf-8"))
PROMQL_FUNCTIONS = {"histogram_quantile", "sum", "rate", "increase", "label_values"}


def families(base_url: str, path: str = "/metrics") -> dict:
    r = httpx.get(base_url + path, timeout=10)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == TEXT_TYPE
    return {f.name: f for f in text_string_to_metric_families(r.text)}


def samples(fams: dict) -> list:
    return [s for f in fams.values() for s in f.samples]


def total(fams: dict, name: str, **labels) -> float:
    return sum(s.value for s in samples(fams)
               if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()))


def gpus(base_url: str) -> list[dict]:
    return httpx.get(base_url + "/dcgm/metrics/json", timeout=10).json()["gpus"]


def workers(base_url: str) -> list[dict]:
    return httpx.get(base_url + "/kv-cache/metrics", timeout=10).json()["workers"]


def long_prompt(tag: int, words: int = 2500) -> str:
    """A long prompt that shares no prefix with another tag's."""
    vocab = ["river", "stone", "cloud", "signal", "harbor", "lantern", "meadow", "copper", "violet", "engine", "quartz", "summit"]
    body = " ".join(vocab[(i * 7 + tag) % len(vocab)] for i in range(words))
    return f"Request {tag} {tag * 7919}: {body}"


# --------------------------------------------------------------------------- format


def test_every_series_parses(server):
    all_fams = families(server.base_url)
    assert families(server.base_url, "/metrics/prometheus").keys() == all_fams.keys()
    dynamo = families(server.base_url, "/dynamo/metrics")
    dcgm = families(server.base_url, "/dcgm/metrics")
    assert dynamo and dcgm
    assert set(dynamo) | set(dcgm) <= set(all_fams)
    assert all(n.startswith("dynamo_") for n in dynamo) and all(n.startswith("DCGM_FI_") for n in dcgm)
    assert {n for n in all_fams if n.startswith("vllm:")} >= {"vllm:num_requests_running",
                                                              "vllm:request_success"}
    js = httpx.get(server.base_url + "/dynamo/metrics/json").json()
    assert set(js) == set(dynamo)
    assert all(isinstance(s["value"], (int, float)) for f in js.values() for s in f["samples"])
    kv = httpx.get(server.base_url + "/kv-cache/metrics").json()
    assert set(kv) == {"cache_performance", "workers", "router"}


def test_dcgm_json_matches_the_text(server):
    rows = gpus(server.base_url)
    text = families(server.base_url, "/dcgm/metrics")
    assert len(rows) == len(text["DCGM_FI_DEV_FB_USED"].samples) > 0
    for row, sample in zip(rows, text["DCGM_FI_DEV_FB_USED"].samples):
        assert sample.labels == row["labels"]
        m = row["metrics"]
        assert m["DCGM_FI_DEV_FB_USED"] + m["DCGM_FI_DEV_FB_FREE"] + m["DCGM_FI_DEV_FB_RESERVED"] > 0
    uuids = [r["labels"]["UUID"] for r in rows]
    assert len(set(uuids)) == len(uuids) and uuids == [r["labels"]["UUID"] for r in gpus(server.base_url)]


# --------------------------------------------------------------------------- load


@pytest.fixture(scope="module")
def loaded(tmp_path_factory):
    """Modelled latency (the catalog's profile), two sequences per worker so requests queue, and a
    DCGM exporter port that stays closed (no --dcgm-exporter)."""
    closed_port = free_port()
    with run_server("--max-num-seqs", "2", "--dcgm-exporter-port", str(closed_port)) as s:
        s.closed_dcgm_port = closed_port
        yield s


def drive(server, count: int, max_tokens: int = 60) -> threading.Thread:
    """Send ``count`` long-prompt requests at once (streams, every third non-streaming) in a thread."""
    errors: list = []

    async def one(client, i: int) -> None:
        messages = [{"role": "user", "content": long_prompt(i)}]
        if i % 3 == 2:
            await client.chat.completions.create(model=MODEL, messages=messages, max_tokens=max_tokens,
                                                 extra_body={"ignore_eos": True})
            return
        stream = await client.chat.completions.create(model=MODEL, messages=messages, max_tokens=max_tokens,
                                                      stream=True, extra_body={"ignore_eos": True})
        async for _ in stream:
            pass

    async def main() -> None:
        async with server.async_client(timeout=60) as client:
            results = await asyncio.gather(*[one(client, i) for i in range(count)], return_exceptions=True)
        errors.extend(r for r in results if isinstance(r, BaseException))

    thread = threading.Thread(target=lambda: asyncio.run(main()), daemon=True)
    thread.errors = errors
    thread.start()
    return thread


def test_metrics_move_together_under_load_and_settle_after(loaded):
    base = loaded.base_url
    ws = workers(base)
    assert ws, "the default model's workers are up from the start"
    count = 2 * len(ws) + len(ws) + 2  # more than every worker's two slots: some must wait
    before = families(base)
    sent_before = total(before, "vllm:request_success_total")
    frontend_before = total(before, "dynamo_frontend_requests_total")
    idle = gpus(base)
    energy = {g["labels"]["UUID"]: g["metrics"]["DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION"] for g in idle}

    seen = {"running": 0.0, "waiting": 0.0, "kv": 0.0, "util": 0, "power": 0.0, "temp": 0}

    def observe() -> dict:
        fams = families(base)
        seen["running"] = max(seen["running"], total(fams, "vllm:num_requests_running"))
        seen["waiting"] = max(seen["waiting"], total(fams, "vllm:num_requests_waiting"))
        seen["kv"] = max(seen["kv"], total(fams, "vllm:kv_cache_usage_perc"))
        for g in gpus(base):
            m, uuid = g["metrics"], g["labels"]["UUID"]
            assert m["DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION"] >= energy[uuid]  # never goes back
            energy[uuid] = m["DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION"]
            seen["util"] = max(seen["util"], m["DCGM_FI_DEV_GPU_UTIL"])
            seen["power"] = max(seen["power"], m["DCGM_FI_DEV_POWER_USAGE"])
        return fams

    t = drive(loaded, count)
    observe()
    assert wait_for(lambda: observe() and seen["running"] > 0 and seen["waiting"] > 0 and seen["kv"] > 0
                    and seen["util"] > 0, timeout=30), seen
    t.join(60)
    assert not t.is_alive() and not t.errors, t.errors

    def settled() -> bool:
        fams = observe()
        return (total(fams, "vllm:num_requests_running") == 0 and total(fams, "vllm:num_requests_waiting") == 0
                and total(fams, "vllm:kv_cache_usage_perc") == 0)

    assert wait_for(settled, timeout=10)
    idle_power = {g["labels"]["UUID"]: g["metrics"]["DCGM_FI_DEV_POWER_USAGE"] for g in idle}
    assert seen["power"] > max(idle_power.values())
    # utilisation is measured over the last second: it decays to 0, power back to idle
    assert wait_for(lambda: all(g["metrics"]["DCGM_FI_DEV_GPU_UTIL"] == 0 for g in gpus(base)), timeout=10)
    after = gpus(base)
    for g in after:
        uuid = g["labels"]["UUID"]
        assert abs(g["metrics"]["DCGM_FI_DEV_POWER_USAGE"] - idle_power[uuid]) < 1.0
        assert g["metrics"]["DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION"] > next(
            i for i in idle if i["labels"]["UUID"] == uuid)["metrics"]["DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION"]
    # every request counted once, by vLLM's and by Dynamo's frontend series
    fams = families(base)
    assert wait_for(lambda: total(families(base), "vllm:request_success_total") - sent_before == count)
    assert total(families(base), "dynamo_frontend_requests_total") - frontend_before == count
    assert total(fams, "vllm:time_to_first_token_seconds_count") >= count
    assert total(fams, "vllm:request_queue_time_seconds_sum") > 0  # some of them waited


def metric_names(expr: str) -> list[str]:
    """The metric names in a PromQL expression (identifiers that are not functions or labels)."""
    names = []
    bare = re.sub(r'"[^"]*"|\[[^\]]*\]|\{[^}]*\}|by\s*\([^)]*\)', " ", expr)  # strings, ranges, matchers, groupings
    for m in re.finditer(r"[a-zA-Z_:][a-zA-Z0-9_:]*", bare):
        word = m.group(0)
        if word not in PROMQL_FUNCTIONS and not word.startswith("$"):
            names.append(word)
    return names


@pytest.mark.parametrize("version", sorted(DASHBOARDS["dashboards"]))
def test_every_vllm_dashboard_query_finds_data(loaded, version):
    dashboard = DASHBOARDS["dashboards"][version]
    t = drive(loaded, 3, max_tokens=12)
    t.join(60)
    assert not t.errors, t.errors
    fams = families(loaded.base_url)
    vllm = [s for s in samples(fams) if s.name.startswith("vllm:")]
    # template variable: the model picker lists the model we used
    assert MODEL in {s.labels.get("model_name") for s in vllm}
    checked = set()
    for expr in dashboard["queries"]:
        grouping = re.findall(r"by\s*\((\w+)\)", expr)
        for name in metric_names(expr):
            series = [s for s in vllm if s.name == name and s.labels.get("model_name") == MODEL]
            assert series, f"{version}: {name} has no series for model_name={MODEL}"
            for label in grouping:
                assert all(label in s.labels for s in series), (name, label)
            if name.endswith(("_bucket", "_count")) or name in ("vllm:prompt_tokens_total",
                                                                  "vllm:generation_tokens_total",
                                                                  "vllm:request_success_total"):
                assert sum(s.value for s in series) > 0, f"{version}: {name} never moved"
            checked.add(name)
    assert len(checked) >= 17


# --------------------------------------------------------------------------- options


class TestTelemetryOptions:
    @pytest.fixture(scope="class")
    def opts(self):
        dcgm_port, kv_port = free_port(), free_port()
        sub = zmq.Context.instance().socket(zmq.SUB)
        sub.setsockopt(zmq.SUBSCRIBE, b"")
        sub.setsockopt(zmq.LINGER, 0)
        sub.bind(f"tcp://127.0.0.1:{kv_port}")  # the server connects: its endpoint has no *
        try:
            with run_server("--ttft", "0", "--itl", "0", "--dcgm-exporter", "--dcgm-exporter-port", str(dcgm_port),
                            "--dcgm-hostname-label", "hostname", "--kv-events-endpoint",
                            f"tcp://127.0.0.1:{kv_port}",
                            env={"FAKEAI_DCGM_POD_LABELS": "true", "FAKEAI_K8S_NAMESPACE": "inference"}) as s:
                s.dcgm_port, s.sub = dcgm_port, sub
                yield s
        finally:
            sub.close()

    def test_dcgm_exporter_port(self, opts, loaded):
        with httpx.Client(base_url=f"http://127.0.0.1:{opts.dcgm_port}", timeout=10) as c:
            r = c.get("/metrics")
            assert r.status_code == 200 and r.headers["content-type"] == TEXT_TYPE
            fams = {f.name for f in text_string_to_metric_families(r.text)}
            assert fams == set(families(opts.base_url, "/dcgm/metrics"))
            assert "DCGM_FI_DEV_GPU_UTIL" in fams
            assert c.get("/metrics").status_code == 200  # the same (kept-alive) connection again
            assert c.get("/health").text == "OK"
            assert c.get("/v1/models").status_code == 404
        # without --dcgm-exporter the port given stays closed
        with socket.socket() as s:
            assert s.connect_ex(("127.0.0.1", loaded.closed_dcgm_port)) != 0

    def test_dcgm_labels(self, opts, server):
        ours = families(opts.base_url, "/dcgm/metrics")["DCGM_FI_DEV_GPU_TEMP"].samples
        assert ours and all(s.labels["hostname"] and "Hostname" not in s.labels for s in ours)
        assert all(s.labels["namespace"] == "inference" and s.labels["container"] == "main"
                   and re.fullmatch(r"fakeai-((prefill|decode)-)?worker-\d+", s.labels["pod"]) for s in ours)
        default = families(server.base_url, "/dcgm/metrics")["DCGM_FI_DEV_GPU_TEMP"].samples
        assert all("Hostname" in s.labels and "pod" not in s.labels and "namespace" not in s.labels
                   for s in default)

    def test_kv_events(self, opts):
        sub = opts.sub
        with opts.client() as client:
            deadline = time.monotonic() + 15
            stored, attempt = None, 100
            while stored is None and time.monotonic() < deadline:
                # the first requests may go out before the connection is up (PUB drops them); each
                # attempt's prompt is new, so its blocks are stored (not found in the cache)
                attempt += 1
                client.chat.completions.create(model=MODEL, max_tokens=4, messages=[
                    {"role": "user", "content": long_prompt(attempt, words=300)}])
                while sub.poll(300):
                    topic, seq, payload = sub.recv_multipart()
                    ts, events, rank = msgpack.unpackb(payload)
                    for e in events:
                        if e[0] == "BlockStored" and e[2] is None:
                            stored = (topic, seq, ts, rank, e)
        assert stored is not None, "no BlockStored event arrived"
        topic, seq, ts, rank, event = stored
        assert re.fullmatch(rf"kv@127\.0\.0\.1:{opts.port}@.+".encode(), topic)
        assert len(seq) == 8 and abs(ts - time.time()) < 60 and isinstance(rank, int)
        tag, hashes, parent, token_ids, block_size, lora_id, medium, lora_name = event
        assert (tag, parent, lora_id, medium, lora_name) == ("BlockStored", None, None, "GPU", None)
        assert len(token_ids) == block_size * len(hashes) and hashes
        # Dynamo's block hashes: XXH3-64 (seed 1337) of each block's token ids, chained
        prev = None
        for i, h in enumerate(hashes):
            block = token_ids[i * block_size:(i + 1) * block_size]
            local = xxhash.xxh3_64_intdigest(struct.pack(f"<{block_size}I", *block), seed=1337)
            expected = local if prev is None else xxhash.xxh3_64_intdigest(struct.pack("<QQ", prev, local),
                                                                          seed=1337)
            assert h == expected
            prev = h
