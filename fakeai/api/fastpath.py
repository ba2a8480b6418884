"""The hot path: the busiest routes (chat, completions, models, embeddings, moderations)
served without the framework's per-request layers.

FastAPI still registers these routes (for /docs, /openapi.json and as a
fallback), but ``FastPath`` answers them first: one dict lookup on
(method, path), a plain ``Request``, the handler, and OpenAI's error envelope
for any failure. Profiling showed FastAPI's routing and dependency machinery
costing more CPU than the simulation itself (docs/benchmarks.md).

``SSEResponse`` streams an async iterator of bytes with one watcher task per
stream for client disconnects (Starlette's StreamingResponse uses an anyio task
group per request, which costs more).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable

from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from ..engine.errors import EngineError
from ..store.base import StoreError
from .errors import APIError, error_response, store_unavailable

log = logging.getLogger("fakeai")

Handler = Callable[[Request], Awaitable[Response]]
CLIENT_GONE = 499  # nginx's "client closed request": what the metrics count for a client that left


class FastPath:
    def __init__(self, app, routes: dict[tuple[str, str], Handler], fastapi_app) -> None:
        self.app = app
        self.routes = routes
        self.fastapi_app = fastapi_app

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http":
            handler = self.routes.get((scope["method"], scope["path"]))
            if handler is not None:
                scope["app"] = self.fastapi_app
                response = await _answer(handler, Request(scope, receive))
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


async def _answer(handler: Handler, request: Request) -> Response:
    try:
        return await handler(request)
    except APIError as e:
        if e.answer is not None:
            return e.answer
        return error_response(e.status, e.message, e.type, e.param, e.code, e.headers)
    except EngineError as e:
        return error_response(e.status, e.message, e.type, e.param, e.code)
    except StoreError as e:  # store=true with the store down
        return store_unavailable(e)
    except ClientDisconnect:  # the client left mid-body or while waiting: nobody to answer
        return Response(status_code=CLIENT_GONE)
    except Exception:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return error_response(500, "The server had an error while processing your request. Sorry about that!",
                              type="server_error")


_SSE_HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
]


class SSEResponse(Response):
    """Writes each bytes item of ``events`` as it comes; stops the moment the client leaves.

    A ``Response`` so that any route can return it, on the fast path or not."""

    media_type = "text/event-stream"

    def __init__(self, events: AsyncIterator[bytes]) -> None:
        self.events = events
        self.status_code = 200
        self.background = None

    async def __call__(self, scope, receive, send) -> None:
        task = asyncio.current_task()
        watcher = asyncio.ensure_future(cancel_on_disconnect(receive, task))
        try:
            await send({"type": "http.response.start", "status": 200, "headers": _SSE_HEADERS})
            async for chunk in self.events:
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        except asyncio.CancelledError:
            if not client_left(watcher):
                raise  # cancelled by the server, not by a disconnect
            task.uncancel()
        finally:
            watcher.cancel()
            await self.events.aclose()  # runs the generator's cleanup (frees the engine slot)


def client_left(watcher: asyncio.Task | None) -> bool:
    """Did ``cancel_on_disconnect`` (the ``watcher``) cancel its task because the client left?"""
    return watcher is not None and watcher.done() and not watcher.cancelled() and watcher.result()


async def cancel_on_disconnect(receive, task: asyncio.Task) -> bool:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            task.cancel()
            return True
