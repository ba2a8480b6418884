"""Every setting changes what the running server does.

Each test drives a real ``fakeai server`` subprocess configured one way and,
where the difference is the point, compares it with the shared default server
(``server`` fixture: --ttft 0 --itl 0, everything else default). Options are set
through all three routes (CLI flag, FAKEAI_* env, config file) across the
instances, so every route is proven to reach the app.

Durations are measured, never slept: lower bounds are the configured values,
upper bounds are generous.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import textwrap
import threading
import time
from contextlib import contextmanager

import httpx
import openai
import pytest

from fakeai.config import Settings
from tests.data import ACME_CATALOG
from tests.server import free_port, run_server, stop, wait_for

MODEL = "gpt-4o-mini"
MSGS = [{"role": "user", "content": "Tell me about the weather."}]

ACME_TOML = ACME_CATALOG

BETA_YAML = textwrap.dedent("""\
    models:
      - id: acme/beta-2
        parent: gpt-4o-mini
        owned_by: acme-yaml
    """)

# Every Settings field and the tests below that prove it changes behaviour.
COVERAGE = {
    "host": ["test_host_port_log_level_and_access_log_from_env"],
    "port": ["test_host_port_log_level_and_access_log_from_env", "(every run_server: --port)"],
    "log_level": ["test_host_port_log_level_and_access_log_from_env",
                  "TestTiming::test_log_level_warning_is_quiet",
                  "TestRequestOptions::test_log_level_debug_without_access_log"],
    "access_log": ["test_host_port_log_level_and_access_log_from_env",
                   "TestRequestOptions::test_log_level_debug_without_access_log"],
    "max_request_bytes": ["TestRequestOptions::test_max_request_bytes"],
    "workers": ["tests/integration/test_workers.py::test_one_scrape_sees_every_process",
                "tests/integration/test_workers.py::test_rate_limits_and_files_are_shared"],
    "allow_any_model": ["TestRequestOptions::test_allow_any_model"],
    "models_file": ["TestRequestOptions::test_models_file_adds_models"],
    "strict_params": ["TestRequestOptions::test_strict_params"],
    "ttft_ms": ["TestTiming (flag)", "TestLognormalJitterUniformLength (env)", "TestFileTimingFixedLength (file)"],
    "itl_ms": ["TestTiming (env)", "TestCapacityAndTimer (flag)", "TestFileTimingFixedLength (file)"],
    "jitter": ["TestNormalJitterNormalLength", "TestFileTimingFixedLength::test_no_jitter_is_tight"],
    "jitter_dist": ["TestNormalJitterNormalLength", "TestLognormalJitterUniformLength"],
    "max_num_seqs": ["TestCapacityAndTimer::test_max_num_seqs_queues"],
    "timer_resolution_ms": ["TestCapacityAndTimer::test_timer_resolution_coalesces"],
    "output_length": ["TestRequestOptions::test_output_length_max", "TestFileTimingFixedLength",
                      "TestNormalJitterNormalLength", "TestLognormalJitterUniformLength"],
    "output_tokens": ["TestFileTimingFixedLength", "TestNormalJitterNormalLength",
                      "TestLognormalJitterUniformLength"],
    "output_tokens_spread": ["TestNormalJitterNormalLength", "TestLognormalJitterUniformLength"],
    "default_max_tokens": ["TestFileTimingFixedLength::test_default_max_tokens",
                           "TestRequestOptions::test_models_file_adds_models"],
    "reasoning_tokens": ["TestReasoningTokens::test_reasoning_budget"],
    "image_ttl_s": ["TestImageTTL::test_image_urls_expire_after_the_ttl"],
    "data_dir": ["tests/integration/test_files.py::TestStoreOptions::test_files_survive_a_restart_in_data_dir"],
    "store": ["tests/integration/test_files.py::TestStoreOptions::test_memory_store_forgets_on_restart",
              "tests/integration/test_files.py::TestStoreOptions::test_redis_store_is_shared_by_replicas"],
    "redis_url": ["tests/integration/test_files.py::TestStoreOptions::test_redis_store_is_shared_by_replicas"],
    "max_file_bytes": ["tests/integration/test_files.py::TestSizeLimit::test_max_file_bytes_and_no_global_body_limit"],
    "max_upload_bytes": ["tests/integration/test_uploads.py::test_max_upload_bytes"],
    "batch_concurrency": ["tests/integration/test_batches.py::test_concurrency_and_speedup_apply_to_batch_lines_only"],
    "batch_speedup": ["tests/integration/test_batches.py::test_concurrency_and_speedup_apply_to_batch_lines_only"],
    "fine_tune_step_ms": ["tests/integration/test_fine_tuning.py::TestSpeed::test_step_time_paces_the_run"],
    "usage_flush_ms": ["tests/integration/test_usage.py::TestDurability::test_flush_interval_is_the_crash_window"],
    "dcgm_exporter": ["tests/integration/test_metrics.py::TestTelemetryOptions::test_dcgm_exporter_port"],
    "dcgm_exporter_port": ["tests/integration/test_metrics.py::TestTelemetryOptions::test_dcgm_exporter_port"],
    "dcgm_hostname_label": ["tests/integration/test_metrics.py::TestTelemetryOptions::test_dcgm_labels"],
    "dcgm_pod_labels": ["tests/integration/test_metrics.py::TestTelemetryOptions::test_dcgm_labels"],
    "k8s_namespace": ["tests/integration/test_metrics.py::TestTelemetryOptions::test_dcgm_labels"],
    "kv_events_endpoint": ["tests/integration/test_metrics.py::TestTelemetryOptions::test_kv_events"],
    "metrics_minimal": ["tests/integration/test_metrics_api.py::test_metrics_minimal_option"],
    "metrics_history_interval_s": ["tests/integration/test_metrics_api.py::test_history_bounded_and_interval"],
    "metrics_history_length": ["tests/integration/test_metrics_api.py::test_history_bounded_and_interval"],
    "metrics_history_file": ["tests/integration/test_cli_views.py::test_history_file_replay"],
    "gpu_type": ["tests/integration/test_cluster.py::test_admin_reconfiguration_takes_effect_and_is_logged"],
    "tensor_parallel_size": ["tests/integration/test_cluster.py::test_admin_reconfiguration_takes_effect_and_is_logged"],
    "gpu_memory_utilization": ["tests/integration/test_cluster.py::test_admin_reconfiguration_takes_effect_and_is_logged"],
    "workers_per_model": ["tests/integration/test_cluster.py::test_round_robin_spreads_evenly", "tests/integration/test_cluster.py::test_disaggregated_prefill_and_decode"],
    "disaggregation": ["tests/integration/test_cluster.py::test_disaggregated_prefill_and_decode"],
    "prefill_workers": ["tests/integration/test_cluster.py::test_disaggregated_prefill_and_decode"],
    "kv_block_size": ["tests/integration/test_cluster.py::test_block_size_sets_the_cache_granularity"],
    "kv_cache_blocks": ["tests/integration/test_cluster.py::test_unique_prompts_evict_and_memory_stays_within_the_pool",
                        "tests/integration/test_cluster.py::test_preemption_when_the_pool_runs_out"],
    "max_num_batched_tokens": ["tests/integration/test_cluster.py::test_the_token_budget_chunks_a_long_prefill"],
    "enable_prefix_caching": ["tests/integration/test_cluster.py::test_disaggregated_prefill_and_decode"],
    "router_strategy": ["tests/integration/test_cluster.py::test_round_robin_spreads_evenly", "tests/integration/test_cluster.py::test_admin_reconfiguration_takes_effect_and_is_logged"],
    "router_overlap_weight": ["tests/integration/test_cluster.py::test_kv_routing_follows_the_cached_prefix"],
    "router_temperature": ["tests/unit/test_kv_router.py::test_temperature_spreads_requests_that_argmin_would_not"],
    "api_key": ["tests/integration/test_auth.py::test_every_route_needs_a_key",
                "tests/integration/test_auth.py::test_keys_from_the_flag_and_the_keys_file_work_with_every_header"],
    "admin_key": ["tests/integration/test_auth.py::test_admin_needs_the_admin_key", "tests/integration/test_admin.py::test_config_needs_the_admin_key_and_masks_secrets"],
    "public_health": ["tests/integration/test_auth.py::test_public_health_and_public_metrics_options"],
    "public_metrics": ["tests/integration/test_auth.py::test_public_health_and_public_metrics_options"],
    "rate_limit_tier": ["tests/integration/test_ratelimit.py::test_tiers_use_openais_numbers_with_day_limits"],
    "rate_limit_rpm": ["tests/integration/test_ratelimit.py::test_n_plus_one_parallel_requests_give_exactly_one_429"],
    "rate_limit_tpm": ["tests/integration/test_ratelimit.py::test_token_estimate_is_reconciled_with_the_real_usage"],
    "rate_limit_rpd": ["tests/integration/test_ratelimit.py::test_tiers_use_openais_numbers_with_day_limits"],
    "rate_limit_tpd": ["tests/integration/test_ratelimit.py::test_tiers_use_openais_numbers_with_day_limits"],
    "rate_limit_quantum_s": ["tests/integration/test_ratelimit.py::test_sdk_retries_a_429_after_retry_after_and_succeeds"],
    "abuse_detection": ["tests/integration/test_admin.py::test_failed_auths_ban_escalate_lift_and_expire", "tests/integration/test_admin.py::test_no_bans_without_abuse_detection"],
    "abuse_window_s": ["tests/unit/test_security_abuse.py::test_strikes_outside_the_window_are_forgotten",
                       "(every ban test in tests/integration/test_admin.py runs with --abuse-window-s 30)"],
    "abuse_auth_failures": ["tests/integration/test_admin.py::test_failed_auths_ban_escalate_lift_and_expire"],
    "abuse_rate_limit_hits": ["tests/integration/test_admin.py::test_rate_limit_hits_ban_and_admin_passes_a_ban"],
    "abuse_oversized": ["tests/integration/test_admin.py::test_oversized_bodies_ban"],
    "abuse_injections": ["tests/integration/test_admin.py::test_flagged_injections_pass_but_ban"],
    "abuse_ban_s": ["tests/integration/test_admin.py::test_failed_auths_ban_escalate_lift_and_expire"],
    "abuse_max_ban_s": ["tests/integration/test_admin.py::test_failed_auths_ban_escalate_lift_and_expire"],
    "max_json_depth": ["tests/integration/test_admin.py::test_json_depth_and_array_limits"],
    "max_json_array": ["tests/integration/test_admin.py::test_json_depth_and_array_limits"],
    "injection_detection": ["tests/integration/test_admin.py::test_flagged_injections_pass_but_ban",
                            "tests/integration/test_admin.py::test_refuse_mode_blocks_attacks_and_passes_every_benign_prompt"],
    "safety_refusals": ["tests/integration/test_admin.py::test_moderation_flagged_prompts_get_a_refusal"],
    "fault_rate": ["tests/integration/test_faults.py::test_fault_rate_and_types_from_env_and_the_header_switch"],
    "fault_types": ["tests/integration/test_faults.py::test_fault_rate_and_types_from_env_and_the_header_switch"],
    "fault_rates": ["tests/integration/test_faults.py::test_per_endpoint_rates_with_a_seeded_rng_and_a_schedule_from_a_file"],
    "fault_schedule": ["tests/integration/test_faults.py::test_per_endpoint_rates_with_a_seeded_rng_and_a_schedule_from_a_file",
                       "tests/integration/test_faults.py::test_schedule_windows_via_admin"],
    "fault_seed": ["tests/integration/test_faults.py::test_per_endpoint_rates_with_a_seeded_rng_and_a_schedule_from_a_file"],
    "fault_header": ["tests/integration/test_faults.py::test_fault_rate_and_types_from_env_and_the_header_switch"],
    "scenarios_file": ["tests/integration/test_scenarios.py::test_a_scripted_tool_loop_end_to_end",
                       "tests/integration/test_scenarios.py::test_hot_reload_and_admin"],
    "record_upstream": ["tests/integration/test_record_replay.py::test_recording_passes_the_upstream_through"],
    "cassette_dir": ["tests/integration/test_record_replay.py::test_replay_gives_identical_bytes_and_similar_timing"],
    "replay_miss": ["tests/integration/test_record_replay.py::test_replay_can_fall_back_to_generation"],
    "header_timeout_s": ["tests/reliability/test_hardening.py::test_slowloris_is_cut_after_the_header_timeout_while_others_are_served",
                         "tests/reliability/test_hardening.py::test_an_idle_connection_is_closed_without_an_answer"],
    "max_header_bytes": ["tests/reliability/test_hardening.py::test_an_oversized_head_gets_431_and_the_server_keeps_serving",
                         "tests/reliability/test_hardening.py::test_a_head_under_the_limit_is_served_whatever_the_body_size"],
    "keep_alive_timeout_s": ["tests/reliability/test_hardening.py::test_an_idle_keep_alive_connection_is_closed_after_the_timeout"],
    "max_connections": ["tests/reliability/test_hardening.py::test_connections_over_the_limit_get_503_in_openais_envelope"],
    "listen_backlog": ["tests/reliability/test_hardening.py::test_the_listen_backlog_bounds_the_kernels_accept_queue"],
    "request_timeout_s": ["tests/reliability/test_hardening.py::test_request_timeout_answers_504_but_never_cuts_a_started_stream"],
}


def test_every_option_is_covered_here():
    # a new Settings field fails this until a test here proves it reaches the app
    assert set(COVERAGE) == set(Settings.model_fields)
    for field, refs in COVERAGE.items():
        for ref in refs:
            if ref.startswith("("):
                continue
            if ".py::" in ref:  # a test in another module: tests/.../test_x.py::Class::test or ::test
                path, *names = ref.split(" ")[0].split("::")
                source = open(os.path.join(os.path.dirname(__file__), "..", "..", path)).read()
                for name in names:
                    assert f"def {name}(" in source or f"class {name}" in source, f"{field}: no test {ref}"
                continue
            owner, _, method = ref.split(" ")[0].partition("::")
            obj = globals().get(owner)
            assert obj is not None and (not method or hasattr(obj, method)), f"{field}: no test {ref}"


# --------------------------------------------------------------------------- helpers


def chat(base_url: str, **body) -> httpx.Response:
    payload = {"model": MODEL, "messages": MSGS, **body}
    with httpx.Client(base_url=base_url, timeout=30) as c:
        return c.post("/v1/chat/completions", json=payload)


def stream_lengths(base_url: str, n: int, **body) -> tuple[list[int], list[str | None]]:
    """Tokens (content chunks) and finish reason of each of ``n`` streamed choices."""
    counts, finish = [0] * n, [None] * n
    payload = {"model": MODEL, "messages": MSGS, "n": n, "stream": True, **body}
    with httpx.Client(base_url=base_url, timeout=60) as c, \
            c.stream("POST", "/v1/chat/completions", json=payload) as r:
        assert r.status_code == 200, r.read()
        for line in r.iter_lines():
            if not line.startswith("data: {"):
                continue
            for ch in json.loads(line[6:])["choices"]:
                if ch["delta"].get("content"):
                    counts[ch["index"]] += 1
                if ch["finish_reason"]:
                    finish[ch["index"]] = ch["finish_reason"]
    return counts, finish


def stream_arrivals(base_url: str, max_tokens: int, model: str = MODEL) -> tuple[float, list[float]]:
    """(seconds to the first content token, arrival times of every content token)."""
    payload = {"model": model, "messages": MSGS, "stream": True, "max_tokens": max_tokens, "ignore_eos": True}
    times = []
    with httpx.Client(base_url=base_url, timeout=60) as c:
        t0 = time.perf_counter()
        with c.stream("POST", "/v1/chat/completions", json=payload) as r:
            assert r.status_code == 200
            for line in r.iter_lines():
                if '"content":"' in line and '"content":""' not in line:
                    times.append(time.perf_counter())
    assert len(times) == max_tokens
    return times[0] - t0, times


def gaps(times: list[float]) -> list[float]:
    return [b - a for a, b in zip(times, times[1:])]


def timed_chat(base_url: str, **body) -> tuple[float, httpx.Response]:
    t0 = time.perf_counter()
    r = chat(base_url, **body)
    return time.perf_counter() - t0, r


def processing_ms(base_url: str, count: int, concurrency: int) -> list[int]:
    """Server-measured duration (openai-processing-ms) of ``count`` one-token requests."""
    body = {"model": MODEL, "messages": MSGS, "max_tokens": 1}

    async def run() -> list[int]:
        sem = asyncio.Semaphore(concurrency)
        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        async with httpx.AsyncClient(base_url=base_url, timeout=30, limits=limits) as c:
            async def one() -> int:
                async with sem:
                    r = await c.post("/v1/chat/completions", json=body)
                    assert r.status_code == 200
                    return int(r.headers["openai-processing-ms"])
            return await asyncio.gather(*[one() for _ in range(count)])

    return asyncio.run(run())


def health(base_url: str) -> dict:
    return httpx.get(base_url + "/health", timeout=5).json()


def logs_so_far(server) -> str:
    """Everything the server has written so far.

    uvicorn writes a request's log lines before it sends the response, so once a
    response is in, its lines are in the log file.
    """
    return server.output()


# access-log line as uvicorn writes it, e.g. 127.0.0.1:5555 - "GET /health HTTP/1.1" 200 OK
ACCESS_LINE = '"GET /health HTTP/1.1" 200'


# --------------------------------------------------------------------------- request options


@pytest.fixture(scope="class")
def opts(tmp_path_factory):
    d = tmp_path_factory.mktemp("opts")
    (d / "acme.toml").write_text(ACME_TOML, encoding="utf-8")
    (d / "beta.yaml").write_text(BETA_YAML, encoding="utf-8")
    files = f"{d / 'acme.toml'},{d / 'beta.yaml'}"  # a list option from a comma-separated env var
    with run_server("--ttft", "0", "--itl", "0", "--strict-params", "--max-request-bytes", "4096",
                    "--allow-any-model", "--output-length", "max", "--log-level", "debug",
                    env={"FAKEAI_MODELS_FILE": files}) as s:
        yield s


class TestRequestOptions:
    def test_strict_params(self, server, opts):
        extra = {"foo_bar": 1}
        with server.client() as c:  # default: unknown fields are accepted
            r = c.chat.completions.create(model=MODEL, messages=MSGS, max_tokens=3, extra_body=extra)
            assert r.choices[0].message.content
            assert c.completions.create(model=MODEL, prompt="hi", max_tokens=3, extra_body=extra).choices
        with opts.client() as c:
            with pytest.raises(openai.BadRequestError) as e:
                c.chat.completions.create(model=MODEL, messages=MSGS, max_tokens=3, extra_body=extra)
            err = e.value.body
            assert err["param"] == "foo_bar" and "foo_bar" in err["message"]
            assert "Unrecognized request argument" in err["message"]
            with pytest.raises(openai.BadRequestError) as e:
                c.completions.create(model=MODEL, prompt="hi", max_tokens=3, extra_body=extra)
            assert e.value.body["param"] == "foo_bar"
            # known fields are still fine under strict checking
            r = c.chat.completions.create(model=MODEL, messages=MSGS, max_tokens=3, temperature=0.5, seed=1,
                                          top_p=0.9, user="u", metadata={"k": "v"})
            assert r.choices[0].message.content

    def test_max_request_bytes(self, server, opts):
        def body(size: int) -> bytes:
            base = {"model": MODEL, "messages": [{"role": "user", "content": ""}], "max_tokens": 1}
            pad = size - len(json.dumps(base))
            base["messages"][0]["content"] = "x" * pad
            raw = json.dumps(base).encode()
            assert len(raw) == size
            return raw

        def chunked(raw: bytes):
            for i in range(0, len(raw), 1000):
                yield raw[i:i + 1000]

        headers = {"content-type": "application/json"}
        with opts.http() as c:
            assert c.post("/v1/chat/completions", content=body(4000), headers=headers).status_code == 200
            assert c.post("/v1/chat/completions", content=chunked(body(4000)), headers=headers).status_code == 200
            for content in (body(5000), chunked(body(5000))):  # with and without content-length
                r = c.post("/v1/chat/completions", content=content, headers=headers)
                assert r.status_code == 413
                assert r.json()["error"]["code"] == "request_too_large"
                assert "4096" in r.json()["error"]["message"]
        with server.http() as c:  # the default limit is far larger
            assert c.post("/v1/chat/completions", content=body(200_000), headers=headers).status_code == 200

    def test_allow_any_model(self, server, opts):
        name = "my-org/some-unlisted-model"
        with server.client() as c:
            with pytest.raises(openai.NotFoundError) as e:
                c.chat.completions.create(model=name, messages=MSGS, max_tokens=3)
            assert e.value.body["code"] == "model_not_found"
            with pytest.raises(openai.NotFoundError):
                c.models.retrieve(name)
        with opts.client() as c:
            r = c.chat.completions.create(model=name, messages=MSGS, max_tokens=3)
            assert r.model == name and r.usage.completion_tokens == 3
            assert c.models.retrieve(name).id == name
            assert c.completions.create(model=name, prompt="hi", max_tokens=2).usage.completion_tokens == 2
            assert name not in {m.id for m in c.models.list()}  # accepted, not listed

    def test_models_file_adds_models(self, server, opts):
        with server.client() as c:
            assert not {"acme/test-1", "acme/beta-2"} & {m.id for m in c.models.list()}
            with pytest.raises(openai.NotFoundError):
                c.chat.completions.create(model="acme/test-1", messages=MSGS, max_tokens=3)
        with opts.client() as c:
            listed = {m.id: m for m in c.models.list()}
            assert listed["acme/test-1"].owned_by == "acme"
            assert listed["acme/beta-2"].owned_by == "acme-yaml"
            assert "gpt-4o" in listed  # added to, not replacing, the catalog
        with opts.http() as h:
            caps = h.get("/v1/models/acme/test-1/capabilities").json()
            assert (caps["context_window"], caps["max_output_tokens"], caps["tokenizer"]) == (4096, 64, "llama3")
            beta = h.get("/v1/models/acme/beta-2/capabilities").json()
            assert beta["context_window"] == 128000  # inherited from its parent
        # the file's limits are what the engine enforces: with output-length max and no
        # max_tokens (default_max_tokens unset) a completion is the model's max output
        r = chat(opts.base_url, model="acme/test-1").json()
        assert r["usage"]["completion_tokens"] == 64 and r["choices"][0]["finish_reason"] == "length"
        r = chat(opts.base_url, model="acme/test-1", max_tokens=5000)
        assert r.status_code == 400 and r.json()["error"]["code"] == "context_length_exceeded"
        assert chat(opts.base_url, model="acme/beta-2", max_tokens=4).json()["usage"]["completion_tokens"] == 4

    def test_log_level_debug_without_access_log(self, opts):
        assert httpx.get(opts.base_url + "/health").status_code == 200
        out = logs_so_far(opts)
        assert "Application startup complete" in out  # info lines show at debug (not at warning)
        assert ACCESS_LINE not in out  # access_log defaults to off
        assert "TRACE:" not in out

    def test_output_length_max(self, server, opts):
        counts, finish = stream_lengths(opts.base_url, 8, max_tokens=300)
        assert counts == [300] * 8 and finish == ["length"] * 8
        # default (normal around 160): the model stops on its own well before 600
        counts, finish = stream_lengths(server.base_url, 16, max_tokens=600)
        assert all(c < 600 for c in counts) and finish == ["stop"] * 16


# --------------------------------------------------------------------------- ttft / itl


class TestTiming:
    @pytest.fixture(scope="class")
    @classmethod
    def timed(cls):
        # TTFT from the CLI flag, which beats its env var; ITL from the environment
        with run_server("--ttft", "300", env={"FAKEAI_TTFT_MS": "5000", "FAKEAI_ITL_MS": "30"}) as s:
            yield s

    def test_streaming_ttft_and_itl(self, timed, server):
        ttft, times = stream_arrivals(timed.base_url, 20)
        g = gaps(times)
        assert 0.300 <= ttft < 0.300 + 0.4  # 300 ms from the flag, not 5 s from the env
        assert 0.025 <= statistics.mean(g) <= 0.045
        assert sum(g) >= 19 * 0.030 * 0.95  # absolute deadlines: no drift either way
        fast_ttft, fast_times = stream_arrivals(server.base_url, 20)
        assert fast_ttft < 0.1 and times[-1] - times[0] > 5 * (fast_times[-1] - fast_times[0] + 0.01)

    def test_non_streaming_waits_for_every_token(self, timed):
        elapsed, r = timed_chat(timed.base_url, max_tokens=20, ignore_eos=True)
        assert r.json()["usage"]["completion_tokens"] == 20
        assert 0.300 + 19 * 0.030 <= elapsed < 0.300 + 19 * 0.030 + 0.6

    def test_log_level_warning_is_quiet(self, timed):
        # run_server passes --log-level warning: no startup lines, no request lines
        assert httpx.get(timed.base_url + "/health").status_code == 200
        out = logs_so_far(timed)
        assert "fakeai" in out  # the banner is printed at every level
        assert "INFO:" not in out and "TRACE:" not in out and ACCESS_LINE not in out, out


class TestFileTimingFixedLength:
    """Timing from a --config TOML file; output length and the default cap from env vars."""

    @pytest.fixture(scope="class")
    @classmethod
    def filed(cls, tmp_path_factory):
        cfg = tmp_path_factory.mktemp("cfg") / "timing.toml"
        cfg.write_text("ttft_ms = 150\nitl_ms = 5\njitter = 0.0\n", encoding="utf-8")
        env = {"FAKEAI_OUTPUT_LENGTH": "fixed", "FAKEAI_OUTPUT_TOKENS": "40", "FAKEAI_DEFAULT_MAX_TOKENS": "12"}
        with run_server("--config", str(cfg), env=env) as s:
            yield s

    def test_ttft_and_itl_from_config_file(self, filed):
        ttft, times = stream_arrivals(filed.base_url, 21)
        assert 0.150 <= ttft < 0.150 + 0.4
        assert 0.004 <= statistics.mean(gaps(times)) < 0.02

    def test_no_jitter_is_tight(self, filed):
        ms = processing_ms(filed.base_url, 40, concurrency=10)
        assert min(ms) >= 150 - 1  # uvloop's clock has 1 ms granularity; the header is floored
        assert max(ms) - min(ms) <= 35, sorted(ms)

    def test_fixed_output_length(self, filed, server):
        counts, finish = stream_lengths(filed.base_url, 32, max_tokens=1000)
        # the generator stops at the first sentence end at or after the target
        assert all(40 <= c <= 40 + 60 for c in counts), counts
        assert finish == ["stop"] * 32
        default_counts, _ = stream_lengths(server.base_url, 32, max_tokens=1000)
        assert statistics.pstdev(default_counts) > 3 * statistics.pstdev(counts)

    def test_default_max_tokens(self, filed):
        counts, finish = stream_lengths(filed.base_url, 4)  # no max_tokens: capped at 12
        assert counts == [12] * 4 and finish == ["length"] * 4
        counts, finish = stream_lengths(filed.base_url, 4, max_tokens=30)  # an explicit limit wins
        assert counts == [30] * 4 and finish == ["length"] * 4


# --------------------------------------------------------------------------- jitter, output lengths

# With --jitter 1 the TTFT factor is N(1, 1) (normal) or a lognormal of mean 1 and
# relative std 1 (median 0.71), both clamped to [0.25, 4]. The share of requests
# faster than 1.1 x ttft is 0.54 for normal and 0.70 for lognormal.
JITTER_SAMPLES = 400
SPLIT = 0.62


class TestNormalJitterNormalLength:
    @pytest.fixture(scope="class")
    @classmethod
    def normal(cls, tmp_path_factory):
        cfg = tmp_path_factory.mktemp("cfg") / "lengths.toml"
        cfg.write_text('output_length = "normal"\noutput_tokens = 300\noutput_tokens_spread = 120\n',
                       encoding="utf-8")
        with run_server("--ttft", "100", "--itl", "0", "--jitter", "1", "--jitter-dist", "normal",
                        env={"FAKEAI_CONFIG": str(cfg)}) as s:
            yield s

    def test_normal_jitter(self, normal):
        ms = processing_ms(normal.base_url, JITTER_SAMPLES, concurrency=40)
        assert min(ms) >= 25 - 1  # the factor is clamped at 0.25
        assert statistics.pstdev(ms) > 40 and max(ms) - min(ms) > 150, sorted(ms)
        fast = sum(m < 110 for m in ms) / len(ms)
        assert 0.40 < fast < SPLIT, fast

    def test_normal_output_length(self, normal):
        counts = []
        for _ in range(2):
            c, finish = stream_lengths(normal.base_url, 64)
            counts += c
            assert set(finish) == {"stop"}
        mean = statistics.mean(counts)
        assert 250 <= mean <= 370, mean  # around output_tokens, not the default 160
        assert statistics.pstdev(counts) > 60
        # a normal length leaves mean +- spread, which a uniform one never does
        assert min(counts) < 300 - 120, sorted(counts)


class TestLognormalJitterUniformLength:
    @pytest.fixture(scope="class")
    @classmethod
    def lognormal(cls, tmp_path_factory):
        cfg = tmp_path_factory.mktemp("cfg") / "lengths.yaml"
        cfg.write_text("output_length: uniform\noutput_tokens: 100\noutput_tokens_spread: 60\n", encoding="utf-8")
        with run_server("--itl", "0", "--jitter", "1", "--jitter-dist", "lognormal", "--config", str(cfg),
                        env={"FAKEAI_TTFT_MS": "100"}) as s:
            yield s

    def test_lognormal_jitter(self, lognormal):
        ms = processing_ms(lognormal.base_url, JITTER_SAMPLES, concurrency=40)
        assert min(ms) >= 25 - 1
        assert statistics.pstdev(ms) > 30, sorted(ms)
        fast = sum(m < 110 for m in ms) / len(ms)
        assert fast > SPLIT, fast  # lognormal: most requests are faster than the mean

    def test_uniform_output_length(self, lognormal):
        counts = []
        for _ in range(2):
            c, finish = stream_lengths(lognormal.base_url, 64)
            counts += c
            assert set(finish) == {"stop"}
        assert min(counts) >= 100 - 60, sorted(counts)
        assert max(counts) <= 100 + 60 + 40, sorted(counts)  # + the end of the last sentence
        assert sum(c < 100 for c in counts) >= 10  # below the mean: not fixed
        assert sum(c > 140 for c in counts) >= 10
        assert statistics.pstdev(counts) > 20


# --------------------------------------------------------------------------- capacity and timer


class TestCapacityAndTimer:
    @pytest.fixture(scope="class")
    @classmethod
    def one_seq(cls):
        with run_server("--max-num-seqs", "1", "--ttft", "0", "--itl", "5", "--timer-resolution-ms", "1") as s:
            yield s

    @pytest.fixture(scope="class")
    @classmethod
    def coarse(cls):
        with run_server("--max-num-seqs", "8", "--ttft", "0", "--itl", "5", "--timer-resolution-ms", "20") as s:
            yield s

    @staticmethod
    def three_at_once(base_url: str, until) -> tuple[float, bool]:
        """Run 3 concurrent 40-token requests; (total seconds, whether ``until(health)`` was seen)."""
        results: list[int] = []

        def one():
            r = chat(base_url, max_tokens=40, ignore_eos=True)
            results.append(r.json()["usage"]["completion_tokens"])

        threads = [threading.Thread(target=one) for _ in range(3)]
        t0 = time.perf_counter()
        for t in threads:
            t.start()
        seen = []

        def check() -> bool:
            if until(health(base_url)):
                seen.append(True)
                return True
            return not any(t.is_alive() for t in threads)

        wait_for(check, timeout=10)
        for t in threads:
            t.join(30)
        elapsed = time.perf_counter() - t0
        assert results == [40, 40, 40]
        return elapsed, bool(seen)

    def test_max_num_seqs_queues(self, one_seq, coarse):
        one = 39 * 0.005  # the shortest a 40-token request can take at 5 ms ITL
        single, _ = timed_chat(one_seq.base_url, max_tokens=40, ignore_eos=True)
        assert single >= one * 0.97  # (uvloop's clock is 1 ms coarse)
        total, queued = self.three_at_once(one_seq.base_url, lambda h: h["running"] == 1 and h["waiting"] == 2)
        assert queued, "never saw 1 running and 2 waiting"
        assert total >= 3 * one * 0.97, (total, single)  # one after the other

        total, together = self.three_at_once(coarse.base_url, lambda h: h["running"] == 3)
        assert together, "never saw 3 running"
        assert total < 3 * one, total  # side by side: well under three in a row
        assert health(coarse.base_url)["waiting"] == 0

    def test_timer_resolution_coalesces(self, one_seq, coarse):
        _, fine = stream_arrivals(one_seq.base_url, 40)
        fine_apart = [g for g in gaps(fine) if g > 0.002]
        assert len(fine_apart) >= 30  # one write per token, 5 ms apart

        _, times = stream_arrivals(coarse.base_url, 40)
        apart = [g for g in gaps(times) if g > 0.002]
        # 40 tokens over ~195 ms on a 20 ms timer: about 10 bursts of ~4 tokens
        assert 5 <= len(apart) <= 14, [round(g * 1000, 1) for g in gaps(times)]
        assert statistics.median(apart) >= 0.015
        assert times[-1] - times[0] >= 39 * 0.005 - 0.02


# --------------------------------------------------------------------------- host, port, logging


@contextmanager
def launch(*args: str, env: dict[str, str], base_url: str):
    """``fakeai server ARGS`` with nothing added (run_server always passes --host/--port)."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("FAKEAI_")}
    full_env.update(env)
    proc = subprocess.Popen([sys.executable, "-m", "fakeai", "server", *args], env=full_env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)

    def ready() -> bool:
        try:
            return httpx.get(base_url + "/health/ready", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        ok = wait_for(lambda: proc.poll() is not None or ready(), timeout=20, interval=0.05)
        if proc.poll() is not None or not ok:
            proc.kill()
            raise AssertionError(f"server not ready at {base_url}:\n{proc.communicate()[0].decode()}")
        yield proc
    finally:
        stop(proc)


def test_host_port_log_level_and_access_log_from_env():
    host = "127.0.0.2"
    try:
        with socket.socket() as s:
            s.bind((host, 0))
    except OSError:
        pytest.skip(f"cannot bind {host} here")
    port = free_port()
    env = {"FAKEAI_HOST": host, "FAKEAI_PORT": str(port), "FAKEAI_LOG_LEVEL": "trace",
           "FAKEAI_ACCESS_LOG": "true"}
    with launch(env=env, base_url=f"http://{host}:{port}") as proc:
        assert httpx.get(f"http://{host}:{port}/health", timeout=5).status_code == 200
        with pytest.raises(httpx.ConnectError):  # bound to the given interface only
            httpx.get(f"http://127.0.0.1:{port}/health", timeout=5)
    out = proc.stdout.read().decode(errors="replace")
    assert f"{host}:{port}" in out
    assert "TRACE:" in out and "HTTP connection made" in out
    assert "Application startup complete" in out
    assert ACCESS_LINE in out


class TestReasoningTokens:
    @pytest.fixture(scope="class")
    @classmethod
    def small(cls):
        with run_server("--ttft", "0", "--itl", "0", "--reasoning-tokens", "40") as s:
            yield s

    @pytest.fixture(scope="class")
    @classmethod
    def off(cls):
        with run_server("--ttft", "0", "--itl", "0", "--reasoning-tokens", "0") as s:
            yield s

    @staticmethod
    def reasoning(base_url: str, effort: str = "medium") -> int:
        r = httpx.post(base_url + "/v1/chat/completions", timeout=30, json={
            "model": "o3-mini", "messages": MSGS, "max_completion_tokens": 4000, "reasoning_effort": effort})
        assert r.status_code == 200, r.text
        return r.json()["usage"]["completion_tokens_details"]["reasoning_tokens"]

    def test_reasoning_budget(self, server, small, off):
        default = [self.reasoning(server.base_url) for _ in range(5)]
        assert all(256 * 0.7 - 1 <= n <= 256 * 1.3 + 1 for n in default), default
        few = [self.reasoning(small.base_url) for _ in range(5)]
        assert all(40 * 0.7 - 1 <= n <= 40 * 1.3 + 1 for n in few), few
        assert self.reasoning(off.base_url) == 0


class TestImageTTL:
    @pytest.fixture(scope="class")
    @classmethod
    def short(cls):
        with run_server("--ttft", "0", "--itl", "0", "--image-ttl-s", "1") as s:
            yield s

    @staticmethod
    def url(base_url: str) -> str:
        r = httpx.post(base_url + "/v1/images/generations", timeout=30, json={
            "model": "dall-e-2", "prompt": "a lighthouse", "size": "256x256", "response_format": "url"})
        assert r.status_code == 200, r.text
        return r.json()["data"][0]["url"]

    def test_image_urls_expire_after_the_ttl(self, server, short):
        kept, gone = self.url(server.base_url), self.url(short.base_url)
        assert httpx.get(gone).status_code == 200
        assert wait_for(lambda: httpx.get(gone).status_code == 404, timeout=10, interval=0.1)
        assert httpx.get(kept).status_code == 200  # the default TTL is an hour
