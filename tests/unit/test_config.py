"""The settings loader: sources, precedence, parsing and validation of every option.

Precedence is CLI flag > env FAKEAI_<FIELD> > config file (TOML or YAML, from
--config or FAKEAI_CONFIG) > default, and ``sources`` names where each value came
from. The CLI values here come from the real ``fakeai.cli.build_parser()``.
"""

from __future__ import annotations

import argparse
import json
import typing
from pathlib import Path

import pytest

from fakeai.cli import build_parser
from fakeai.config import CLI_ALIASES, ConfigError, Settings, env_name, load_settings

ROOT = Path(__file__).resolve().parents[2]
FIELDS = list(Settings.model_fields)

# A valid, non-default value for every field (all together form one valid Settings).
NON_DEFAULT: dict[str, typing.Any] = {
    "host": "0.0.0.0",
    "port": 9123,
    "log_level": "debug",
    "access_log": True,
    "max_request_bytes": 4096,
    "workers": 2,
    "header_timeout_s": 2.5,
    "max_header_bytes": 8192,
    "keep_alive_timeout_s": 5.0,
    "max_connections": 500,
    "listen_backlog": 128,
    "request_timeout_s": 600.0,
    "allow_any_model": True,
    "models_file": ["extra-a.toml", "extra-b.yaml"],
    "strict_params": True,
    "ttft_ms": 12.5,
    "itl_ms": 3.0,
    "jitter": 0.2,
    "jitter_dist": "lognormal",
    "max_num_seqs": 7,
    "timer_resolution_ms": 2.5,
    "output_length": "uniform",
    "output_tokens": 50,
    "output_tokens_spread": 10,
    "default_max_tokens": 99,
    "reasoning_tokens": 32,
    "image_ttl_s": 60,
    "data_dir": "/srv/fakeai",
    "store": "redis",
    "redis_url": "redis://10.0.0.5:6380/2",
    "max_file_bytes": 1_000_000,
    "max_upload_bytes": 2_000_000,
    "batch_concurrency": 3,
    "batch_speedup": 250.0,
    "fine_tune_step_ms": 5.0,
    "usage_flush_ms": 250,
    "dcgm_exporter": True,
    "dcgm_exporter_port": 19400,
    "dcgm_hostname_label": "hostname",
    "dcgm_pod_labels": True,
    "k8s_namespace": "inference",
    "kv_events_endpoint": "tcp://*:5557",
    "metrics_minimal": True,
    "metrics_history_interval_s": 0.5,
    "metrics_history_length": 60,
    "metrics_history_file": "history.jsonl",
    "gpu_type": "B200",
    "tensor_parallel_size": 4,
    "workers_per_model": 3,
    "disaggregation": True,
    "prefill_workers": 2,
    "kv_block_size": 32,
    "gpu_memory_utilization": 0.8,
    "kv_cache_blocks": 1000,
    "max_num_batched_tokens": 2048,
    "enable_prefix_caching": False,
    "router_strategy": "round_robin",
    "router_overlap_weight": 2.0,
    "router_temperature": 0.5,
    "fault_rate": 0.05,
    "fault_types": ["502", "timeout=2s"],
    "fault_rates": ["20% 503 /v1/chat/completions", "0.01 cut-after=3;drip=5ms"],
    "fault_schedule": ["30s-90s 20% 503"],
    "fault_seed": 42,
    "fault_header": False,
    "scenarios_file": "scenarios.yaml",
    "record_upstream": "http://127.0.0.1:9999/v1",
    "cassette_dir": "cassettes",
    "replay_miss": "generate",
    "api_key": ["sk-test-one-0123456789abcdef", "@keys.txt"],
    "admin_key": "adm-test-0123456789abcdef",
    "public_health": False,
    "public_metrics": True,
    "rate_limit_tier": "tier-2",
    "rate_limit_rpm": 100,
    "rate_limit_tpm": 20000,
    "rate_limit_rpd": 1000,
    "rate_limit_tpd": 500000,
    "rate_limit_quantum_s": 10,
    "abuse_detection": True,
    "abuse_window_s": 30.0,
    "abuse_auth_failures": 4,
    "abuse_rate_limit_hits": 20,
    "abuse_oversized": 2,
    "abuse_injections": 1,
    "abuse_ban_s": 5.0,
    "abuse_max_ban_s": 600.0,
    "max_json_depth": 16,
    "max_json_array": 5000,
    "injection_detection": "refuse",
    "safety_refusals": True,
}


