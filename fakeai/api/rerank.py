"""Reranking in three dialects, one scorer (``fakeai.engine.embeddings.rank``):

* ``POST /v1/ranking``: NVIDIA NIM. ``{model, query: {text}, passages: [{text}], truncate}``
  -> ``{"rankings": [{"index", "logit"}]}``; errors ``{"object": "error", "message", ...}``.
* ``POST /v1/rerank`` and ``/v2/rerank``: Cohere, also Jina and vLLM. ``{model, query, documents,
  top_n, return_documents}`` -> ``{"id", "results": [{"index", "relevance_score", "document"?}],
  "meta", "model", "usage"}``; errors ``{"id", "message"}``.
* ``POST /rerank``: Hugging Face TEI. ``{query, texts, raw_scores, return_text, truncate}``
  -> ``[{"index", "score", "text"?}]``; errors ``{"error", "error_type"}``.

Each dialect sorts by score, highest first, and answers after ``engine.simulate`` has
held the request for the prefill of every query-passage pair.
"""

from __future__ import annotations

import asyncio
import math
import uuid

import orjson
from fastapi import APIRouter, Request
from starlette.responses import Response

from ..engine.core import Engine
from ..engine.errors import EngineError
from ..lazy import lazy_import
from ..registry import ModelDef
from ..schemas.rerank import RankingRequest, RerankRequest, TEIRerankRequest, TextItem
from . import common
from .body import parse, read_json, request_body
from .errors import APIError

np = lazy_import("numpy")
vectors = lazy_import("fakeai.engine.embeddings")

router = APIRouter(tags=["rerank"])

MAX_DOCUMENTS = 10_000
_OFFLOAD_CHARS = 100_000  # requests bigger than this are scored on a worker thread
_NIM_FIELDS = "model, query, passages, truncate"


def _json(body, status: int = 200) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")


def _order(scores: np.ndarray) -> list[int]:
    """Indexes by descending score; ties keep input order."""
    return np.argsort(-scores, kind="stable").tolist()


def _rerank_model(engine: Engine, model_id: str | None, strict: bool) -> ModelDef:
    """The named rerank model; without a name (or, unless ``strict``, a name that is not
    a reranker) the catalog's first rerank model."""
    if model_id is not None:
        try:
            model = engine.model(model_id)
        except EngineError:
            if strict:
                raise
        else:
            if model.capabilities.rerank:
                return model
            if strict:
                raise APIError(400, f"Model '{model_id}' does not support reranking.", param="model",
                               code="model_not_supported")
    model = next((m for m in engine.registry if m.capabilities.rerank), None)
    if model is None:
        raise APIError(400, "No reranking model is configured.", param="model")
    return model


async def _score(request: Request, model: ModelDef, query: str, passages: list[str],
                 truncate: str | None, max_passage_tokens: int | None = None) -> vectors.Ranking:
    """Score (on a worker thread if large), then hold the request for its modelled time."""
    engine: Engine = request.app.state.engine
    args = (engine.tokenizer(model), model, query, passages, truncate, max_passage_tokens)
    if len(query) + sum(map(len, passages)) > _OFFLOAD_CHARS:
        ranking = await asyncio.get_running_loop().run_in_executor(None, vectors.rank, *args)
    else:
        ranking = vectors.rank(*args)
    await engine.simulate(model, ranking.prompt_tokens, arrival=common.arrival(request), endpoint="rerank",
                          hints=common.route_hints(request))
    return ranking


def _check_count(n: int, empty: str) -> None:
    """No passages, or too many. (The error's ``type`` is TEI's ``error_type``.)"""
    if n == 0:
        raise APIError(400, empty, type="empty")
    if n > MAX_DOCUMENTS:
        raise APIError(400, f"invalid request: {n} documents; the maximum is {MAX_DOCUMENTS} per request.",
                       type="validation")


# -- NVIDIA NIM ----------------------------------------------------------------------

_NIM_REQUEST = request_body(RankingRequest)


@router.post("/v1/ranking", openapi_extra=_NIM_REQUEST)
async def nim_ranking(request: Request):
    try:
        return await _nim(request)
    except (APIError, EngineError) as e:
        return _json({"object": "error", "message": e.message, "detail": {},
                      "type": "invalid_request_error"}, e.status)


