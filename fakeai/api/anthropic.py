"""Anthropic's Messages API: ``POST /v1/messages`` and ``POST /v1/messages/count_tokens``.

Wire format only; the request runs through the same engine as a chat completion.
Its blocks become OpenAI-shaped messages for prompt counting (so media and tools
cost what they cost in chat), its tools and ``tool_choice`` a ``ToolPlan``, its
``thinking`` a reasoning effort and ``output_config.format`` a JSON schema. The
answer is an Anthropic message, or its named SSE events (``anthropic_stream``).
Every failure answers in Anthropic's envelope with a ``request-id`` header.
"""

from __future__ import annotations

import base64
import hashlib
import logging
from typing import Any

import orjson
from fastapi import APIRouter, Request
from pydantic import BaseModel, ValidationError
from starlette.responses import Response

from ..engine import jsonschema_gen
from ..engine.compose import EFFORT_SCALE, apply_stop
from ..engine.core import Engine, GenParams
from ..engine.errors import EngineError, ModelNotFound
from ..engine.multimodal import MediaError, family_for_model, part_cost
from ..engine.output import Choice, OutputSpec
from ..engine.prompt import last_user_text
from ..engine.tools import Function, ToolPlan
from ..registry import ModelDef
from ..schemas.anthropic import (
    CountTokensRequest,
    MessagesRequest,
    ThinkingEnabled,
    check_messages,
    check_system,
    check_tools,
)
from ..security.hooks import admit, settle
from . import anthropic_stream, chaos, common, metering
from .body import check_json, request_body
from .common import dumps
from .errors import APIError

log = logging.getLogger("fakeai")
router = APIRouter(tags=["anthropic"])

_ERROR_TYPES = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
                404: "not_found_error", 413: "request_too_large", 429: "rate_limit_error",
                529: "overloaded_error"}
_STOP_REASONS = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use"}
_CHOICES = {"auto": "auto", "any": "required", "none": "none"}  # tool_choice.type -> ToolPlan.choice
_ADAPTIVE = {"low": "low", "medium": "medium", "high": "high", "xhigh": "xhigh", "max": "xhigh"}
_DRAW_MAX = 1.3  # compose.reasoning_length draws 0.7-1.3 x an effort's scaled length
_TYPE_TAGS = frozenset({"str", "int", "float", "bool", "dict", "list", "none"})


# -- envelope ------------------------------------------------------------------------------

class _WithRequestId(Response):
    """Any response (JSON or SSE) with Anthropic's ``request-id`` header added."""

    def __init__(self, inner, request_id: str) -> None:
        self.inner, self.request_id, self.background = inner, request_id.encode(), None

    async def __call__(self, scope, receive, send) -> None:
        async def tagged(message):
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", ()), (b"request-id", self.request_id)]}
            await send(message)

        await self.inner(scope, receive, tagged)


def error_response(status: int, message: str, request_id: str) -> Response:
    kind = _ERROR_TYPES.get(status, "api_error" if status >= 500 else "invalid_request_error")
    body = {"type": "error", "error": {"type": kind, "message": message}, "request_id": request_id}
    return common.json_response(dumps(body), status)


async def _answer(request: Request, handler) -> Response:
    """Run ``handler``; render any failure in Anthropic's envelope."""
    request_id = request.scope.get("state", {}).get("request_id", "")  # set by RequestMeta
    try:
        response = await handler(request)
    except APIError as e:
        if e.answer is not None:  # a scripted fault, answered in Anthropic's envelope by itself
            return e.answer
        response = error_response(e.status, e.message, request_id)
    except ModelNotFound as e:
        response = error_response(404, f"model: {e.model_id}", request_id)
    except EngineError as e:
        response = error_response(e.status, e.message, request_id)
    except Exception:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        response = error_response(500, "Internal server error", request_id)
    return _WithRequestId(response, request_id)


def _loc(loc: tuple) -> str:
    """Pydantic's error location the way Anthropic prints it, without union branch tags."""
    keep = [str(p) for p in loc if isinstance(p, int) or (str(p).isidentifier() and p not in _TYPE_TAGS)]
    return ".".join(keep) or "body"


def _rank(err: dict) -> int:
    t = err["type"]
    return 0 if t == "missing" else 2 if t.endswith("_type") or t == "model_type" else 1


async def _read(request: Request, model: type[BaseModel]) -> Any:
    raw = await request.body()
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as e:
        raise APIError(400, f"There was an error parsing the body: {e}") from None
    if not isinstance(data, dict):
        raise APIError(400, "body: Input should be a valid dictionary")
    check_json(request, data)
    try:
        req = model.model_validate(data)
    except ValidationError as e:
        err = min(e.errors(), key=_rank)
        raise APIError(400, f"{_loc(tuple(err['loc']))}: {err['msg']}") from None
    if request.app.state.settings.strict_params and req.model_extra:
        raise APIError(400, f"{next(iter(req.model_extra))}: Extra inputs are not permitted")
    return req