# --------------------------------------------------------------------------- helpers


def subparser(name: str) -> argparse.ArgumentParser:
    parser = build_parser()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action.choices[name]
    raise AssertionError("fakeai has no subcommands")


def cli_values(*argv: str, command: str = "config") -> dict[str, typing.Any]:
    """What the real parser hands to load_settings: only the flags that were given."""
    ns = build_parser().parse_args([command, *argv])
    return {k: v for k, v in vars(ns).items() if k not in ("command", "config", "json")}


def flag(field: str) -> str:
    return "--" + field.replace("_", "-")


def as_argv(field: str, value: typing.Any) -> list[str]:
    if isinstance(value, bool):
        return [flag(field) if value else "--no-" + field.replace("_", "-")]
    if isinstance(value, list):
        return [a for v in value for a in (flag(field), str(v))]
    return [flag(field), str(value)]


def as_env_text(value: typing.Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ",".join(value)
    return str(value)


def toml_value(value: typing.Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, str)):
        return json.dumps(value)  # JSON strings/arrays of strings are valid TOML
    return repr(value)


def write_toml(path: Path, values: dict[str, typing.Any]) -> str:
    path.write_text("".join(f"{k} = {toml_value(v)}\n" for k, v in values.items()), encoding="utf-8")
    return str(path)


def default_of(field: str) -> typing.Any:
    f = Settings.model_fields[field]
    return f.default_factory() if f.default_factory else f.default


# --------------------------------------------------------------------------- tables


def test_the_non_default_table_covers_every_field():
    # a new Settings field must be added here, which makes every test below cover it
    assert set(NON_DEFAULT) == set(FIELDS)
    for name, value in NON_DEFAULT.items():
        assert value != default_of(name), name
    assert Settings.model_validate(NON_DEFAULT).model_dump() == NON_DEFAULT


def test_models_file_in_a_config_file_is_relative_to_it(tmp_path, monkeypatch):
    sub = tmp_path / "conf"
    sub.mkdir()
    path = write_toml(sub / "fakeai.toml", {"models_file": ["extra.toml", "/abs/x.yaml"]})
    monkeypatch.chdir(tmp_path)
    loaded = load_settings(env={}, config_file=str(path))
    assert loaded.settings.models_file == [str(sub / "extra.toml"), "/abs/x.yaml"]


def test_defaults_with_no_sources():
    loaded = load_settings(env={})
    assert loaded.settings == Settings()
    assert loaded.sources == {name: "default" for name in FIELDS}
    assert loaded.config_file is None


# --------------------------------------------------------------------------- precedence

# field -> (file value, env text, CLI argv, expected after file, after env, after cli)
PRECEDENCE = {
    "ttft_ms": (10.0, "20", ["--ttft", "30"], 10.0, 20.0, 30.0),
    "port": (8001, "8002", ["--port", "8003"], 8001, 8002, 8003),
    "allow_any_model": (True, "false", ["--allow-any-model"], True, False, True),
    "output_length": ("fixed", "max", ["--output-length", "uniform"], "fixed", "max", "uniform"),
    "models_file": (["a.toml"], "b.toml, c.yaml", ["--models-file", "d.toml", "--models-file", "e.yml"],
                    ["a.toml"], ["b.toml", "c.yaml"], ["d.toml", "e.yml"]),
}


@pytest.mark.parametrize("field", list(PRECEDENCE))
def test_precedence_default_file_env_cli(tmp_path, field):
    file_v, env_v, argv, after_file, after_env, after_cli = PRECEDENCE[field]
    env_var = env_name(field)
    assert env_var == "FAKEAI_" + field.upper()
    path = write_toml(tmp_path / "fakeai.toml", {field: file_v})

    loaded = load_settings(env={})
    assert getattr(loaded.settings, field) == default_of(field)
    assert loaded.sources[field] == "default"

    loaded = load_settings(env={}, config_file=path)
    if field == "models_file":  # paths in a config file are relative to that file
        after_file = [str(tmp_path / f) for f in after_file]
    assert getattr(loaded.settings, field) == after_file
    assert loaded.sources[field] == f"file:{path}"
    assert loaded.config_file == path

    loaded = load_settings(env={env_var: env_v}, config_file=path)
    assert getattr(loaded.settings, field) == after_env
    assert loaded.sources[field] == f"env:{env_var}"

    loaded = load_settings(cli=cli_values(*argv), env={env_var: env_v}, config_file=path)
    assert getattr(loaded.settings, field) == after_cli
    assert loaded.sources[field] == "cli"

    # the other fields are untouched by all of this
    others = {k: v for k, v in loaded.sources.items() if k != field}
    assert set(others.values()) == {"default"}


