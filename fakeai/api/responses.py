"""``/v1/responses``: create (plain, streamed, background), retrieve (and resume a stream),
delete, cancel, input items, input token counts. Wire format only: the engine decides
content and timing, ``services.responses`` keeps what is stored."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from dataclasses import replace

from fastapi import APIRouter, Request

from ..engine.core import Engine, Generation, GenParams
from ..engine.errors import EngineError
from ..engine.output import Script
from ..schemas.responses import CreateResponseRequest, InputTokensRequest, metadata_problem
from ..security.hooks import admit, settle
from ..services import vector_stores
from ..services.responses import RESPONSE_JOB, UNFINISHED, Live, ResponseStore, page_list
from . import chaos, common, metering
from .body import parse, read_json, request_body
from .common import SSE, dumps, json_response, new_id, now, sse_response
from .errors import APIError
from .listing import cursor, list_object
from .responses_input import prompt_ids
from .responses_output import body, file_search_item, output_items, status_of, usage
from .responses_plan import Plan, prepare, search_message
from .responses_stream import StreamPlan, stream

log = logging.getLogger("fakeai")
router = APIRouter(tags=["responses"])

_REQUEST_SCHEMA = request_body(CreateResponseRequest)
_COUNT_SCHEMA = request_body(InputTokensRequest)
_ID = {"parameters": [{"name": "response_id", "in": "path", "required": True, "schema": {"type": "string"}}]}
_CHECK_EVERY_S = 1.0  # how often a background run looks for a cancel made by another process


def install(app) -> None:
    """Build the store of responses and conversations and register background runs."""
    app.state.responses = ResponseStore(app.state.store)
    app.state.jobs.register(RESPONSE_JOB, lambda id: run_background(app.state, id), lambda doc: True)


def _not_found(id: str) -> APIError:
    return APIError(404, f"Response with id '{id}' not found.", param="response_id")


async def _record(state, id: str) -> dict:
    rec = await state.responses.get(id)
    if rec is None:
        raise _not_found(id)
    return rec


def _check(req: CreateResponseRequest) -> None:
    problem = metadata_problem(req.metadata)
    if problem:
        raise APIError(400, problem, param="metadata", code="invalid_value")
    if req.background and req.store is False:
        raise APIError(400, "Background responses must be stored: 'background' requires 'store' to be true.",
                       param="background")
    if req.stream_options is not None and not req.stream:
        raise APIError(400, "The 'stream_options' parameter is only allowed when 'stream' is enabled.",
                       param="stream_options")


# -- generating ------------------------------------------------------------------------

async def _search(state, plan: Plan) -> dict | None:
    """Run the file_search tool against the vector stores it names (a ``file_search_call``
    item, its results counted as input tokens), or None when the model does not search."""
    tool = plan.file_search
    if tool is None:
        return None
    query = " ".join(plan.user_text.split())[:1000]
    found: list[dict] = []
    for k, vs_id in enumerate(tool["vector_store_ids"]):
        try:
            found += await vector_stores.search(state, vs_id, query, max_num_results=tool["max_num_results"],
                                                filters=tool["filters"], ranking_options=tool["ranking_options"])
        except EngineError as e:  # an unknown store, bad filters: name the tool's field
            where = f"tools[{plan.tools_echo.index(tool)}]"
            e.param = f"{where}.vector_store_ids[{k}]" if e.status == 404 else f"{where}.{e.param or ''}".rstrip(".")
            raise
    found.sort(key=lambda r: -(r.get("score") or 0.0))
    item = file_search_item(query, found[: tool["max_num_results"]])
    if item["results"]:  # the model reads them: they are input tokens
        plan.prompt_ids = prompt_ids(state.engine, plan.model, [*plan.messages, search_message(item["results"])],
                                     [*plan.origins, "tools"], plan.chat_tools)
    return item


def _generate(engine: Engine, req: CreateResponseRequest, raw: dict, plan: Plan, search: dict | None,
              arrival: float | None, script: Script | None = None, request: Request | None = None) -> Generation:
    params = GenParams(max_tokens=req.max_output_tokens, seed=req.seed,
                       seed_material=common.seed_material(raw, req.seed))
    spec = plan.spec(search is not None)
    return engine.generate(plan.model, plan.prompt_tokens, params, plan.user_text, param="input",
                           arrival=arrival, spec=spec if script is None else replace(spec, script=script),
                           endpoint="responses", prompt_ids=plan.prompt_ids,
                           hints=None if request is None else common.route_hints(request))


async def _grow(state, plan: Plan, final: dict) -> None:
    """A finished response's input and output join its conversation."""
    if plan.conversation:
        await state.responses.add_items(plan.conversation, plan.items + final["output"])


