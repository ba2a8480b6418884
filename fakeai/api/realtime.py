"""``/v1/realtime`` (WebSocket): OpenAI's GA Realtime event protocol.

Connect with ``?model=<a realtime model>``; the first event is ``session.created``.
An unknown or non-realtime model gets an ``error`` event and the socket closes
(1008). Client events are JSON text frames; each is handled in arrival order. A
malformed one (bad JSON, unknown ``type``, missing or invalid fields, bad base64)
gets an ``error`` event (``invalid_request_error``, carrying the client's
``event_id``) and the session goes on: nothing a client sends drops the socket
(a frame over uvicorn's 16 MiB limit is refused by the WebSocket layer itself).

Responses run as tasks beside the receive loop, so audio can be appended and a
response cancelled while another streams. One response at a time writes to the
default conversation; out-of-band ones (``conversation: "none"``) run in
parallel. Writes to the socket are serialized; a slow reader slows the writers
(the transport's back-pressure), so memory stays bounded.

The session logic lives in ``fakeai.services.realtime*`` and ``fakeai.services.vad``;
responses in ``realtime_response``, input audio in ``realtime_input``. docs/realtime.md.
"""

from __future__ import annotations

import asyncio
import logging
import os

import orjson
from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from ..engine.errors import EngineError
from ..lazy import lazy_import
from ..services.errors import ServiceError
from .realtime_input import Input
from .realtime_response import ResponseRun, Running

router = APIRouter(tags=["realtime"])
_GONE = (WebSocketDisconnect, RuntimeError, OSError)  # what sending to a closed socket raises
log = logging.getLogger("fakeai")
realtime = lazy_import("fakeai.services.realtime")
conversation = lazy_import("fakeai.services.realtime_conversation")
multimodal = lazy_import("fakeai.engine.multimodal")
stt = lazy_import("fakeai.services.transcribe")