# -- request -> engine ---------------------------------------------------------------------

def _claude(engine: Engine, model_id: str) -> ModelDef:
    """A model the Messages API serves: the catalog's Claude models (provider anthropic), and any
    other name with --allow-any-model. Another provider's catalog model is not found here."""
    model = engine.model(model_id)
    if model.provider != "anthropic" and engine.registry.get(model_id) is not None:
        raise ModelNotFound(model_id)
    return model


def _media(block: dict) -> dict:
    """An image or binary document block as the chat content part that costs the same."""
    src = block["source"]
    if block["type"] == "image":
        url = f"data:{src['media_type']};base64,{src['data']}" if src["type"] == "base64" else src["url"]
        return {"type": "image_url", "image_url": {"url": url}}
    if src["type"] == "base64":
        return {"type": "file", "file": {"file_data": f"data:application/pdf;base64,{src['data']}"}}
    return {"type": "file", "file": {"file_id": src["url"]}}  # never fetched: the default page count


def _part(block: dict, where: str, parts: list, media: list) -> None:
    """Append the chat parts of a text, image or document block (``where`` is its location)."""
    kind = block["type"]
    if kind == "text":
        parts.append({"type": "text", "text": block["text"]})
        return
    src = block["source"]
    if kind == "document":
        for key in ("title", "context"):
            if isinstance(block.get(key), str):
                parts.append({"type": "text", "text": block[key]})
        if src["type"] in ("text", "content"):
            inner = src.get("data", src.get("content"))
            if isinstance(inner, str):
                parts.append({"type": "text", "text": inner})
            else:
                for k, b in enumerate(inner):
                    _part(b, f"{where}.document.source.content.content.{k}", parts, media)
            return
    part = _media(block)
    parts.append(part)
    media.append((f"{where}.{kind}.source", part))


def to_chat(system: str | list | None, messages: list[dict]) -> tuple[list[dict], list[tuple[str, dict]]]:
    """Anthropic's system and messages as OpenAI-shaped chat messages: text and media parts,
    ``tool_use`` as assistant ``tool_calls``, each ``tool_result`` as a ``tool`` message.
    Also returns each media part with its Anthropic location, to name a bad one."""
    out: list[dict] = []
    media: list[tuple[str, dict]] = []
    if system:
        text = system if isinstance(system, str) else "\n".join(b["text"] for b in system)
        out.append({"role": "system", "content": text})
    for i, msg in enumerate(messages):
        role, content = msg["role"], msg["content"]
        if isinstance(content, str):
            out.append({"role": role, "content": content})
            continue
        parts: list[dict] = []
        calls: list[dict] = []
        for j, block in enumerate(content):
            where, kind = f"messages.{i}.content.{j}", block["type"]
            if kind == "tool_result":
                inner, result = block.get("content"), []
                for k, b in enumerate(inner if isinstance(inner, list) else ()):
                    _part(b, f"{where}.tool_result.content.{k}", result, media)
                out.append({"role": "tool", "tool_call_id": block["tool_use_id"],
                            "content": result if isinstance(inner, list) else inner or ""})
            elif kind == "tool_use":
                calls.append({"id": block["id"], "type": "function",
                              "function": {"name": block["name"], "arguments": dumps(block["input"]).decode()}})
            elif kind not in ("thinking", "redacted_thinking"):  # earlier turns' thinking is not input
                _part(block, where, parts, media)
        if parts or calls:
            out.append({"role": role, "content": parts or None} | ({"tool_calls": calls} if calls else {}))
    return out, media


def _functions(tools: list | None) -> tuple[Function, ...]:
    fns = []
    for k, tool in enumerate(tools or ()):
        if tool.get("type") not in (None, "custom"):
            continue  # Anthropic's own tools are accepted and never called
        schema, strict = tool["input_schema"], bool(tool.get("strict"))
        try:
            jsonschema_gen.check_schema(schema, strict=strict, name=tool["name"], kind="function")
        except jsonschema_gen.SchemaError as e:
            raise APIError(400, f"tools.{k}.custom.input_schema: {e}") from None
        fns.append(Function(tool["name"], tool.get("description") or "", schema, strict))
    return tuple(fns)


