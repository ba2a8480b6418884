"""Fault injection and scripted scenarios on the wire (docs/faults-and-scenarios.md).

``FaultGate`` (pure ASGI, ahead of the routes) decides each ``/v1`` request's
fault: the ``X-FakeAI-Fault`` header (400 when it does not parse), else a draw
from the fault rules (``app.state.faults``). An error or a timeout is answered
at once, in the envelope of the API called (Anthropic's on ``/v1/messages``);
a stream fault waits for the response and changes it if it is an event stream
(``chaos_stream``). With no header, no rule and no scenario that answers with a
stream fault, a request costs one header scan.

The generating routes call ``scripted(request, raw, spec)`` once they have
parsed the body: it folds the first matching scenario's output (and a
``truncate-tools`` fault) into the ``OutputSpec``, so the engine tokenizes and
paces scripted text like its own. A scenario's error or timeout is raised as
``Injected``, whose ``FaultAnswer`` replaces the route's response.
"""

from __future__ import annotations

import asyncio
import logging
import math
from dataclasses import replace

import orjson
from starlette.responses import Response

from ..engine.errors import ContextLengthExceeded, EngineError
from ..engine.output import OutputSpec, Script
from ..security.fault_spec import Fault, parse_fault
from ..security.faults import Faults, endpoint_of
from .chaos_stream import StreamCut, StreamFaults, mute_cut_logs
from .errors import APIError, error_body, send_json

log = logging.getLogger("fakeai")

HEADER = b"x-fakeai-fault"
_SERVER = "The server had an error while processing your request. Sorry about that!"
_DEFAULT_WINDOW = 128000
# fault -> (status, OpenAI message, type, code) and Anthropic's (status, type, message)
_OPENAI = {
    "429": (429, None, "requests", "rate_limit_exceeded"),
    "500": (500, _SERVER, "server_error", None),
    "502": (502, "Bad gateway.", "server_error", None),
    "503": (503, "The server is overloaded or not ready yet.", "server_error", None),
    "504": (504, "Gateway timeout.", "server_error", None),
    "overloaded": (503, "Our servers are currently overloaded. Please try again later.",
                   "service_unavailable_error", "server_is_overloaded"),
    "invalid_api_key": (401, ("Incorrect API key provided. You can find your API key at "
                              "https://platform.openai.com/account/api-keys."), "invalid_request_error",
                        "invalid_api_key"),
    "context_length_exceeded": (400, None, "invalid_request_error", "context_length_exceeded"),
}
_ANTHROPIC = {
    "429": (429, "rate_limit_error", "This request would exceed your organization's rate limit. Please try again later."),
    "500": (500, "api_error", "Internal server error"),
    "502": (502, "api_error", "Bad gateway"),
    "503": (503, "api_error", "Service unavailable"),
    "504": (504, "timeout_error", "Request timed out"),
    "overloaded": (529, "overloaded_error", "Overloaded"),
    "invalid_api_key": (401, "authentication_error", "invalid x-api-key"),
    "context_length_exceeded": (400, "invalid_request_error", None),
}
_PARAM = {"/v1/completions": "prompt", "/v1/embeddings": "input", "/v1/responses": "input"}


class Injected(APIError):
    """A scenario's error or timeout: the route stops, and ``answer`` answers the fault instead."""

    def __init__(self, answer: FaultAnswer) -> None:
        super().__init__(500, "injected fault")
        self.answer = answer


class FaultAnswer(Response):
    """The response to a request a scenario answers with an error or a timeout (a
    ``Response``, so that any route may return it)."""

    def __init__(self, fault: Fault, faults: Faults, engine) -> None:
        self.fault, self.faults, self.engine = fault, faults, engine
        self.status_code, self.background = 500, None  # (the fault's own status is sent)

    async def __call__(self, scope, receive, send) -> None:
        self.faults.record(self.fault.kinds(), endpoint_of(scope["path"]))
        await run_fault(self.fault, scope, None, send, self.engine)


def dialect(path: str) -> str:
    if path.startswith("/v1/messages"):
        return "anthropic"
    return "responses" if path.startswith("/v1/responses") else "openai"


