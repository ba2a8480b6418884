"""Record and replay ``/v1`` traffic (``record_upstream``, ``cassette_dir``, ``replay_miss``).

``Recorder`` is pure ASGI, installed only when ``cassette_dir`` is set. Record mode
forwards each request to the upstream with httpx (the client's own credentials),
streams the answer through as it arrives and then saves it as a cassette
(``fakeai.services.recorder``). Replay mode answers from the cassette: the same
status, headers and body bytes, each chunk at its recorded time after the
request; a request without one gets 404 ``cassette_not_found`` or, with
``replay_miss=generate``, the simulated answer.
"""

from __future__ import annotations

import asyncio
import logging


from ..services.recorder import Cassette, Cassettes, kept_headers, request_key, upstream_root
from .chaos_stream import StreamCut, mute_cut_logs
from .errors import APIError, error_body, send_json

log = logging.getLogger("fakeai")

# request headers not forwarded: the proxy's own framing and addressing
_NOT_FORWARDED = frozenset({b"host", b"content-length", b"connection", b"transfer-encoding", b"keep-alive",
                            b"x-fakeai-fault", b"x-fakeai-session"})


async def _body(receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return b"".join(chunks)
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


def _replaying(body: bytes, receive):
    """A ``receive`` that gives the app the body already read, then the client's later messages."""
    sent = False

    async def replay():
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()
    return replay


async def _error(send, status: int, message: str, code: str) -> None:
    kind = "invalid_request_error" if status < 500 else "server_error"
    await send_json(send, status, error_body(message, kind, code=code))


class Recorder:
    def __init__(self, app, cassette_dir: str, upstream: str | None, miss: str) -> None:
        self.app = app
        self.cassettes = Cassettes(cassette_dir)
        self.upstream = upstream_root(upstream) if upstream else None
        self.miss = miss
        self._client = None

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or not scope["path"].startswith("/v1/"):
            return await self.app(scope, receive, send)
        try:
            body = await _body(receive)
        except APIError as e:  # over the body limit
            return await _error(send, e.status, e.message, e.code)
        path = scope["path"] + (("?" + scope["query_string"].decode("latin-1")) if scope.get("query_string") else "")
        key = request_key(scope["method"], path, body)
        if self.upstream is not None:
            return await self._record(scope, send, key, path, body)
        try:
            cassette = self.cassettes.get(key)
        except ValueError as e:
            log.error("%s", e)
            return await _error(send, 500, str(e), "cassette_unreadable")
        if cassette is not None:
            return await _play(cassette, send)
        if self.miss == "generate":
            return await self.app(scope, _replaying(body, receive), send)
        await _error(send, 404, f"No cassette recorded for {scope['method']} {path} with this body "
                     f"(key {key}).", "cassette_not_found")

    def _http(self):
        if self._client is None:
            import httpx  # record mode only

            self._client = httpx.AsyncClient(timeout=httpx.Timeout(600.0, connect=10.0))
        return self._client

    async def _record(self, scope, send, key: str, path: str, body: bytes) -> None:
        import httpx

        headers = [(k, v) for k, v in scope["headers"] if k not in _NOT_FORWARDED]
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        chunks: list[tuple[float, bytes]] = []
        try:
            request = self._http().build_request(scope["method"], self.upstream + path, headers=headers, content=body)
            response = await self._http().send(request, stream=True)
        except httpx.HTTPError as e:
            return await _error(send, 502, f"The upstream {self.upstream} could not be reached: {e}.",
                                "upstream_unavailable")
        headers_t = loop.time() - t0
        try:
            kept = kept_headers(response.headers.multi_items())
            await send({"type": "http.response.start", "status": response.status_code,
                        "headers": [(k.encode("latin-1"), v.encode("latin-1")) for k, v in kept]})
            async for data in response.aiter_raw():
                chunks.append((loop.time() - t0, data))
                await send({"type": "http.response.body", "body": data, "more_body": True})
        except httpx.HTTPError as e:  # the upstream broke off: so does this answer, and nothing is saved
            log.warning("upstream %s broke off %s: %s", self.upstream, path, e)
            mute_cut_logs()
            raise StreamCut() from None
        finally:
            await response.aclose()
        await send({"type": "http.response.body", "body": b"", "more_body": False})
        await self.cassettes.save(key, Cassette(scope["method"], path, response.status_code, kept, chunks,
                                                   headers_t), body)


async def _play(c: Cassette, send) -> None:
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    if c.headers_t > 0:
        await asyncio.sleep(c.headers_t)
    await send({"type": "http.response.start", "status": c.status,
                "headers": [(k.encode("latin-1"), v.encode("latin-1")) for k, v in c.headers]})
    for t, data in c.chunks:
        wait = t0 + t - loop.time()
        if wait > 0:
            await asyncio.sleep(wait)
        await send({"type": "http.response.body", "body": data, "more_body": True})
    await send({"type": "http.response.body", "body": b"", "more_body": False})
