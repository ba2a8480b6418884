"""``POST /v1/embeddings``: wire format only; the vectors come from ``fakeai.engine.embeddings``."""

from __future__ import annotations

import asyncio
import base64
from dataclasses import dataclass

import orjson
from fastapi import APIRouter, Request

from ..lazy import lazy_import

from ..engine.core import Engine
from ..engine.tokenizer import Tokenizer
from ..registry import ModelDef
from ..schemas.embeddings import EmbeddingRequest
from ..security.hooks import admit
from . import common, metering
from .body import parse, read_json, request_body
from .errors import APIError

np = lazy_import("numpy")
vectors = lazy_import("fakeai.engine.embeddings")

router = APIRouter(tags=["embeddings"])

_REQUEST_SCHEMA = request_body(EmbeddingRequest)

MAX_INPUTS = 2048
MAX_REQUEST_TOKENS = 300_000  # summed over all inputs, as OpenAI enforces
_OFFLOAD_CHARS = 100_000  # batches bigger than this are embedded on a worker thread
_INVALID_INPUT = ("'$.input' is invalid. Please check the API reference: "
                  "https://platform.openai.com/docs/api-reference.")
_NIM_PREFIX = {"query": "query: ", "passage": "passage: "}


@dataclass(frozen=True, slots=True)
class _Job:
    """One validated request: what to embed and how to render it."""

    model: ModelDef
    tok: Tokenizer
    inputs: list[str | list[int]]
    dimensions: int | None
    base64: bool
    prefix: str
    truncate: str | None
    name: str


@router.post("/v1/embeddings", openapi_extra=_REQUEST_SCHEMA)
async def create_embedding(request: Request):
    app = request.app.state
    raw = await read_json(request)
    req = parse(EmbeddingRequest, raw, app.settings.strict_params)
    engine: Engine = app.engine
    model = engine.model(req.model)
    if not model.capabilities.embeddings or not model.embedding_dimensions:
        raise APIError(400, "You are not allowed to generate embeddings from this model", param="model",
                       code="model_not_supported")
    job = _Job(model, engine.tokenizer(model), _inputs(req.input), _dimensions(req.dimensions, model),
               req.encoding_format == "base64", _NIM_PREFIX.get(req.input_type or "", ""),
               None if req.truncate == "NONE" else req.truncate, req.model)
    size = sum(len(x) for x in job.inputs)
    if size > _OFFLOAD_CHARS:  # keep the event loop (and every stream's timing) responsive
        prompt_tokens, body = await asyncio.get_running_loop().run_in_executor(None, _run, job)
    else:
        prompt_tokens, body = _run(job)
    await admit(request, model, prompt_tokens, 0)
    await engine.simulate(model, prompt_tokens, arrival=common.arrival(request), endpoint="embeddings",
                          hints=common.route_hints(request))
    metering.record(request, "embeddings", req.model, input_tokens=prompt_tokens)
    return common.json_response(body)


def _inputs(value) -> list[str | list[int]]:
    """The request's inputs as a list of strings and token arrays; OpenAI's 400s for
    empty and oversized input."""
    if isinstance(value, str):
        items: list = [value]
    elif value and isinstance(value[0], int):
        items = [value]
    else:
        items = value
    if not items or len(items) > MAX_INPUTS or any(len(x) == 0 for x in items):
        raise APIError(400, _INVALID_INPUT, param="input")
    return items


def _dimensions(dimensions: int | None, model: ModelDef) -> int | None:
    if dimensions is None:
        return None
    if not vectors.supports_dimensions(model):
        raise APIError(400, "This model does not support specifying dimensions.", param="dimensions")
    native = model.embedding_dimensions
    if dimensions > native:
        raise APIError(400, f"Invalid 'dimensions': this model's embeddings have at most {native} "
                       f"dimensions, but {dimensions} were requested.", param="dimensions")
    return None if dimensions == native else dimensions


def _text(job: _Job, i: int, item: str | list[int]) -> tuple[str, int]:
    """(text to embed, billed tokens) of one input; an over-long input is cut to the
    model's limit if the request asked to truncate (NIM), else rejected."""
    tok, limit = job.tok, job.model.context_window
    ids = None if isinstance(item, str) else item
    n = tok.count(item) if ids is None else len(ids)
    if n > limit:
        if not job.truncate:
            raise APIError(400, f"This model's maximum context length is {limit} tokens, however you "
                           f"requested {n} tokens ({n} in your prompt; 0 for the completion). Please "
                           "reduce your prompt; or completion length.", param="input")
        ids = tok.encode(item) if ids is None else ids
        ids, n = (ids[:limit] if job.truncate == "END" else ids[-limit:]), limit
    if ids is None:
        return item, n
    try:
        return tok.decode(ids), n
    except (KeyError, OverflowError, ValueError):
        bad = next(t for t in ids if not tok.is_token(t))
        raise APIError(400, f"Invalid 'input[{i}]': {bad} is not a token id of this model's "
                       "vocabulary.", param="input") from None


def _run(job: _Job) -> tuple[int, bytes]:
    """Tokenize, check, embed and render: (prompt tokens, response body)."""
    texts, total = [], 0
    for i, item in enumerate(job.inputs):
        text, n = _text(job, i, item)
        texts.append(job.prefix + text)
        total += n
    if total > MAX_REQUEST_TOKENS:
        raise APIError(400, f"Requested {total} tokens, max {MAX_REQUEST_TOKENS} tokens per request",
                       type="max_tokens_per_request", code="max_tokens_per_request")
    v = vectors.embed(texts, job.model.embedding_dimensions, vectors.model_seed(job.model.id),
                      job.dimensions)
    return total, _render(v, job, total)


def _render(v: np.ndarray, job: _Job, tokens: int) -> bytes:
    if job.base64:
        rows = [base64.b64encode(r.astype("<f4", copy=False).tobytes()).decode("ascii") for r in v]
    else:
        rows = list(v)  # float32 rows: orjson writes each value's shortest float32 form
    data = [{"object": "embedding", "index": i, "embedding": r} for i, r in enumerate(rows)]
    return orjson.dumps({"object": "list", "data": data, "model": job.name,
                         "usage": {"prompt_tokens": tokens, "total_tokens": tokens}},
                        option=orjson.OPT_SERIALIZE_NUMPY)
