"""``POST /v1/embeddings`` through the official SDK and raw httpx.

Dimensions come from the catalog, token counts from each model's real tokenizer, and
every body is validated against the OpenAI spec (``CreateEmbeddingResponse`` /
``ErrorResponse``).
"""

from __future__ import annotations

import base64
import json
import time

import numpy as np
import openai
import pytest

from fakeai.engine.tokenizer import get_tokenizer
from fakeai.registry import ModelRegistry
from tests.openapi_spec import spec_available, validate, validate_error
from tests.server import run_server

REGISTRY = ModelRegistry.load()
SMALL = "text-embedding-3-small"
TOK = get_tokenizer(REGISTRY.get(SMALL).tokenizer)
CAT, CAT2, MONEY = "the cat sat on the mat", "a cat sat on a mat", "quarterly revenue grew"
TEXTS = [CAT, CAT2, MONEY]
PATH = "/v1/embeddings"


@pytest.fixture(scope="module")
def http(server):
    with server.http() as h:
        yield h


def check_body(body: dict) -> np.ndarray:
    """Validate a float-format body against the spec; its vectors as an array."""
    if spec_available():
        validate("CreateEmbeddingResponse", body)
    assert body["object"] == "list"
    assert [d["index"] for d in body["data"]] == list(range(len(body["data"])))
    assert all(d["object"] == "embedding" for d in body["data"])
    return np.array([d["embedding"] for d in body["data"]], dtype=np.float32)


def decode_b64(body: dict) -> np.ndarray:
    """A base64 body's vectors; the body, with (up to 8 of) them decoded in place, validated too."""
    vecs = [np.frombuffer(base64.b64decode(d["embedding"]), dtype="<f4") for d in body["data"]]
    sample = [{**d, "embedding": v.tolist()} for d, v in zip(body["data"][:8], vecs)]
    check_body({**body, "data": sample})
    return np.array(vecs)


def post(http, **body) -> dict:
    r = http.post(PATH, json=body)
    assert r.status_code == 200, r.text
    return r.json()


def unit(v: np.ndarray) -> None:
    np.testing.assert_allclose(np.linalg.norm(v, axis=-1), 1.0, atol=1e-5)


def error(http, status: int, param: str | None = None, **body) -> dict:
    r = http.post(PATH, json=body)
    assert r.status_code == status, r.text
    err = r.json()
    validate_error(err)
    if param is not None:
        assert err["error"]["param"] == param, err
    return err["error"]


# -- input forms, usage ---------------------------------------------------------------

@pytest.mark.parametrize("value,texts", [
    (CAT, [CAT]),
    (TEXTS, TEXTS),
    (TOK.encode(CAT), [CAT]),
    ([TOK.encode(t) for t in TEXTS], TEXTS),
])
def test_every_input_form_through_the_sdk(client, value, texts):
    r = client.embeddings.create(model=SMALL, input=value, encoding_format="float")
    assert len(r.data) == len(texts)
    assert [d.index for d in r.data] == list(range(len(texts)))
    v = np.array([d.embedding for d in r.data])
    assert v.shape == (len(texts), 1536)
    unit(v)
    assert r.usage.prompt_tokens == r.usage.total_tokens == sum(TOK.count(t) for t in texts)


def test_token_arrays_embed_their_decoded_text(http):
    as_text = check_body(post(http, model=SMALL, input=TEXTS))
    as_ids = check_body(post(http, model=SMALL, input=[TOK.encode(t) for t in TEXTS]))
    np.testing.assert_array_equal(as_text, as_ids)


def test_usage_counts_token_arrays_by_length(http):
    ids = [[TOK.encode("hello")[0]] * 7, [TOK.encode("world")[0]] * 3]
    body = post(http, model=SMALL, input=ids)
    assert body["usage"] == {"prompt_tokens": 10, "total_tokens": 10}


def test_usage_counts_with_each_models_tokenizer(http):
    text = "Embeddings are counted with the model's own vocabulary: naïve café 東京."
    for model in (SMALL, "nvidia/llama-3.2-nv-embedqa-1b-v2"):
        tok = get_tokenizer(REGISTRY.get(model).tokenizer)
        assert post(http, model=model, input=text)["usage"]["prompt_tokens"] == tok.count(text)


# -- dimensions -----------------------------------------------------------------------

