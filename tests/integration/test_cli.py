"""The ``fakeai`` command line, run as a real subprocess: help, models, config, bad options."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from fakeai import __version__
from fakeai.config import Settings, env_name
from fakeai.registry import ModelRegistry

FIELDS = list(Settings.model_fields)

from tests.data import ACME_CATALOG


def fakeai(*args: str, env: dict[str, str] | None = None, timeout: float = 30) -> subprocess.CompletedProcess:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("FAKEAI_")}
    full_env["COLUMNS"] = "200"  # keep argparse from wrapping help lines mid-way
    full_env.update(env or {})
    return subprocess.run([sys.executable, "-m", "fakeai", *args], env=full_env, capture_output=True,
                          text=True, timeout=timeout)


def assert_clean_failure(r: subprocess.CompletedProcess, *words: str) -> None:
    """Non-zero exit, a message naming the problem, and no Python traceback."""
    assert r.returncode != 0, r.stdout + r.stderr
    out = r.stdout + r.stderr
    assert "Traceback" not in out, out
    for w in words:
        assert w in out, f"{w!r} not in: {out}"


@pytest.fixture
def acme_catalog(tmp_path):
    p = tmp_path / "acme.toml"
    p.write_text(ACME_CATALOG, encoding="utf-8")
    return str(p)


# --------------------------------------------------------------------------- help


def test_top_level_help():
    r = fakeai("--help")
    assert r.returncode == 0, r.stderr
    for word in ("server", "models", "config", "FAKEAI_"):
        assert word in r.stdout


def test_version():
    r = fakeai("--version")
    assert r.returncode == 0
    assert __version__ in r.stdout


def test_no_command_prints_usage_and_fails():
    r = fakeai()
    assert r.returncode != 0
    assert "usage:" in (r.stdout + r.stderr)


@pytest.mark.parametrize("command", ["server", "config"])
def test_help_lists_every_setting_flag_and_env_var(command):
    r = fakeai(command, "--help")
    assert r.returncode == 0, r.stderr
    for name in FIELDS:
        assert "--" + name.replace("_", "-") in r.stdout, name
        assert env_name(name) in r.stdout, name
    assert "--ttft" in r.stdout and "--itl" in r.stdout and "--config" in r.stdout


def test_models_help():
    r = fakeai("models", "--help")
    assert r.returncode == 0, r.stderr
    assert "--json" in r.stdout and "--models-file" in r.stdout


# --------------------------------------------------------------------------- models


def test_models_lists_the_catalog():
    r = fakeai("models")
    assert r.returncode == 0, r.stderr
    ids = [line.split()[0] for line in r.stdout.splitlines()[1:] if line.strip()]
    for model_id in ("gpt-4o", "openai/gpt-oss-120b", "meta-llama/Llama-3.1-8B-Instruct"):
        assert model_id in ids
    assert ids == [m.id for m in ModelRegistry.load().list()]


def test_models_json():
    r = fakeai("models", "--json")
    assert r.returncode == 0, r.stderr
    rows = json.loads(r.stdout)
    assert len(rows) == len({row["id"] for row in rows}) > 20
    for row in rows:
        assert isinstance(row["id"], str) and row["id"]
        caps = row["capabilities"]
        assert isinstance(caps, dict) and caps and all(isinstance(v, bool) for v in caps.values())
    by_id = {row["id"]: row for row in rows}
    assert by_id["gpt-4o"]["capabilities"]["chat"] is True
    assert by_id["text-embedding-3-small"]["capabilities"]["chat"] is False


@pytest.mark.parametrize("how", ["flag", "env", "config"])
def test_models_includes_an_extra_catalog(acme_catalog, tmp_path, how):
    if how == "flag":
        r = fakeai("models", "--json", "--models-file", acme_catalog)
    elif how == "env":
        r = fakeai("models", "--json", env={"FAKEAI_MODELS_FILE": acme_catalog})
    else:
        cfg = tmp_path / "cfg.toml"
        cfg.write_text(f"models_file = [{json.dumps(acme_catalog)}]\n", encoding="utf-8")
        r = fakeai("models", "--json", "--config", str(cfg))
    assert r.returncode == 0, r.stderr
    by_id = {row["id"]: row for row in json.loads(r.stdout)}
    acme = by_id["acme/test-1"]
    assert (acme["owned_by"], acme["context_window"], acme["max_output_tokens"]) == ("acme", 4096, 64)
    assert acme["capabilities"]["chat"] and not acme["capabilities"]["vision"]
    assert "gpt-4o" in by_id


# --------------------------------------------------------------------------- config


def test_config_json_shows_value_and_source_of_each(tmp_path):
    cfg = tmp_path / "fakeai.toml"
    cfg.write_text('ttft_ms = 111\nport = 8111\noutput_length = "fixed"\nitl_ms = 1\n', encoding="utf-8")
    env = {"FAKEAI_PORT": "8222", "FAKEAI_ITL_MS": "7", "FAKEAI_ALLOW_ANY_MODEL": "true"}
    r = fakeai("config", "--json", "--config", str(cfg), "--port", "8333", "--jitter", "0.1", env=env)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert set(out) == set(FIELDS)
    src = f"file:{cfg}"
    assert out["ttft_ms"] == {"value": 111.0, "source": src}
    assert out["output_length"] == {"value": "fixed", "source": src}
    assert out["itl_ms"] == {"value": 7.0, "source": "env:FAKEAI_ITL_MS"}
    assert out["allow_any_model"] == {"value": True, "source": "env:FAKEAI_ALLOW_ANY_MODEL"}
    assert out["port"] == {"value": 8333, "source": "cli"}
    assert out["jitter"] == {"value": 0.1, "source": "cli"}
    assert out["max_num_seqs"] == {"value": Settings().max_num_seqs, "source": "default"}
    set_here = {"ttft_ms", "output_length", "itl_ms", "allow_any_model", "port", "jitter"}
    assert {k for k, v in out.items() if v["source"] == "default"} == set(FIELDS) - set_here


def test_config_file_from_fakeai_config_env(tmp_path):
    cfg = tmp_path / "fakeai.yaml"
    cfg.write_text("max_num_seqs: 9\nstrict_params: true\n", encoding="utf-8")
    r = fakeai("config", "--json", env={"FAKEAI_CONFIG": str(cfg)})
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["max_num_seqs"] == {"value": 9, "source": f"file:{cfg}"}
    assert out["strict_params"] == {"value": True, "source": f"file:{cfg}"}


def test_config_text_output_lists_every_field_with_its_source():
    r = fakeai("config", "--itl", "4", env={"FAKEAI_TTFT_MS": "none"})
    assert r.returncode == 0, r.stderr
    rows = {line.split()[0]: line.split() for line in r.stdout.splitlines() if line.strip()}
    assert set(rows) == set(FIELDS)
    assert rows["itl_ms"][1:] == ["4.0", "cli"]
    assert rows["ttft_ms"][1:] == ["null", "env:FAKEAI_TTFT_MS"]
    assert rows["port"][-1] == "default"


# --------------------------------------------------------------------------- bad options

# case -> (argv, env, words the message must contain); "{d}" is a scratch directory.
# "--port 0" keeps a server that wrongly starts anyway off the well-known port.
BAD = {
    "port-flag": (["server", "--port", "abc"], {}, ["port", "(cli)"]),
    "port-env": (["server"], {"FAKEAI_PORT": "abc"}, ["port", "env:FAKEAI_PORT"]),
    "ttft-env": (["server", "--port", "0"], {"FAKEAI_TTFT_MS": "-1"}, ["ttft_ms", "env:FAKEAI_TTFT_MS"]),
    "jitter-dist-choice": (["server", "--port", "0", "--jitter-dist", "cauchy"], {}, ["--jitter-dist", "cauchy"]),
    "timer-range": (["server", "--port", "0", "--timer-resolution-ms", "500"], {}, ["timer_resolution_ms"]),
    "missing-config": (["server", "--port", "0", "--config", "{d}/nope.toml"], {}, ["{d}/nope.toml"]),
    "unknown-config-key": (["server", "--port", "0", "--config", "{d}/typo.toml"], {}, ["ttft", "{d}/typo.toml"]),
    "uniform-spread": (["server", "--port", "0", "--output-length", "uniform", "--output-tokens", "10",
                        "--output-tokens-spread", "20"], {}, ["output_tokens_spread"]),
    "server-missing-models-file": (["server", "--port", "0", "--models-file", "{d}/none.toml"], {},
                                   ["{d}/none.toml"]),
    "models-missing-models-file": (["models", "--models-file", "{d}/none.toml"], {}, ["{d}/none.toml"]),
    "server-invalid-models-file": (["server", "--port", "0", "--models-file", "{d}/bad-catalog.toml"], {},
                                   ["{d}/bad-catalog.toml", "provider"]),
    "models-invalid-models-file": (["models"], {"FAKEAI_MODELS_FILE": "{d}/bad-catalog.toml"},
                                   ["{d}/bad-catalog.toml", "provider"]),
}


@pytest.fixture(scope="module")
def bad_runs(tmp_path_factory):
    """Run every BAD case at once (each is a separate process; they only need to fail)."""
    d = tmp_path_factory.mktemp("bad")
    (d / "typo.toml").write_text("ttft = 200\n", encoding="utf-8")  # the option is ttft_ms
    (d / "bad-catalog.toml").write_text(ACME_CATALOG.replace('provider = "meta"', 'provider = "acme"'),
                                        encoding="utf-8")
    fill = lambda x: x.replace("{d}", str(d))  # noqa: E731
    procs = {}
    for case, (argv, env, _) in BAD.items():
        full_env = {k: v for k, v in os.environ.items() if not k.startswith("FAKEAI_")}
        full_env.update({k: fill(v) for k, v in env.items()})
        procs[case] = subprocess.Popen([sys.executable, "-m", "fakeai", *map(fill, argv)], env=full_env,
                                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    results = {}
    for case, p in procs.items():
        try:
            out, err = p.communicate(timeout=20)
        except subprocess.TimeoutExpired:  # it started serving: a failure, reported by the test
            p.kill()
            out, err = p.communicate()
            err += "\n(still running after 20 s: the bad option was accepted)"
        words = [fill(w) for w in BAD[case][2]]
        results[case] = (subprocess.CompletedProcess(p.args, p.returncode, out, err), words)
    return results


@pytest.mark.parametrize("case", list(BAD))
def test_a_bad_option_fails_cleanly_naming_it(bad_runs, case):
    result, words = bad_runs[case]
    assert_clean_failure(result, *words)


# --------------------------------------------------------------------------- console script


def test_console_script():
    exe = shutil.which("fakeai")
    if exe is None:
        pytest.skip("the fakeai console script is not installed (pip install -e .)")
    r = subprocess.run([exe, "--help"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0 and "server" in r.stdout
    r = subprocess.run([exe, "config", "--json", "--port", "8123"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0
    assert json.loads(r.stdout)["port"] == {"value": 8123, "source": "cli"}