def test_cli_beats_env_beats_file_all_at_once(tmp_path):
    path = write_toml(tmp_path / "c.toml", {"port": 1111, "itl_ms": 1.0, "jitter": 0.1, "max_num_seqs": 3})
    env = {"FAKEAI_PORT": "2222", "FAKEAI_ITL_MS": "2", "FAKEAI_OUTPUT_TOKENS": "77"}
    loaded = load_settings(cli=cli_values("--port", "3333", "--itl", "3"), env=env, config_file=path)
    s, src = loaded.settings, loaded.sources
    assert (s.port, src["port"]) == (3333, "cli")
    assert (s.itl_ms, src["itl_ms"]) == (3.0, "cli")
    assert (s.output_tokens, src["output_tokens"]) == (77, "env:FAKEAI_OUTPUT_TOKENS")
    assert (s.jitter, src["jitter"]) == (0.1, f"file:{path}")
    assert (s.max_num_seqs, src["max_num_seqs"]) == (3, f"file:{path}")
    assert (s.output_length, src["output_length"]) == ("normal", "default")


# --------------------------------------------------------------------------- config files


def test_toml_and_yaml_files_give_the_same_settings(tmp_path):
    toml_path = write_toml(tmp_path / "cfg.toml", NON_DEFAULT)
    yaml_path = tmp_path / "cfg.yaml"
    yaml_path.write_text("".join(f"{k}: {json.dumps(v)}\n" for k, v in NON_DEFAULT.items()), encoding="utf-8")
    yml_path = tmp_path / "cfg.yml"
    yml_path.write_text(yaml_path.read_text(), encoding="utf-8")
    # models_file entries resolve against the file's folder
    expected = {**NON_DEFAULT, "models_file": [str(tmp_path / f) for f in NON_DEFAULT["models_file"]]}
    for path in (toml_path, str(yaml_path), str(yml_path)):
        loaded = load_settings(env={}, config_file=path)
        assert loaded.settings.model_dump() == expected, path
        assert loaded.sources == {name: f"file:{path}" for name in FIELDS}


def test_yaml_file_accepts_dashed_keys(tmp_path):
    path = tmp_path / "cfg.yaml"
    path.write_text("max-num-seqs: 5\noutput-length: max\n", encoding="utf-8")
    s = load_settings(env={}, config_file=str(path)).settings
    assert (s.max_num_seqs, s.output_length) == (5, "max")


def test_fakeai_config_env_selects_the_file(tmp_path):
    path = write_toml(tmp_path / "by-env.toml", {"ttft_ms": 42.0, "strict_params": True})
    loaded = load_settings(env={"FAKEAI_CONFIG": path})
    assert loaded.settings.ttft_ms == 42.0 and loaded.settings.strict_params is True
    assert loaded.sources["ttft_ms"] == f"file:{path}"
    assert loaded.config_file == path


def test_explicit_config_file_beats_fakeai_config(tmp_path):
    by_env = write_toml(tmp_path / "env.toml", {"port": 1})
    explicit = write_toml(tmp_path / "explicit.toml", {"port": 2})
    loaded = load_settings(env={"FAKEAI_CONFIG": by_env}, config_file=explicit)
    assert loaded.settings.port == 2
    assert loaded.sources["port"] == f"file:{explicit}"


def test_unknown_key_in_file_is_named(tmp_path):
    path = write_toml(tmp_path / "bad.toml", {"port": 1, "bogus_option": 3})
    with pytest.raises(ConfigError) as e:
        load_settings(env={}, config_file=path)
    assert "bogus_option" in str(e.value)
    assert path in str(e.value)