class Session:
    """One connection's state and its event writer."""

    def __init__(self, ws: WebSocket, model, model_id: str) -> None:
        self.ws, self.app = ws, ws.app.state
        self.engine = self.app.engine
        self.model = model
        self.family = multimodal.family_for_model(model.parent or model.id)
        self.tok = self.engine.tokenizer(model)
        self.id, self.expires_at = realtime.new_id("sess_"), realtime.expires_at()
        self.cfg = realtime.Config(model_id)
        self.conv = conversation.Conversation()
        self.input = Input(self)
        self.responses: dict[str, Running] = {}
        self.active: Running | None = None   # the response writing to the default conversation
        self.spoke = False                   # the assistant has produced audio (the voice is fixed)
        self.closed = False
        self.subject = (ws.scope.get("state") or {}).get("api_key_id") or "anonymous"
        self._tasks: set[asyncio.Task] = set()
        self._lock = asyncio.Lock()
        self._prefix = realtime.new_id("event_")[:16]
        self._n = 0

    # -- writing ---------------------------------------------------------------------
    def ev(self, kind: str, **fields) -> dict:
        """A server event with a fresh, session-unique ``event_id``."""
        self._n += 1
        return {"event_id": f"{self._prefix}{self._n:x}", "type": kind, **fields}

    async def send(self, event: dict) -> None:
        await self.send_many((event,))

    async def send_many(self, events) -> None:
        if self.closed:
            return
        frames = [orjson.dumps(e).decode() for e in events]
        async with self._lock:
            for frame in frames:
                if self.closed:
                    return
                try:
                    await self.ws.send_text(frame)
                except _GONE:  # the client is gone: the receive loop ends the session
                    self.closed = True
                    return

    async def error(self, message: str, param: str | None = None, code: str | None = None,
                    type: str = "invalid_request_error", event_id: str | None = None) -> None:
        await self.send(self.ev("error", error={"type": type, "code": code, "message": message, "param": param,
                                                "event_id": event_id}))

    # -- items, tasks, responses ---------------------------------------------------------
    def new_item(self, fields: dict, item_id: str | None = None):
        return conversation.Item({"id": item_id or realtime.new_id("item_"), "object": "realtime.item", **fields})

    def spawn(self, coro) -> asyncio.Task:
        task = asyncio.get_running_loop().create_task(self._guard(coro))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _guard(self, coro) -> None:
        try:
            await coro
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("realtime session %s: background task failed", self.id)
            await self.error("The server had an error while processing your request.", type="server_error")

    def start_response(self, params, event_id: str | None, items=None) -> Running:
        ctx = list(self.conv.items) if items is None else items
        limit = self.model.context_window - self.model.max_output_tokens
        prompt = self.conv.prompt(self.tok, self.family, params.instructions, params.tools.chat(), ctx, limit,
                                  params.truncation)
        r = Running(realtime.new_id("resp_"), params, prompt, event_id, asyncio.get_running_loop().time())
        self.responses[r.id] = r
        if r.default_conversation:
            self.active = r
        r.task = self.spawn(ResponseRun(self, r).run())
        r.task.add_done_callback(lambda _: self._finished(r))
        return r

    def _finished(self, r: Running) -> None:
        self.responses.pop(r.id, None)
        if self.active is r:
            self.active = None

    async def settle_cancelled(self) -> None:
        """Let a response being cancelled finish (its closing events go out first)."""
        r = self.active
        if r is not None and r.cancel_reason is not None and r.task is not None:
            await asyncio.wait((r.task,))

    def cancel(self, r: Running, reason: str) -> None:
        if r.task is not None and not r.task.done() and r.cancel_reason is None:
            r.cancel_reason = reason
            r.task.cancel()

    def record(self, usage: dict) -> None:
        d_in, d_out = usage["input_token_details"], usage["output_token_details"]
        self.app.usage.record("completions", self.cfg.model, request=self.ws, input_tokens=usage["input_tokens"],
                              input_cached_tokens=d_in["cached_tokens"], input_audio_tokens=d_in["audio_tokens"],
                              output_tokens=usage["output_tokens"], output_audio_tokens=d_out["audio_tokens"],
                              service_tier="default")

    def transcriber(self, model_id: str) -> bool:
        m = self.engine.registry.resolve(model_id)
        return m is not None and m.capabilities.transcription

    async def close(self) -> None:
        self.closed = True
        tasks = list(self._tasks)
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # -- client events -------------------------------------------------------------------------
    async def handle(self, frame: str | bytes) -> None:
        try:
            ev = orjson.loads(frame)
        except orjson.JSONDecodeError:
            return await self.error("We could not parse the JSON body of your request. (HINT: This likely means "
                                    "you aren't using your HTTP library correctly. The OpenAI API expects a JSON "
                                    "payload, but what was sent was not valid JSON.)", code="invalid_json")
        if not isinstance(ev, dict):
            return await self.error("Invalid event: expected a JSON object.", code="invalid_event")
        event_id = ev.get("event_id") if isinstance(ev.get("event_id"), str) else None
        kind = ev.get("type")
        try:
            if kind is None:
                raise realtime.bad("The 'type' field is missing.", "type", "invalid_event")
            handler = _HANDLERS.get(kind) if isinstance(kind, str) else None
            if handler is None:
                listed = ", ".join(f"'{k}'" for k in _HANDLERS)
                raise realtime.bad(f"Invalid value: '{kind}'. Supported values are: {listed}.", "type")
            await handler(self, ev)
        except ServiceError as e:
            await self.error(e.message, e.param, e.code, e.type, event_id)
        except EngineError as e:
            await self.error(e.message, e.param, e.code, event_id=event_id)
        except Exception:
            log.exception("realtime session %s: %s failed", self.id, kind)
            await self.error("The server had an error while processing your request.", type="server_error",
                             event_id=event_id)


# -- handlers ------------------------------------------------------------------------------------

def _require(ev: dict, key: str):
    if key not in ev:
        raise realtime.bad(f"Missing required parameter: '{key}'.", key, "missing_required_parameter")
    return ev[key]


async def _session_update(s: Session, ev: dict) -> None:
    s.cfg.update(_require(ev, "session"), s.spoke, s.transcriber)
    s.input.configure()
    await s.send(s.ev("session.updated", session=s.cfg.wire(s.id, s.expires_at)))


async def _append(s: Session, ev: dict) -> None:
    await s.input.append(ev)


async def _commit(s: Session, ev: dict) -> None:
    await s.input.commit()


async def _clear(s: Session, ev: dict) -> None:
    await s.input.clear()


def _client_item(s: Session, raw, where: str):
    item = conversation.client_item(raw, s.cfg.input_format, s.family, where)
    w = item.wire
    if w["type"] == "function_call_output" and not s.conv.has_call(w["call_id"]):
        raise realtime.bad(f"Tool call ID '{w['call_id']}' not found in conversation.", f"{where}.call_id",
                           "invalid_tool_call_id")
    for j, (data, fmt) in item.audio.items():  # what the model hears in it
        item.heard = " ".join(filter(None, (item.heard, stt.transcript(data, item.seconds[j]).text)))
    return item


async def _item_create(s: Session, ev: dict) -> None:
    item = _client_item(s, _require(ev, "item"), "item")
    prev = s.conv.add(item, ev.get("previous_item_id"))
    w = item.wire
    await s.send_many([s.ev("conversation.item.added", previous_item_id=prev, item=w),
                       s.ev("conversation.item.created", previous_item_id=prev, item=w),
                       s.ev("conversation.item.done", previous_item_id=prev, item=w)])


