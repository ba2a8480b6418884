"""Batches: the stored ``batch`` document, its lifecycle, and the checks of its input file.

Lifecycle (OpenAI's): ``validating`` -> ``in_progress`` -> ``finalizing`` ->
``completed``; ``failed`` when the input file is unusable (wrong purpose, bad
lines, several endpoints or models, duplicate custom_ids...); ``expired`` when
the 24 h window closes first; ``cancelling`` -> ``cancelled`` on request. The
work itself (running every line through the app, writing the output and error
files, resuming after a restart) is ``batch_runner.BatchRunner``.

Private fields of the stored document (never rendered) start with ``_``:
``_headers`` (the creator's organization and project headers, forwarded with
every line), ``_identity`` (the creator's API key id, project and user: lines run
as that key, by its id, and count for it; the key itself is never stored), ``_outcome`` (the end state being finalized),
``_out_ids`` (the output and error file ids, fixed before they are written so
that a resumed finalization rewrites the same files) and ``_output_ttl_s``.
"""

from __future__ import annotations

import time

import orjson

from ..store import Doc, Page, Store
from . import files
from .errors import ServiceError
from .jsonl import BATCH_ENDPOINTS

KIND = "batch"
CHUNK_KIND = "batch_chunk"  # committed results of batch lines, under their batch
WINDOW_S = 24 * 3600
MAX_LINES = 50_000
MAX_ERRORS = 100
UNFINISHED = frozenset({"validating", "in_progress", "finalizing", "cancelling"})
FORWARDED_HEADERS = ("openai-organization", "openai-project")


def render(doc: Doc) -> Doc:
    return files.public(doc)


def unfinished(doc: Doc) -> bool:
    return doc["status"] in UNFINISHED


def empty_usage() -> Doc:
    return {"input_tokens": 0, "input_tokens_details": {"cached_tokens": 0}, "output_tokens": 0,
            "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": 0}


async def create_batch(store: Store, *, input_file_id: str, endpoint: str, completion_window: str,
                       metadata: dict | None, output_ttl_s: int | None,
                       headers: list[tuple[str, str]], identity: dict) -> Doc:
    """Record a new batch (``validating``); the caller starts its job."""
    if endpoint not in BATCH_ENDPOINTS:
        raise ServiceError(400, f"Invalid value for 'endpoint': {endpoint!r}. Supported values are: "
                           f"{', '.join(BATCH_ENDPOINTS)}.", param="endpoint", code="invalid_value")
    await files.require_file(store, input_file_id, param="input_file_id")
    now = int(time.time())
    doc: Doc = {
        "id": files.new_id("batch_"), "object": "batch", "endpoint": endpoint,
        "input_file_id": input_file_id, "completion_window": completion_window, "status": "validating",
        "created_at": now, "expires_at": now + WINDOW_S,
        "request_counts": {"total": 0, "completed": 0, "failed": 0},
        "metadata": metadata, "usage": empty_usage(),
        "_headers": [list(h) for h in headers], "_identity": identity, "_outcome": None, "_out_ids": None,
        "_output_ttl_s": output_ttl_s,
    }
    await store.put(KIND, doc)
    return render(doc)


async def get_batch(store: Store, batch_id: str) -> Doc:
    doc = await store.get(KIND, batch_id)
    if doc is None:
        raise ServiceError(404, f"No batch found with id '{batch_id}'.", param="batch_id", code="not_found")
    return doc


async def list_batches(store: Store, *, after: str | None, before: str | None, limit: int,
                       order: str) -> Page:
    page = await store.page(KIND, after=after, before=before, limit=limit, order=order)
    page.items = [render(d) for d in page.items]
    return page