def test_unreadable_or_invalid_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="missing.toml"):
        load_settings(env={}, config_file=str(tmp_path / "missing.toml"))
    bad = tmp_path / "broken.toml"
    bad.write_text("port = = 3\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="broken.toml"):
        load_settings(env={}, config_file=str(bad))
    listy = tmp_path / "list.yaml"
    listy.write_text("- port\n- 3\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="list.yaml"):
        load_settings(env={}, config_file=str(listy))


# --------------------------------------------------------------------------- invalid values


@pytest.mark.parametrize("env, field", [
    ({"FAKEAI_PORT": "abc"}, "port"),
    ({"FAKEAI_PORT": "70000"}, "port"),
    ({"FAKEAI_TTFT_MS": "-1"}, "ttft_ms"),
    ({"FAKEAI_ITL_MS": "fast"}, "itl_ms"),
    ({"FAKEAI_JITTER": "1.5"}, "jitter"),
    ({"FAKEAI_JITTER_DIST": "cauchy"}, "jitter_dist"),
    ({"FAKEAI_MAX_NUM_SEQS": "0"}, "max_num_seqs"),
    ({"FAKEAI_TIMER_RESOLUTION_MS": "0"}, "timer_resolution_ms"),
    ({"FAKEAI_TIMER_RESOLUTION_MS": "51"}, "timer_resolution_ms"),
    ({"FAKEAI_MAX_REQUEST_BYTES": "10"}, "max_request_bytes"),
    ({"FAKEAI_OUTPUT_LENGTH": "bogus"}, "output_length"),
    ({"FAKEAI_OUTPUT_TOKENS": "0"}, "output_tokens"),
    ({"FAKEAI_OUTPUT_TOKENS_SPREAD": "-1"}, "output_tokens_spread"),
    ({"FAKEAI_DEFAULT_MAX_TOKENS": "0"}, "default_max_tokens"),
    ({"FAKEAI_LOG_LEVEL": "verbose"}, "log_level"),
    ({"FAKEAI_ACCESS_LOG": "maybe"}, "access_log"),
    ({"FAKEAI_PORT": ""}, "port"),  # empty is only "unset" for optional fields
])
def test_invalid_env_value_names_field_and_source(env, field):
    with pytest.raises(ConfigError) as e:
        load_settings(env=env)
    msg = str(e.value)
    assert field in msg
    assert f"env:{env_name(field)}" in msg


def test_invalid_file_value_names_field_and_source(tmp_path):
    path = write_toml(tmp_path / "bad.toml", {"output_length": "bogus"})
    with pytest.raises(ConfigError) as e:
        load_settings(env={}, config_file=path)
    assert "output_length" in str(e.value) and f"file:{path}" in str(e.value)


def test_invalid_cli_value_names_field_and_source():
    with pytest.raises(ConfigError) as e:
        load_settings(cli=cli_values("--max-num-seqs", "zero"), env={})
    assert "max_num_seqs" in str(e.value) and "(cli)" in str(e.value)


def test_unknown_cli_option_is_rejected():
    with pytest.raises(ConfigError, match="no_such_option"):
        load_settings(cli={"no_such_option": "1"}, env={})


def test_uniform_spread_error_names_the_field_and_its_source():
    # output_tokens_spread must be below output_tokens for a uniform length; the
    # error must say which option is wrong and where it came from, like every other.
    env = {"FAKEAI_OUTPUT_LENGTH": "uniform", "FAKEAI_OUTPUT_TOKENS_SPREAD": "200"}
    with pytest.raises(ConfigError) as e:
        load_settings(env=env)
    msg = str(e.value)
    assert "output_tokens_spread" in msg
    assert "env:FAKEAI_OUTPUT_TOKENS_SPREAD" in msg


# --------------------------------------------------------------------------- text forms


@pytest.mark.parametrize("text", ["none", "None", "NULL", "", "  "])
@pytest.mark.parametrize("field", [name for name, f in Settings.model_fields.items()
                                   if type(None) in typing.get_args(f.annotation)])
def test_none_or_empty_env_unsets_an_optional_field(tmp_path, field, text):
    path = write_toml(tmp_path / "c.toml", {field: NON_DEFAULT[field]})
    assert getattr(load_settings(env={}, config_file=path).settings, field) == NON_DEFAULT[field]
    loaded = load_settings(env={env_name(field): text}, config_file=path)
    assert getattr(loaded.settings, field) is None
    assert loaded.sources[field] == f"env:{env_name(field)}"


def test_none_on_the_cli_unsets_an_optional_field(tmp_path):
    path = write_toml(tmp_path / "c.toml", {"ttft_ms": 5.0})
    loaded = load_settings(cli=cli_values("--ttft", "none"), env={}, config_file=path)
    assert loaded.settings.ttft_ms is None and loaded.sources["ttft_ms"] == "cli"


@pytest.mark.parametrize("text, value", [
    ("true", True), ("True", True), ("1", True), ("yes", True), ("on", True),
    ("false", False), ("FALSE", False), ("0", False), ("no", False), ("off", False),
])
@pytest.mark.parametrize("field", [n for n, f in Settings.model_fields.items() if f.annotation is bool])
def test_bool_strings(field, text, value):
    assert getattr(load_settings(env={env_name(field): text}).settings, field) is value


def test_list_field_from_comma_separated_env():
    s = load_settings(env={"FAKEAI_MODELS_FILE": " a.toml, b.yaml,,c.yml ,"}).settings
    assert s.models_file == ["a.toml", "b.yaml", "c.yml"]
    assert load_settings(env={"FAKEAI_MODELS_FILE": ""}).settings.models_file == []
    assert load_settings(env={"FAKEAI_MODELS_FILE": "one.toml"}).settings.models_file == ["one.toml"]


def test_numbers_from_text():
    s = load_settings(env={"FAKEAI_TTFT_MS": "12.5", "FAKEAI_PORT": "0", "FAKEAI_ITL_MS": "0"}).settings
    assert (s.ttft_ms, s.port, s.itl_ms) == (12.5, 0, 0.0)


# --------------------------------------------------------------------------- every field


def test_every_field_has_an_env_var_that_sets_it():
    env = {env_name(name): as_env_text(v) for name, v in NON_DEFAULT.items()}
    assert all(k == "FAKEAI_" + n.upper() for k, n in zip(env, NON_DEFAULT))
    loaded = load_settings(env=env)
    assert loaded.settings.model_dump() == NON_DEFAULT
    assert loaded.sources == {name: f"env:{env_name(name)}" for name in FIELDS}


@pytest.mark.parametrize("command", ["server", "config"])
def test_every_field_has_a_cli_flag(command):
    sub = subparser(command)
    by_dest = {}
    for action in sub._actions:
        by_dest.setdefault(action.dest, []).extend(action.option_strings)
    for name in FIELDS:
        assert name in by_dest, f"no flag for {name}"
        assert flag(name) in by_dest[name], f"{flag(name)} missing: {by_dest[name]}"
        for alias in CLI_ALIASES.get(name, ()):
            assert alias in by_dest[name]
    assert "--ttft" in by_dest["ttft_ms"] and "--itl" in by_dest["itl_ms"]


@pytest.mark.parametrize("command", ["server", "config"])
def test_every_cli_flag_sets_its_field(command):
    argv = [a for name, v in NON_DEFAULT.items() for a in as_argv(name, v)]
    cli = cli_values(*argv, command=command)
    assert set(cli) == set(FIELDS)
    env = {env_name(name): "garbage" for name in FIELDS}  # the CLI wins over every env var
    loaded = load_settings(cli=cli, env=env)
    assert loaded.settings.model_dump() == NON_DEFAULT
    assert set(loaded.sources.values()) == {"cli"}


def test_negative_bool_flags_and_aliases():
    cli = cli_values("--no-access-log", "--no-strict-params", "--ttft", "7", "--itl", "8")
    s = load_settings(cli=cli, env={"FAKEAI_ACCESS_LOG": "1", "FAKEAI_STRICT_PARAMS": "1"}).settings
    assert s.access_log is False and s.strict_params is False
    assert (s.ttft_ms, s.itl_ms) == (7.0, 8.0)


def test_unset_flags_are_not_passed_as_cli_values():
    # otherwise an argparse default would shadow the env and the file
    assert cli_values() == {}
    assert load_settings(cli=cli_values(), env={"FAKEAI_PORT": "1234"}).sources["port"] == "env:FAKEAI_PORT"


def test_every_field_is_in_the_configuration_reference():
    doc = ROOT / "docs" / "configuration.md"
    assert doc.is_file(), "docs/configuration.md (the configuration reference) is missing"
    text = doc.read_text(encoding="utf-8")
    missing = [n for n in FIELDS if f"`{n}`" not in text]
    assert not missing, f"fields missing from docs/configuration.md: {missing}"
    missing_env = [env_name(n) for n in FIELDS if env_name(n) not in text]
    assert not missing_env, f"env vars missing from docs/configuration.md: {missing_env}"