def _duration(seconds: float) -> str:
    return f"{round(seconds * 1000)}ms" if seconds < 1 else f"{seconds:g}s"


async def _model_and_size(receive) -> tuple[object, int]:
    """The model a request body names, and the body's size (0 when it cannot be read)."""
    chunks = []
    try:
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return None, 0
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
    except APIError:  # over the body limit
        return None, 0
    body = b"".join(chunks)
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None, len(body)
    return data.get("model") if isinstance(data, dict) else None, len(body)


def _context_message(engine, path: str, model, size: int, anthropic: bool) -> tuple[str, str]:
    """(message, param) of a context_length_exceeded for ``model``, a body of ``size`` bytes."""
    try:
        window = engine.model(model).context_window
    except (TypeError, AttributeError, EngineError):  # no model named, or an unknown one
        window = _DEFAULT_WINDOW
    tokens = window + max(1, size // 4)
    if anthropic:
        return f"prompt is too long: {tokens} tokens > {window} maximum", ""
    param = _PARAM.get(path, "messages")
    return ContextLengthExceeded(window, tokens, None, param).message, param


def error_reply(fault: Fault, scope, engine, model=None, size: int = 0) -> tuple[int, list, bytes]:
    """(status, headers, body) of an error fault in the envelope of the API called."""
    path = scope["path"]
    kind = fault.error
    retry = fault.retry_after if fault.retry_after is not None else (1.0 if kind == "429" else None)
    headers = [(b"content-type", b"application/json")]
    if retry is not None:
        headers += [(b"retry-after", str(max(1, math.ceil(retry))).encode()),
                    (b"retry-after-ms", str(max(1, round(retry * 1000))).encode())]
    if dialect(path) == "anthropic":
        status, etype, message = _ANTHROPIC[kind]
        if kind == "context_length_exceeded":
            message = _context_message(engine, path, model, size, True)[0]
        rid = scope.get("state", {}).get("request_id", "")
        headers.append((b"request-id", rid.encode()))
        out = {"type": "error", "error": {"type": etype, "message": message}, "request_id": rid}
    else:
        status, message, etype, code = _OPENAI[kind]
        param = None
        if kind == "429":
            message = (f"Rate limit reached for requests. Please try again in {_duration(retry)}. "
                       "Visit https://platform.openai.com/account/rate-limits to learn more.")
        elif kind == "context_length_exceeded":
            message, param = _context_message(engine, path, model, size, False)
        out = {"error": {"message": message, "type": etype, "param": param, "code": code}}
    data = orjson.dumps(out)
    headers.append((b"content-length", str(len(data)).encode()))
    return status, headers, data


async def _until_disconnect(receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


async def run_fault(fault: Fault, scope, receive, send, engine) -> None:
    """Answer an error fault, or hold a timeout and then drop the connection."""
    if fault.timeout is not None:
        try:  # hold, unless the client gives up first
            if receive is None:
                await asyncio.sleep(fault.timeout)
            else:
                await asyncio.wait_for(_until_disconnect(receive), fault.timeout)
                return
        except TimeoutError:
            pass
        # ASGI cannot close before a status line: a gateway timeout whose body never comes
        await send({"type": "http.response.start", "status": 504,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", b"64")]})
        mute_cut_logs()
        raise StreamCut()
    model, size = scope.get("state", {}).get("fault_request", (None, 0))
    if fault.error == "context_length_exceeded" and receive is not None:
        model, size = await _model_and_size(receive)
    status, headers, data = error_reply(fault, scope, engine, model, size)
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": data})


async def _reject(scope, send, message: str) -> None:
    """400 for an X-FakeAI-Fault header that does not parse."""
    if dialect(scope["path"]) == "anthropic":
        body = orjson.dumps({"type": "error", "error": {"type": "invalid_request_error", "message": message}})
    else:
        body = error_body(message, param="X-FakeAI-Fault", code="invalid_fault")
    await send_json(send, 400, body)


class FaultGate:
    def __init__(self, app, faults: Faults, scenarios, engine) -> None:
        self.app, self.faults, self.scenarios, self.engine = app, faults, scenarios, engine
        mute_cut_logs()

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or not scope["path"].startswith("/v1/"):
            return await self.app(scope, receive, send)
        faults = self.faults
        fault = None
        if faults.header_allowed:
            for k, v in scope["headers"]:
                if k == HEADER:
                    try:
                        fault = parse_fault(v.decode("latin-1"))
                    except ValueError as e:
                        return await _reject(scope, send, f"Invalid X-FakeAI-Fault header: {e}.")
                    break
        if fault is None and faults.active:
            fault = faults.draw(endpoint_of(scope["path"]))
        if fault is None and not (self.scenarios.active and self.scenarios.may_stream_fault()):
            return await self.app(scope, receive, send)  # (a scenario may still script the text, or an error)
        if fault is not None and fault.pre_response:
            faults.record(fault.kinds(), endpoint_of(scope["path"]))
            return await run_fault(fault, scope, receive, send, self.engine)
        if fault is not None:
            scope.setdefault("state", {})["fault"] = fault
        await self.app(scope, receive, _FaultSend(scope, send, faults))


class _FaultSend:
    """``send`` for a request that has (or may get, from a scenario) a stream fault."""

    __slots__ = ("scope", "send", "faults", "mode", "stream")

    def __init__(self, scope, send, faults: Faults) -> None:
        self.scope, self.send, self.faults = scope, send, faults
        self.mode = ""  # "" until the response starts, then "pass" or "stream"
        self.stream: StreamFaults | None = None

    async def __call__(self, message) -> None:
        mode = self.mode
        if mode == "pass":
            return await self.send(message)
        if mode == "stream":
            return await self.stream.body(message)
        fault: Fault | None = self.scope.get("state", {}).get("fault")
        if fault is not None and fault.streams and _is_event_stream(message):
            endpoint = endpoint_of(self.scope["path"])
            self.mode = "stream"
            self.stream = StreamFaults(fault, dialect(self.scope["path"]), self.send,
                                       lambda kind: self.faults.record([kind], endpoint))
        else:
            self.mode = "pass"
        await self.send(message)


def _is_event_stream(start: dict) -> bool:
    return any(k == b"content-type" and v.startswith(b"text/event-stream") for k, v in start.get("headers", ()))


def scripted(request, raw, spec: OutputSpec) -> OutputSpec:
    """``spec`` with what the first matching scenario says (and a ``truncate-tools`` fault).

    Called by each generating route once it has parsed the body (``raw``: the JSON dict, or the
    request model) and before it generates. A scenario's stream fault is left for the gate;
    its error or timeout raises ``Injected``."""
    script = script_for(request, raw, spec.script)
    return spec if script is spec.script else replace(spec, script=script)


def script_for(request, raw, script: Script | None = None) -> Script | None:
    """The ``Script`` of ``scripted`` alone (``script``: one the route has already)."""
    scope = request.scope
    state = scope.setdefault("state", {})
    fault: Fault | None = state.get("fault")
    app = request.app.state
    scenarios = app.scenarios
    endpoint = endpoint_of(scope["path"])
    if scenarios.active:
        body = raw if isinstance(raw, dict) else raw.model_dump(exclude_unset=True)
        hit = scenarios.match(endpoint, body, scope["headers"])
    else:
        hit = None
    if hit is None and (fault is None or not fault.truncate_tools):
        return script
    if hit is not None:
        scenario, out = hit
        log.debug("scenario %s answers %s", scenario.name, scope["path"])
        if out.fault is not None:
            fault = out.fault
            if fault.pre_response:
                state["fault_request"] = (body.get("model"), len(orjson.dumps(body)))
                raise Injected(FaultAnswer(fault, app.faults, app.engine))
            state["fault"] = fault  # the scenario's stream fault replaces a drawn one
        script = out.script
    if fault is not None and fault.truncate_tools:
        app.faults.record(["truncate_tools"], endpoint)
        script = replace(script or Script(), truncate_tools=True)
    return script