def _count(engine: Engine, model: ModelDef, messages: list[dict], media: list, fns: tuple) -> list[int]:
    tools = [{"type": "function", "function": {"name": f.name, "description": f.description,
                                                "parameters": f.parameters}} for f in fns]
    try:
        return engine.chat_prompt(model, messages, tools or None)
    except MediaError:
        family = family_for_model(model.parent or model.id)
        for where, part in media:  # name the bad block by its Anthropic location
            try:
                part_cost(part, family, param=where)
            except MediaError as e:
                what = "image" if part["type"] == "image_url" else "document"
                raise APIError(400, f"{where}: Could not process {what}: {e.message}") from None
        raise


def _prepare(engine: Engine, req: CountTokensRequest) -> tuple[ModelDef, list[dict], tuple, list[int]]:
    """Validate the conversation and tools; return the model, chat messages, functions and input token ids."""
    problem = check_system(req.system) or check_messages(req.messages) or check_tools(req.tools)
    if problem:
        raise APIError(400, f"{problem[0]}: {problem[1]}")
    model = _claude(engine, req.model)
    messages, media = to_chat(req.system, req.messages)
    fns = _functions(req.tools)
    return model, messages, fns, _count(engine, model, messages, media, fns)


def _tool_plan(req: MessagesRequest, fns: tuple[Function, ...]) -> ToolPlan | None:
    tc = req.tool_choice
    if tc is not None and tc.type != "none" and not req.tools:
        raise APIError(400, "tool_choice: tool_choice may only be specified while providing tools")
    if not fns:
        return None
    choice = "auto" if tc is None else _CHOICES.get(tc.type) or tc.name
    if tc is not None and tc.type == "tool" and tc.name not in {f.name for f in fns}:
        raise APIError(400, f"tool_choice.tool.name: Tool '{tc.name}' not found in provided tools")
    last = req.messages[-1]
    after = last["role"] == "user" and isinstance(last["content"], list) and any(
        b["type"] == "tool_result" for b in last["content"])
    return ToolPlan(fns, choice, parallel=not getattr(tc, "disable_parallel_tool_use", None), after_result=after)


def budget_effort(budget: int, medium: int) -> str:
    """The effort whose reasoning length comes closest to ``budget`` without ever exceeding it
    (a length is drawn up to 1.3 x the effort's scaled length); "minimal" when none fits."""
    fits = [(scale, e) for e, scale in EFFORT_SCALE.items() if scale > 0 and int(scale * medium * _DRAW_MAX) <= budget]
    return max(fits)[1] if fits else "minimal"


def _effort(req: MessagesRequest, model: ModelDef, medium: int) -> str:
    """The reasoning effort of ``thinking`` ("none" unless thinking is on), with Anthropic's 400s."""
    t = req.thinking
    if t is None or t.type == "disabled":
        return "none"
    if not model.capabilities.reasoning:
        raise APIError(400, f"thinking: `{model.id}` does not support thinking.")
    if req.tool_choice is not None and req.tool_choice.type in ("any", "tool"):
        raise APIError(400, "Thinking may not be enabled when tool_choice forces tool use.")
    if req.temperature is not None and req.temperature != 1:
        raise APIError(400, "temperature: `temperature` may only be set to 1 when thinking is enabled.")
    if req.top_k is not None:
        raise APIError(400, "top_k: `top_k` must be unset when thinking is enabled.")
    if req.top_p is not None and req.top_p < 0.95:
        raise APIError(400, "top_p: `top_p` must be unset or >= 0.95 when thinking is enabled.")
    if isinstance(t, ThinkingEnabled):
        if t.budget_tokens >= req.max_tokens:
            raise APIError(400, "max_tokens: `max_tokens` must be greater than `thinking.budget_tokens`.")
        return budget_effort(t.budget_tokens, medium)
    return _ADAPTIVE[(req.output_config and req.output_config.effort) or "medium"]


def _json_schema(req: MessagesRequest) -> dict | None:
    fmt = req.output_config.format if req.output_config else None
    if fmt is None:
        return None
    if fmt.get("type") != "json_schema":
        raise APIError(400, "output_config.format.type: Input should be 'json_schema'")
    if not isinstance(fmt.get("schema"), dict):
        raise APIError(400, "output_config.format.schema: Field required")
    try:
        jsonschema_gen.check_schema(fmt["schema"], name="output_config.format")
    except jsonschema_gen.SchemaError as e:
        raise APIError(400, f"output_config.format.schema: {e}") from None
    return fmt["schema"]