@pytest.mark.parametrize("model,native", [
    ("text-embedding-3-small", 1536), ("text-embedding-3-large", 3072), ("text-embedding-ada-002", 1536),
    ("nvidia/nv-embedqa-e5-v5", 1024), ("nvidia/llama-3.2-nv-embedqa-1b-v2", 2048),
    ("nvidia/NV-Embed-v2", 4096),
])
def test_native_dimensions_come_from_the_catalog(http, model, native):
    assert REGISTRY.get(model).embedding_dimensions == native
    v = check_body(post(http, model=model, input=TEXTS))
    assert v.shape == (3, native)
    unit(v)


@pytest.mark.parametrize("model", ["text-embedding-3-small", "text-embedding-3-large",
                                   "nvidia/llama-3.2-nv-embedqa-1b-v2"])
def test_dimensions_shortens_to_a_renormalized_prefix(client, http, model):
    short = client.embeddings.create(model=model, input=TEXTS, dimensions=256)
    v = np.array([d.embedding for d in short.data], dtype=np.float32)
    assert v.shape == (3, 256)
    unit(v)
    full = check_body(post(http, model=model, input=TEXTS))[:, :256]
    np.testing.assert_allclose(v, full / np.linalg.norm(full, axis=1, keepdims=True), atol=1e-5)
    assert v[0] @ v[1] > v[0] @ v[2]


def test_dimensions_equal_to_native_is_accepted(http):
    assert check_body(post(http, model=SMALL, input=CAT, dimensions=1536)).shape == (1, 1536)


# -- encodings ------------------------------------------------------------------------

def test_base64_is_little_endian_float32_of_the_same_vector(http):
    floats = check_body(post(http, model=SMALL, input=TEXTS, encoding_format="float"))
    b64 = decode_b64(post(http, model=SMALL, input=TEXTS, encoding_format="base64"))
    np.testing.assert_array_equal(floats, b64)
    unit(b64)


def test_sdk_default_base64_decodes_to_the_float_vector(client, http):
    r = client.embeddings.with_raw_response.create(model=SMALL, input=CAT)
    assert json.loads(r.http_request.read())["encoding_format"] == "base64"  # the SDK's default
    sdk = np.array(r.parse().data[0].embedding, dtype=np.float32)
    floats = check_body(post(http, model=SMALL, input=CAT))[0]
    np.testing.assert_array_equal(sdk, floats)
    unit(sdk)


def test_float_values_are_float32_shortest_form(http):
    r = http.post(PATH, json={"model": SMALL, "input": CAT, "encoding_format": "float"})
    first = r.text.split('"embedding":[', 1)[1].split(",", 1)[0]
    assert len(first.lstrip("-")) <= 15  # e.g. 0.012345678, not a 17-digit float64 repr


# -- similarity, determinism -----------------------------------------------------------

def test_lexical_overlap_orders_cosine(client):
    r = client.embeddings.create(model=SMALL, input=TEXTS)
    v = np.array([d.embedding for d in r.data])
    assert v[0] @ v[1] > v[0] @ v[2] + 0.3
    assert v[1] @ v[0] > v[1] @ v[2]


def test_different_models_give_different_vectors(http):
    a = check_body(post(http, model="text-embedding-3-small", input=CAT))[0]
    b = check_body(post(http, model="text-embedding-ada-002", input=CAT))[0]
    assert abs(float(a @ b)) < 0.3


def test_nim_input_type_shifts_the_vector_slightly(http):
    m = "nvidia/nv-embedqa-e5-v5"
    q = check_body(post(http, model=m, input=CAT, input_type="query"))[0]
    p = check_body(post(http, model=m, input=CAT, input_type="passage"))[0]
    assert 0.6 < float(q @ p) < 0.999


@pytest.fixture(scope="module")
def slow_server():
    """A second server process, with a fixed 150 ms prefill time."""
    with run_server("--ttft", "150", "--itl", "0") as s:
        yield s


def test_vectors_survive_a_server_restart(http, slow_server):
    with slow_server.http() as other:
        for model in (SMALL, "nvidia/NV-Embed-v2"):
            a = check_body(post(http, model=model, input=TEXTS))
            b = check_body(post(other, model=model, input=TEXTS))
            np.testing.assert_array_equal(a, b)
            np.testing.assert_array_equal(a, check_body(post(http, model=model, input=TEXTS)))


def test_answer_waits_for_the_modelled_prefill(slow_server):
    client = slow_server.client()
    start = time.monotonic()
    client.embeddings.create(model=SMALL, input=[f"text number {i}" for i in range(256)])
    assert time.monotonic() - start >= 0.15


def test_large_batch_is_answered(http):
    texts = [f"passage {i}: the quick brown fox {i % 13} jumps over the lazy dog" for i in range(2048)]
    body = decode_b64(post(http, model="text-embedding-3-large", input=texts, encoding_format="base64"))
    assert body.shape == (2048, 3072)
    unit(body[::128])