async def cancel_batch(store: Store, batch_id: str) -> Doc:
    """``validating``/``in_progress`` -> ``cancelling`` (the runner finishes the job);
    cancelling an already cancelled(-ling) batch returns it; a finished one is a 409."""
    await get_batch(store, batch_id)

    def change(d: Doc) -> Doc | None:
        if d["status"] not in ("validating", "in_progress") or d["_outcome"] is not None:
            return None
        d["status"], d["cancelling_at"] = "cancelling", int(time.time())
        return d

    doc = await store.update(KIND, batch_id, change)
    if doc["status"] not in ("cancelling", "cancelled"):
        raise ServiceError(409, f"Cannot cancel a batch with status '{doc['status']}'.", param="batch_id",
                           code="batch_not_cancellable")
    return render(doc)


# -- validating the input file --------------------------------------------------------
def _error(code: str, message: str, line: int | None = None, param: str | None = None) -> Doc:
    return {"code": code, "message": message, "param": param, "line": line}


async def check_input(store: Store, doc: Doc) -> tuple[list[Doc], int, str | None]:
    """The errors that fail the batch (as OpenAI's ``errors.data``), the number of
    requests and their model. Problems inside a request's body are not errors here:
    the line runs and its 4xx reply lands in the error file."""
    file_id, endpoint = doc["input_file_id"], doc["endpoint"]
    file = await files.get_file(store, file_id)
    if file is None:
        return [_error("file_not_found", f"The input file {file_id} does not exist.", param="input_file_id")], 0, None
    if file["purpose"] != "batch":
        return [_error("invalid_file_purpose", f"The input file {file_id} has purpose '{file['purpose']}'; "
                       "a batch input file must be uploaded with purpose 'batch'.", param="input_file_id")], 0, None
    errors: list[Doc] = []
    seen: set[str] = set()
    model: str | None = None
    model_line = 0
    n = 0
    async for number, raw in files.read_lines(store, file_id):
        n += 1
        problem = _check_line(raw, endpoint)
        if isinstance(problem, dict):
            errors.append({**problem, "line": number})
        else:
            cid, body = problem
            if cid in seen:
                errors.append(_error("duplicate_custom_id", f"The custom_id '{cid}' is a duplicate of another "
                                     "request's. The custom_id parameter must be unique for each request in a "
                                     "batch.", number, "custom_id"))
            seen.add(cid)
            m = body.get("model")
            if isinstance(m, str):
                if model is None:
                    model, model_line = m, number
                elif m != model:
                    errors.append(_error("mismatched_model", f"All requests in a batch must use the same model: "
                                         f"this request uses '{m}', line {model_line} uses '{model}'.",
                                         number, "body.model"))
        if len(errors) >= MAX_ERRORS:
            break
    if n == 0:
        errors.append(_error("empty_file", "The batch input file is empty."))
    elif n > MAX_LINES:
        errors.append(_error("too_many_requests", f"The batch input file has {n} requests; a batch can "
                             f"have at most {MAX_LINES:,}."))
    return errors, n, model


def _check_line(raw: bytes, endpoint: str) -> Doc | tuple[str, dict]:
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return _error("invalid_json_line", "This line is not parseable as valid JSON.")
    if not isinstance(obj, dict):
        return _error("invalid_request", "Each line must be a JSON object.")
    for key, kind, name in (("custom_id", str, "a string"), ("method", str, "a string"),
                            ("url", str, "a string"), ("body", dict, "a JSON object")):
        if key not in obj:
            return _error("missing_required_parameter", f"Missing required parameter: '{key}'.", param=key)
        if not isinstance(obj[key], kind):
            return _error("invalid_request", f"'{key}' must be {name}.", param=key)
    if obj["method"] != "POST":
        return _error("invalid_request", "Only the POST method is supported.", param="method")
    if obj["url"] != endpoint:
        return _error("invalid_url", f"The URL of this request ({obj['url']}) does not match the batch "
                      f"endpoint ({endpoint}).", param="url")
    if obj["body"].get("stream") is True:
        return _error("streaming_unsupported", "Streaming is not supported in batch requests.", param="body.stream")
    return obj["custom_id"], obj["body"]