def _unknown_field(req: RankingRequest) -> str | None:
    """NIM rejects fields it does not know, at any level."""
    extras = [(req.model_extra or {}).keys(), (req.query.model_extra or {}).keys()]
    extras += [(p.model_extra or {}).keys() for p in req.passages]
    return next((name for keys in extras for name in keys), None)


async def _nim(request: Request) -> Response:
    req = parse(RankingRequest, await read_json(request), strict=False)
    name = _unknown_field(req)
    if name is not None:
        raise APIError(400, f"{name}: unknown field, expected one of {_NIM_FIELDS}")
    model = _rerank_model(request.app.state.engine, req.model, strict=True)
    _check_count(len(req.passages), "passages: must contain at least one passage")
    texts = [p.text for p in req.passages]
    ranking = await _score(request, model, req.query.text, texts, None if req.truncate == "NONE" else "END")
    logits = ranking.logits
    return _json({"rankings": [{"index": i, "logit": float(logits[i])} for i in _order(logits)]})


# -- Cohere / Jina / vLLM --------------------------------------------------------------

_COHERE_REQUEST = request_body(RerankRequest)


@router.post("/v1/rerank", openapi_extra=_COHERE_REQUEST)
async def rerank_v1(request: Request):
    return await _cohere(request, version="1")


@router.post("/v2/rerank", openapi_extra=_COHERE_REQUEST)
async def rerank_v2(request: Request):
    return await _cohere(request, version="2")


async def _cohere(request: Request, version: str) -> Response:
    rid = str(uuid.uuid4())
    try:
        return await _cohere_rank(request, version, rid)
    except (APIError, EngineError) as e:
        return _json({"id": rid, "message": e.message}, e.status)


async def _cohere_rank(request: Request, version: str, rid: str) -> Response:
    app = request.app.state
    req = parse(RerankRequest, await read_json(request), app.settings.strict_params)
    model = _rerank_model(app.engine, req.model, strict=True)
    _check_count(len(req.documents), "invalid request: list of documents must not be empty")
    texts = [d.text if isinstance(d, TextItem) else d for d in req.documents]
    ranking = await _score(request, model, req.query, texts, "END", req.max_tokens_per_doc)
    scores = vectors.sigmoid(ranking.logits)
    order = _order(scores)[: req.top_n]
    with_docs = req.return_documents if req.return_documents is not None else version == "1"
    results = []
    for i in order:
        item = {"index": i, "relevance_score": float(scores[i])}
        if with_docs:
            item["document"] = {"text": texts[i]}
        results.append(item)
    return _json({
        "id": rid,
        "model": req.model or model.id,
        "results": results,
        "meta": {"api_version": {"version": version},
                 "billed_units": {"search_units": math.ceil(len(texts) / 100)}},
        "usage": {"total_tokens": ranking.prompt_tokens},
    })


# -- Hugging Face TEI ------------------------------------------------------------------

_TEI_REQUEST = request_body(TEIRerankRequest)


@router.post("/rerank", openapi_extra=_TEI_REQUEST)
async def tei_rerank(request: Request):
    try:
        return await _tei(request)
    except vectors.InputTooLong as e:
        return _json({"error": f"Input validation error: `inputs` must have less than {e.limit} tokens. "
                               f"Given: {e.tokens}", "error_type": "validation"}, 413)
    except (APIError, EngineError) as e:
        # TEI: an empty batch is 400 "empty", an oversized one 413 "validation", and a body
        # that does not deserialize 422
        status = {"empty": 400, "validation": 413}.get(e.type, 422)
        return _json({"error": e.message, "error_type": "empty" if status == 400 else "validation"}, status)


async def _tei(request: Request) -> Response:
    app = request.app.state
    req = parse(TEIRerankRequest, await read_json(request), strict=False)
    model = _rerank_model(app.engine, req.model, strict=False)
    _check_count(len(req.texts), "`texts` cannot be empty")
    truncate = ("START" if req.truncation_direction.lower() == "left" else "END") if req.truncate else None
    ranking = await _score(request, model, req.query, req.texts, truncate)
    scores = ranking.logits if req.raw_scores else vectors.sigmoid(ranking.logits)
    out = []
    for i in _order(scores):
        item = {"index": i, "score": float(scores[i])}
        if req.return_text:
            item["text"] = req.texts[i]
        out.append(item)
    return _json(out)