@router.post("/v1/responses", openapi_extra=_REQUEST_SCHEMA, **SSE)
async def create_response(request: Request):
    state = request.app.state
    raw = await read_json(request)
    req = parse(CreateResponseRequest, raw, state.settings.strict_params)
    _check(req)
    plan = await prepare(state, req, req.model)
    script = chaos.script_for(request, raw)  # a scenario's answer (not for background runs)
    await admit(request, plan.model, plan.prompt_tokens, req.max_output_tokens, 1, plan.user_text)
    meta = {"id": new_id("resp_"), "created_at": now()}
    if req.background:
        queued = body(plan, req, meta, "queued", [])
        who = dict(zip(("api_key_id", "project_id", "user_id", "batch"), state.usage.identity(request)))
        await state.responses.create_background({"id": meta["id"], "body": queued, "input": plan.items,
                                                 "request": raw, "identity": who})
        live = state.responses.open_live(meta["id"]) if req.stream else None
        state.jobs.start(RESPONSE_JOB, meta["id"])
        if live is not None:
            return sse_response(_follow(state, meta["id"], 0))
        return json_response(dumps(queued))
    engine: Engine = state.engine
    search = await _search(state, plan)
    gen = _generate(engine, req, raw, plan, search, common.arrival(request), script, request)
    output, trace = output_items(gen, plan, search, req.include or [])
    status, incomplete = status_of(gen)
    final = body(plan, req, meta, status, output, usage(gen), incomplete=incomplete)
    await settle(request, gen.prompt_tokens + gen.completion_tokens)

    async def finish() -> dict:
        final["completed_at"] = now()
        if req.store is not False:
            await state.responses.save({"id": final["id"], "body": final, "input": plan.items, "trace": trace})
        await _grow(state, plan, final)
        return final

    if req.stream:
        return sse_response(stream(engine, gen, StreamPlan(final, trace), finish,
                                   metering.on_stream_close(request, gen, req.model)))
    await common.held(request, engine.complete(gen))
    metering.record_generation(request, gen, req.model)
    return json_response(dumps(await finish()))


# -- background runs -------------------------------------------------------------------

async def run_background(state, id: str) -> None:
    """Drive a background response to its end (a job: resumed after a restart)."""
    responses: ResponseStore = state.responses
    live = responses.open_live(id)
    live.task = asyncio.current_task()
    try:
        await _run(state, id, live)
    except asyncio.CancelledError:
        if not live.cancelled:
            raise  # the server is stopping: the job stays, and runs again after a restart
    except Exception as e:  # never retry a run that cannot succeed
        log.exception("background response %s failed", id)
        await _fail(state, live, id, str(e) or "The server had an error while processing your request.")
    live.finish()
    responses.close_live(id)
    await responses.finish_job(id)


def _set_status(status: str, *, only_from: tuple[str, ...] = UNFINISHED):
    def change(doc: dict) -> dict | None:
        if doc["body"]["status"] not in only_from:
            return None
        doc["body"]["status"] = status
        return doc

    return change


async def _fail(state, live: Live, id: str, message: str) -> None:
    def change(doc: dict) -> dict | None:
        if doc["body"]["status"] not in UNFINISHED:
            return None
        doc["body"].update(status="failed", error={"code": "server_error", "message": message})
        doc.pop("request", None)
        return doc

    rec = await state.responses.update(id, change)
    if rec is not None and rec["body"]["status"] == "failed" and not live.events:
        plan = StreamPlan(rec["body"], None)  # what a replay of the failed response shows too
        live.push(plan.prelude() + plan.closing(rec["body"]))


async def _run(state, id: str, live: Live) -> None:
    responses: ResponseStore = state.responses
    rec = await responses.get(id)
    if rec is None or rec["body"]["status"] not in UNFINISHED:
        return
    raw = rec["request"]
    req = CreateResponseRequest.model_validate(raw)
    try:
        plan = await prepare(state, req, req.model)
        search = await _search(state, plan)
        gen = _generate(state.engine, req, raw, plan, search, None)
    except (APIError, EngineError) as e:  # e.g. the previous response was deleted meanwhile
        await _fail(state, live, id, e.message)
        return
    output, trace = output_items(gen, plan, search, req.include or [])
    status, incomplete = status_of(gen)
    final = body(plan, req, {"id": id, "created_at": rec["body"]["created_at"]}, status, output, usage(gen),
                 incomplete=incomplete)
    started = await responses.update(id, _set_status("in_progress"))
    if started is None or started["body"]["status"] != "in_progress":
        return
    sp = StreamPlan(final, trace)
    live.push(sp.prelude())
    engine: Engine = state.engine
    ticker = engine.ticker
    check_at = ticker.time() + _CHECK_EVERY_S
    steps = engine.run(gen)
    try:
        async for start, end in steps:
            live.push(sp.render(start, end))
            if ticker.time() >= check_at:
                check_at = ticker.time() + _CHECK_EVERY_S
                now_rec = await responses.get(id)
                if now_rec is None or now_rec["body"]["status"] != "in_progress":
                    return  # cancelled or deleted by another process
    finally:
        await steps.aclose()
    final["completed_at"] = now()

    applied = False

    def complete(doc: dict) -> dict | None:
        nonlocal applied
        applied = doc["body"]["status"] == "in_progress"  # not cancelled meanwhile
        return {"id": id, "body": final, "input": doc["input"], "trace": trace} if applied else None

    await responses.update(id, complete)
    if not applied:
        return
    live.push(sp.closing(final))
    await _grow(state, plan, final)
    u = final["usage"]  # counted for whoever created it (there is no request any more)
    state.usage.record("completions", req.model, input_tokens=u["input_tokens"], output_tokens=u["output_tokens"],
                       input_cached_tokens=u["input_tokens_details"]["cached_tokens"], service_tier="default",
                       **rec.get("identity", {}))


