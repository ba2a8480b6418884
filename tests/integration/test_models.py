"""/v1/models through the SDK, validated against the official spec."""

from __future__ import annotations

import openai
import pytest

from fakeai.registry import ModelRegistry
from tests.openapi_spec import validate, validate_error


def test_list_models_matches_catalog(server, client):
    with server.http() as http:
        body = http.get("/v1/models").json()
    validate("ListModelsResponse", body)
    ids = [m["id"] for m in body["data"]]
    assert ids == [m.id for m in ModelRegistry.load().list()]
    for needed in ("gpt-4o", "openai/gpt-oss-120b", "meta-llama/Llama-3.1-8B-Instruct",
                   "claude-3-5-sonnet-20241022", "deepseek-ai/DeepSeek-R1", "Qwen/Qwen3-8B",
                   "nvidia/llama-3.2-nv-rerankqa-1b-v2", "text-embedding-3-small", "whisper-1"):
        assert needed in ids
    for m in body["data"]:
        validate("Model", m)
    assert [m.id for m in client.models.list()] == ids


@pytest.mark.parametrize("model_id", ["gpt-4o", "openai/gpt-oss-120b", "meta-llama/Llama-3.3-70B-Instruct"])
def test_retrieve_model_with_slashes(server, client, model_id):
    m = client.models.retrieve(model_id)
    assert m.id == model_id and m.object == "model"
    with server.http() as http:
        validate("Model", http.get(f"/v1/models/{model_id}").json())


def test_capabilities_route_is_reachable(server):
    with server.http() as http:
        caps = http.get("/v1/models/openai/gpt-oss-120b/capabilities").json()
        assert caps["id"] == "openai/gpt-oss-120b"
        assert caps["capabilities"]["reasoning"] is True and caps["capabilities"]["chat"] is True
        assert caps["tokenizer"] == "o200k_harmony" and caps["context_window"] > 0
        emb = http.get("/v1/models/text-embedding-3-large/capabilities").json()
        assert emb["capabilities"]["embeddings"] is True and emb["capabilities"]["chat"] is False
        r = http.get("/v1/models/nope-model/capabilities")
        assert r.status_code == 404


def test_unknown_model_is_404(server, client):
    with pytest.raises(openai.NotFoundError) as e:
        client.models.retrieve("gpt-9-ultra")
    assert e.value.code == "model_not_found"
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="gpt-9-ultra", messages=[{"role": "user", "content": "x"}])
    with server.http() as http:
        r = http.get("/v1/models/gpt-9-ultra")
    assert r.status_code == 404
    validate_error(r.json())
    assert r.json()["error"]["param"] == "model"


def test_chat_only_on_models_that_chat(client):
    with pytest.raises(openai.BadRequestError) as e:
        client.chat.completions.create(model="text-embedding-3-small", messages=[{"role": "user", "content": "x"}])
    assert e.value.code == "model_not_supported"


def test_health(server):
    with server.http() as http:
        h = http.get("/health").json()
        assert h["status"] == "healthy" and h["ready"] is True
        assert http.get("/health/ready").status_code == 200
        assert http.get("/docs").status_code == 200
        doc = http.get("/openapi.json").json()
    assert "/v1/chat/completions" in doc["paths"]
    ref = doc["paths"]["/v1/chat/completions"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert ref["$ref"].split("/")[-1] in doc["components"]["schemas"]
