"""OpenAI's error envelope, ``{"error": {"message", "type", "param", "code"}}``, for every failure."""

from __future__ import annotations

import logging
import re
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect
from starlette.responses import Response

from ..engine.errors import EngineError
from ..store.base import StoreError

log = logging.getLogger("fakeai")

_TYPE_TAGS = frozenset({"str", "int", "float", "bool", "dict", "list", "none", "literal"})
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class APIError(Exception):
    """An error answered in OpenAI's envelope (or by ``answer``, an ASGI callable, when set)."""

    answer = None

    def __init__(self, status: int, message: str, type: str = "invalid_request_error",
                 param: str | None = None, code: str | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.type = status, message, type
        self.param, self.code, self.headers = param, code, headers


def error_body(message: str, type: str = "invalid_request_error", param: str | None = None,
               code: str | None = None) -> bytes:
    return orjson.dumps({"error": {"message": message, "type": type, "param": param, "code": code}})


async def send_json(send, status: int, body: bytes, headers=()) -> None:
    """A whole JSON answer over raw ASGI (for layers in front of the router)."""
    await send({"type": "http.response.start", "status": status, "headers": [
        (b"content-type", b"application/json"), (b"content-length", b"%d" % len(body)), *headers]})
    await send({"type": "http.response.body", "body": body})


def error_response(status: int, message: str, type: str = "invalid_request_error",
                   param: str | None = None, code: str | None = None,
                   headers: dict[str, str] | None = None) -> Response:
    return Response(error_body(message, type, param, code), status_code=status,
                    media_type="application/json", headers=headers)


def param_path(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif isinstance(part, str) and _IDENT.match(part) and part not in _TYPE_TAGS:
            out += f".{part}" if out else part
        else:
            break  # a union branch tag such as 'list[str]': the field is named already
    return out


def _describe(err: dict[str, Any], param: str) -> tuple[str, str | None]:
    t, ctx, got = err["type"], err.get("ctx") or {}, err.get("input")
    if t == "missing":
        return f"Missing required parameter: '{param}'.", "missing_required_parameter"
    if t in ("greater_than_equal", "greater_than", "less_than_equal", "less_than"):
        bound = next(iter(ctx.values()), None)
        rel = {"greater_than_equal": ">=", "greater_than": ">", "less_than_equal": "<=", "less_than": "<"}[t]
        word = "below minimum" if t.startswith("greater") else "above maximum"
        return (f"Invalid '{param}': value {word}. Expected a value {rel} {bound}, but got {got!r} instead.",
                "invalid_value")
    if t in ("string_too_short", "string_too_long"):
        return f"Invalid '{param}': {err['msg'].lower()}.", "invalid_value"
    if t in ("too_short", "too_long"):
        return f"Invalid '{param}': {err['msg'].lower()}.", "invalid_value" if t == "too_long" else "empty_array"
    if t in ("literal_error", "enum"):
        return f"Invalid value for '{param}': {err['msg']}.", "invalid_value"
    return f"Invalid type for '{param}': {err['msg']}.", "invalid_type"


def _rank(err: dict[str, Any]) -> int:
    t = err["type"]
    if t == "missing":
        return 0
    return 2 if t.endswith("_type") or t.endswith("_parsing") or t == "model_type" else 1


def validation_error(exc: ValidationError | RequestValidationError, prefix: tuple = ()) -> APIError:
    # one problem at a time, like OpenAI: a missing field first, then a bad value (a union
    # reports a type error for each branch it did not take, so those come last)
    errors = sorted(exc.errors(), key=_rank)
    err = errors[0]
    loc = tuple(err.get("loc", ()))
    if prefix and loc[: len(prefix)] == prefix:
        loc = loc[len(prefix):]
    param = param_path(loc) or None
    msg, code = _describe(err, param or "body")
    return APIError(400, msg, param=param, code=code)


def store_unavailable(exc: StoreError) -> Response:
    """The answer to a request whose store failed (Redis gone, disk full): 503, retry soon."""
    log.error("store unavailable: %s", exc)
    return error_response(503, "The server's storage is temporarily unavailable; please retry.",
                          type="server_error", code="service_unavailable", headers={"retry-after": "1"})


def install(app: FastAPI) -> None:
    @app.exception_handler(ClientDisconnect)
    async def _client_gone(_: Request, exc: ClientDisconnect) -> Response:
        return Response(status_code=499)  # the client left mid-body or while waiting: nobody to answer

    @app.exception_handler(APIError)
    async def _api_error(_: Request, exc: APIError) -> Response:
        if exc.answer is not None:
            return exc.answer
        return error_response(exc.status, exc.message, exc.type, exc.param, exc.code, exc.headers)

    @app.exception_handler(EngineError)
    async def _engine_error(_: Request, exc: EngineError) -> Response:
        return error_response(exc.status, exc.message, exc.type, exc.param, exc.code)

    @app.exception_handler(StoreError)
    async def _store_error(_: Request, exc: StoreError) -> Response:
        return store_unavailable(exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> Response:
        e = validation_error(exc, prefix=("body",))
        return error_response(e.status, e.message, e.type, e.param, e.code)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 404:
            msg = f"Invalid URL ({request.method} {request.url.path})"
        elif exc.status_code == 405:
            msg = f"Method {request.method} is not allowed for {request.url.path}"
        else:
            msg = str(exc.detail)
        if request.url.path.startswith("/v1/messages"):  # Anthropic's clients read Anthropic's envelope
            kind = "not_found_error" if exc.status_code == 404 else "invalid_request_error"
            rid = request.scope.get("state", {}).get("request_id", "")
            body = orjson.dumps({"type": "error", "error": {"type": kind, "message": msg}, "request_id": rid})
            return Response(body, status_code=exc.status_code, media_type="application/json",
                            headers={**(getattr(exc, "headers", None) or {}), "request-id": rid})
        return error_response(exc.status_code, msg, headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return error_response(500, "The server had an error while processing your request. Sorry about that!",
                              type="server_error")