@router.post("/v1/responses/{response_id}/cancel", openapi_extra=_ID)
async def cancel_response(request: Request):
    state = request.app.state
    id = request.path_params["response_id"]
    rec = await _record(state, id)
    if not rec["body"].get("background"):
        raise APIError(400, "Only responses created with background=true can be cancelled.", param="response_id")
    rec = await state.responses.update(id, _set_status("cancelled"))
    if rec is None:
        raise _not_found(id)
    status = rec["body"]["status"]
    if status != "cancelled":
        raise APIError(400, f"Cannot cancel a response with status '{status}'.", param="response_id")
    live = state.responses.live.get(id)
    if live is not None:
        live.cancel()
    else:
        await state.responses.finish_job(id)
    return json_response(dumps(rec["body"]))


# -- reading back ------------------------------------------------------------------------

def _events(rec: dict) -> list[bytes]:
    return StreamPlan(rec["body"], rec.get("trace")).replay()


async def _follow(state, id: str, start: int) -> AsyncIterator[bytes]:
    """A response's events from index ``start``: a running one's as they come, a finished
    one's replayed from its trace."""
    responses: ResponseStore = state.responses
    pos = start
    while True:
        live = responses.live.get(id)
        if live is not None:
            async for chunk, done in live.follow(pos, idle=_CHECK_EVERY_S):
                pos = done
                if chunk:
                    yield chunk
                elif not live.events:  # nothing yet: is another process running it?
                    rec = await responses.get(id)
                    if rec is None or rec["body"]["status"] not in UNFINISHED:
                        responses.close_live(id)
                        break
            else:
                return
        rec = await responses.get(id)
        if rec is None:
            return
        if rec["body"]["status"] not in UNFINISHED:
            events = _events(rec)[pos:]
            if events:
                yield b"".join(events)
            return
        await asyncio.sleep(_CHECK_EVERY_S / 4)  # run by another process: wait for its end


@router.get("/v1/responses/{response_id}", openapi_extra=_ID, **SSE)
async def retrieve_response(request: Request):
    state = request.app.state
    id = request.path_params["response_id"]
    rec = await _record(state, id)
    q = request.query_params
    if q.get("stream", "false").lower() != "true":
        return json_response(dumps(rec["body"]))
    after = q.get("starting_after")
    try:
        start = 0 if after is None else int(after) + 1
    except ValueError:
        raise APIError(400, f"Invalid 'starting_after': expected an integer, but got {after!r} instead.",
                       param="starting_after", code="invalid_type") from None
    return sse_response(_follow(state, id, max(start, 0)))


@router.delete("/v1/responses/{response_id}", openapi_extra=_ID)
async def delete_response(request: Request):
    id = request.path_params["response_id"]
    if not await request.app.state.responses.delete(id):
        raise _not_found(id)
    return json_response(dumps({"id": id, "object": "response", "deleted": True}))


@router.get("/v1/responses/{response_id}/input_items", openapi_extra=_ID)
async def list_input_items(request: Request):
    rec = await _record(request.app.state, request.path_params["response_id"])
    cur = cursor(request)
    page = page_list(rec.get("input") or [], cur.after, cur.before, cur.limit, cur.order)
    return json_response(dumps(list_object(page)))


@router.post("/v1/responses/input_tokens", openapi_extra=_COUNT_SCHEMA)
async def count_input_tokens(request: Request):
    state = request.app.state
    req = parse(InputTokensRequest, await read_json(request), state.settings.strict_params)
    plan = await prepare(state, req, req.model or "gpt-4o")
    return json_response(dumps({"object": "response.input_tokens", "input_tokens": plan.prompt_tokens}))