# -- errors ---------------------------------------------------------------------------

INVALID_INPUT = "'$.input' is invalid. Please check the API reference: https://platform.openai.com/docs/api-reference."


@pytest.mark.parametrize("value", ["", [], [""], [CAT, ""], [[]], [[1, 2], []]])
def test_empty_input_is_400(http, value):
    assert error(http, 400, "input", model=SMALL, input=value)["message"] == INVALID_INPUT


def test_more_than_2048_inputs_is_400(http):
    assert error(http, 400, "input", model=SMALL, input=["a"] * 2049)["message"] == INVALID_INPUT
    assert len(post(http, model=SMALL, input=["a"] * 2048, encoding_format="base64")["data"]) == 2048


def test_input_over_the_model_limit_is_400(http):
    limit = REGISTRY.get(SMALL).context_window
    text = " hello" * (limit + 1)
    n = TOK.count(text)
    assert n > limit
    err = error(http, 400, "input", model=SMALL, input=["fine", text])
    assert err["message"].startswith(f"This model's maximum context length is {limit} tokens, however you "
                                     f"requested {n} tokens ({n} in your prompt; 0 for the completion).")
    error(http, 400, "input", model=SMALL, input=[[TOK.encode("a")[0]] * (limit + 1)])
    at_limit = [TOK.encode("a")[0]] * limit
    assert post(http, model=SMALL, input=[at_limit])["usage"]["prompt_tokens"] == limit


def test_nim_truncate_cuts_instead_of_rejecting(http):
    m = "nvidia/nv-embedqa-e5-v5"
    limit = REGISTRY.get(m).context_window
    text = "word " * (limit + 50)
    error(http, 400, "input", model=m, input=text)
    error(http, 400, "input", model=m, input=text, truncate="NONE")
    for side in ("END", "START"):
        body = post(http, model=m, input=text, truncate=side)
        assert body["usage"]["prompt_tokens"] == limit
        unit(check_body(body))


def test_too_many_tokens_per_request_is_400(http):
    text = " hello" * 200  # 200 tokens; 1501 of them exceed 300,000
    err = error(http, 400, None, model=SMALL, input=[text] * 1501)
    assert err["message"] == f"Requested {1501 * 200} tokens, max 300000 tokens per request"
    assert err["code"] == err["type"] == "max_tokens_per_request"


def test_dimensions_errors(http):
    err = error(http, 400, "dimensions", model="text-embedding-ada-002", input=CAT, dimensions=256)
    assert err["message"] == "This model does not support specifying dimensions."
    error(http, 400, "dimensions", model="nvidia/nv-embedqa-e5-v5", input=CAT, dimensions=256)
    assert "1536" in error(http, 400, "dimensions", model=SMALL, input=CAT, dimensions=1537)["message"]
    for bad in (0, -3):
        assert error(http, 400, "dimensions", model=SMALL, input=CAT, dimensions=bad)["code"] == "invalid_value"
    error(http, 400, "dimensions", model=SMALL, input=CAT, dimensions="256")


def test_model_errors(http):
    err = error(http, 400, "model", model="gpt-4o", input=CAT)
    assert err["code"] == "model_not_supported"
    assert error(http, 404, "model", model="no-such-embedder", input=CAT)["code"] == "model_not_found"
    error(http, 400, "model", input=CAT)


@pytest.mark.parametrize("body,param", [
    ({"input": 5}, "input"),
    ({"input": True}, "input"),
    ({"input": [1, "a"]}, "input"),
    ({"input": [[1], ["a"]]}, "input"),
    ({"input": None}, "input"),
    ({"input": CAT, "encoding_format": "int8"}, "encoding_format"),
    ({"input": CAT, "input_type": "document"}, "input_type"),
    ({"input": CAT, "user": 1}, "user"),
])
def test_malformed_fields_are_400(http, body, param):
    assert error(http, 400, None, model=SMALL, **body)["param"].startswith(param)


@pytest.mark.parametrize("ids", [[10**9], [-1], [100256]])  # 100256: a gap in cl100k_base
def test_unknown_token_ids_are_400(http, ids):
    assert str(ids[0]) in error(http, 400, "input", model=SMALL, input=[[1, 2] + ids])["message"]


def test_sdk_raises_bad_request(client):
    with pytest.raises(openai.BadRequestError) as e:
        client.embeddings.create(model=SMALL, input="")
    assert e.value.status_code == 400