async def _item_retrieve(s: Session, ev: dict) -> None:
    item = s.conv.get(_require(ev, "item_id"))
    await s.send(s.ev("conversation.item.retrieved", item=item.retrieved()))


async def _item_delete(s: Session, ev: dict) -> None:
    item_id = _require(ev, "item_id")
    s.conv.delete(item_id)
    await s.send(s.ev("conversation.item.deleted", item_id=item_id))


async def _item_truncate(s: Session, ev: dict) -> None:
    for key in ("item_id", "content_index", "audio_end_ms"):
        _require(ev, key)
    s.conv.truncate(ev["item_id"], ev["content_index"], ev["audio_end_ms"])
    await s.send(s.ev("conversation.item.truncated", item_id=ev["item_id"], content_index=ev["content_index"],
                      audio_end_ms=ev["audio_end_ms"]))


async def _response_create(s: Session, ev: dict) -> None:
    params = realtime.response_params(s.cfg, ev.get("response"))
    await s.settle_cancelled()
    if params.conversation == "auto" and s.active is not None:
        raise realtime.bad(f"Conversation already has an active response in progress: {s.active.id}. Wait until "
                           "the response is finished before creating a new one.", None,
                           "conversation_already_has_active_response")
    items = None
    if params.input is not None:
        items = []
        for i, raw in enumerate(params.input):
            where = f"response.input[{i}]"
            if isinstance(raw, dict) and raw.get("type") == "item_reference":
                items.append(s.conv.get(raw.get("id"), f"{where}.id"))
            else:
                items.append(_client_item(s, raw, where))
    s.start_response(params, ev.get("event_id") if isinstance(ev.get("event_id"), str) else None, items)


async def _response_cancel(s: Session, ev: dict) -> None:
    rid = ev.get("response_id")
    r = s.responses.get(rid) if rid is not None else s.active
    if r is None or r.task is None or r.task.done() or r.cancel_reason is not None:
        raise realtime.bad("Cancellation failed: no active response found.", "response_id" if rid else None,
                           "response_cancel_not_active")
    s.cancel(r, "client_cancelled")


async def _output_clear(s: Session, ev: dict) -> None:
    raise realtime.bad("output_audio_buffer.clear is only supported for WebRTC and SIP connections; over a "
                       "WebSocket, send response.cancel and conversation.item.truncate.", "type",
                       "unsupported_event")


_HANDLERS = {
    "session.update": _session_update, "input_audio_buffer.append": _append, "input_audio_buffer.commit": _commit,
    "input_audio_buffer.clear": _clear, "conversation.item.create": _item_create,
    "conversation.item.retrieve": _item_retrieve, "conversation.item.delete": _item_delete,
    "conversation.item.truncate": _item_truncate, "response.create": _response_create,
    "response.cancel": _response_cancel, "output_audio_buffer.clear": _output_clear,
}


# -- the route --------------------------------------------------------------------------------------

def _model(engine, model_id: str | None):
    """The session's model, or (message, code) saying why there is none."""
    if not model_id:
        return None, ("Missing required parameter: 'model'. Connect to /v1/realtime?model=gpt-realtime.",
                      "missing_required_parameter")
    try:
        model = engine.model(model_id)
    except EngineError:
        return None, (f"The model `{model_id}` does not exist or you do not have access to it.", "model_not_found")
    if not model.capabilities.realtime:
        return None, (f"The model `{model_id}` does not support the Realtime API.", "model_not_supported")
    return model, None


@router.websocket("/v1/realtime")
async def realtime_session(websocket: WebSocket):
    offered = websocket.scope.get("subprotocols") or []
    await websocket.accept(subprotocol="realtime" if "realtime" in offered else None)
    model_id = websocket.query_params.get("model")
    model, problem = _model(websocket.app.state.engine, model_id)
    if model is None:
        body = {"event_id": "event_" + os.urandom(10).hex(), "type": "error",
                "error": {"type": "invalid_request_error", "code": problem[1], "message": problem[0],
                          "param": "model", "event_id": None}}
        try:
            await websocket.send_text(orjson.dumps(body).decode())
            await websocket.close(code=1008, reason=problem[1])
        except _GONE:
            pass
        return
    session = Session(websocket, model, model_id)
    try:
        await session.send(session.ev("session.created", session=session.cfg.wire(session.id, session.expires_at)))
        while not session.closed:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                break
            frame = message.get("text")
            await session.handle(frame if frame is not None else message.get("bytes") or b"")
    finally:
        await session.close()