def _check_limits(req: MessagesRequest, model: ModelDef, prompt_tokens: int) -> None:
    window = model.context_window
    if req.max_tokens > model.max_output_tokens:
        raise APIError(400, f"max_tokens: {req.max_tokens} > {model.max_output_tokens}, which is the maximum "
                            f"allowed number of output tokens for {model.id}")
    if prompt_tokens > window:
        raise APIError(400, f"prompt is too long: {prompt_tokens} tokens > {window} maximum")
    if prompt_tokens + req.max_tokens > window:
        raise APIError(400, f"input length and `max_tokens` exceed context limit: {prompt_tokens} + "
                            f"{req.max_tokens} > {window}, decrease input length or `max_tokens` and try again")


def _stop_at(choice: Choice, stops: list[str] | None) -> str | None:
    """Cut the text at the earliest of ``stops``; return the sequence that matched."""
    text = choice.text
    hits = [(pos, s) for s in stops or () if (pos := text.find(s)) >= 0]
    if not hits:
        return None
    seq = min(hits)[1]
    apply_stop(choice, (seq,))
    return seq


def _signature(model_id: str, thinking: str) -> str:
    digest = hashlib.blake2b(thinking.encode(), digest_size=64, key=model_id.encode()[:64]).digest()
    return base64.b64encode(b"\x12" + digest).decode()


# -- routes --------------------------------------------------------------------------------

@router.post("/v1/messages", openapi_extra=request_body(MessagesRequest), **common.SSE)
async def create_message(request: Request):
    return await _answer(request, _create_message)


@router.post("/v1/messages/count_tokens", openapi_extra=request_body(CountTokensRequest))
async def count_tokens(request: Request):
    return await _answer(request, _count_tokens)


async def _count_tokens(request: Request) -> Response:
    req = await _read(request, CountTokensRequest)
    *_, ids = _prepare(request.app.state.engine, req)
    return common.json_response(dumps({"input_tokens": len(ids)}))


async def _create_message(request: Request) -> Response:
    state = request.app.state
    engine: Engine = state.engine
    req: MessagesRequest = await _read(request, MessagesRequest)
    if any(not s.strip() for s in req.stop_sequences or ()):
        raise APIError(400, "stop_sequences: each stop sequence must contain non-whitespace")
    model, messages, fns, prompt_ids = _prepare(engine, req)
    prompt_tokens = len(prompt_ids)
    spec = OutputSpec(tools=_tool_plan(req, fns), json_schema=_json_schema(req),
                      reasoning_effort=_effort(req, model, state.settings.reasoning_tokens))
    _check_limits(req, model, prompt_tokens)
    spec = chaos.scripted(request, req, spec)
    prompt = last_user_text(messages)
    await admit(request, model, prompt_tokens, req.max_tokens, 1, prompt)
    gen = engine.generate(model, prompt_tokens, GenParams(max_tokens=req.max_tokens), prompt,
                          arrival=common.arrival(request), spec=spec, endpoint="anthropic",
                          prompt_ids=prompt_ids, hints=common.route_hints(request))
    await settle(request, gen.prompt_tokens + gen.completion_tokens)
    choice = gen.choices[0]
    seq = _stop_at(choice, req.stop_sequences)
    meta = {
        "id": common.new_id("msg_01"),
        "model": model.id,
        "stop_reason": "stop_sequence" if seq is not None else "refusal" if choice.refusal
        else _STOP_REASONS[choice.finish_reason],
        "stop_sequence": seq,
        "signature": _signature(model.id, choice.reasoning_text) if choice.reasoning else "",
        "omit_thinking": getattr(req.thinking, "display", None) == "omitted",
    }
    if req.stream:
        return common.sse_response(anthropic_stream.stream(engine, gen, meta,
                                                           metering.on_stream_close(request, gen, model.id)))
    await common.held(request, engine.complete(gen))
    metering.record_generation(request, gen, model.id)
    return common.json_response(render_message(choice, anthropic_stream.usage(gen), meta))


def _input(arguments: str) -> dict:
    """A tool call's input object (``{}`` when max_tokens cut its JSON short)."""
    try:
        value = orjson.loads(arguments)
    except orjson.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}


def render_message(c: Choice, usage: dict, meta: dict) -> bytes:
    content: list[dict] = []
    if c.reasoning:
        content.append({"type": "thinking", "thinking": "" if meta["omit_thinking"] else c.reasoning_text,
                        "signature": meta["signature"]})
    for call in c.tool_calls:
        content.append({"type": "tool_use", "id": anthropic_stream.tool_use_id(call.id), "name": call.name,
                        "input": _input(call.arguments)})
    if not c.tool_calls and len(c.ids) > c.reasoning:
        content.append({"type": "text", "text": c.text})
    return dumps({
        "id": meta["id"], "type": "message", "role": "assistant", "model": meta["model"], "content": content,
        "stop_reason": meta["stop_reason"], "stop_sequence": meta["stop_sequence"], "usage": usage,
    })
