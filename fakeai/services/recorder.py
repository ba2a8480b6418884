"""Cassettes: recorded answers of a real OpenAI-compatible upstream, replayed byte for byte.

A cassette holds one request's answer: its status, the response headers worth
keeping, and the body as the chunks that arrived, each with its time since the
request went out. Its key is the method, the path (with the query) and a hash
of the canonical body (JSON with sorted keys; other bodies as they are), so the
same request finds the same cassette whatever its header order, key or client.
One file per key in ``cassette_dir``: ``post-v1-chat-completions-<hash>.json``.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import re
import tempfile
from dataclasses import dataclass

import orjson

# headers never recorded: hop-by-hop framing, and what this server sets on every answer
_DROP = frozenset({
    "connection", "keep-alive", "transfer-encoding", "content-length", "date", "server", "x-request-id",
    "request-id", "openai-processing-ms", "openai-version", "set-cookie", "alt-svc", "via",
})
_SLUG = re.compile(r"[^a-z0-9]+")


def request_key(method: str, path: str, body: bytes) -> str:
    """``post-v1-chat-completions-<32 hex>``: the method, path and canonical body."""
    try:
        canonical = orjson.dumps(orjson.loads(body), option=orjson.OPT_SORT_KEYS) if body else b""
    except orjson.JSONDecodeError:
        canonical = body
    h = hashlib.sha256(f"{method.upper()} {path}\n".encode() + canonical).hexdigest()[:32]
    slug = _SLUG.sub("-", f"{method} {path.split('?')[0]}".lower()).strip("-")[:80]
    return f"{slug}-{h}"


def kept_headers(headers) -> list[tuple[str, str]]:
    """The response headers a cassette keeps (and replays)."""
    return [(k.lower(), v) for k, v in headers if k.lower() not in _DROP]


@dataclass(slots=True)
class Cassette:
    method: str
    path: str
    status: int
    headers: list[tuple[str, str]]
    chunks: list[tuple[float, bytes]]  # (seconds since the request went out, bytes)
    headers_t: float = 0.0  # when the status line and headers came

    def to_doc(self, body: bytes) -> dict:
        try:
            request_body = orjson.loads(body) if body else None
        except orjson.JSONDecodeError:
            request_body = {"base64": base64.b64encode(body).decode()}
        chunks = []
        for t, data in self.chunks:
            try:
                chunks.append({"t": round(t, 6), "text": data.decode("utf-8")})
            except UnicodeDecodeError:
                chunks.append({"t": round(t, 6), "base64": base64.b64encode(data).decode()})
        return {"version": 1, "request": {"method": self.method, "path": self.path, "body": request_body},
                "response": {"status": self.status, "headers": [list(h) for h in self.headers],
                             "headers_t": round(self.headers_t, 6), "chunks": chunks}}

    @classmethod
    def from_doc(cls, doc: dict) -> "Cassette":
        req, resp = doc["request"], doc["response"]
        chunks = [(float(c["t"]), c["text"].encode("utf-8") if "text" in c else base64.b64decode(c["base64"]))
                  for c in resp["chunks"]]
        return cls(req["method"], req["path"], int(resp["status"]), [(k, v) for k, v in resp["headers"]], chunks,
                   float(resp.get("headers_t", 0.0)))


class Cassettes:
    """The cassettes of one directory: read on first use, written atomically."""

    def __init__(self, directory: str) -> None:
        self.dir = os.path.expanduser(directory)
        self._cache: dict[str, Cassette] = {}

    def path(self, key: str) -> str:
        return os.path.join(self.dir, key + ".json")

    def get(self, key: str) -> Cassette | None:
        c = self._cache.get(key)
        if c is None:
            try:
                with open(self.path(key), "rb") as f:
                    c = Cassette.from_doc(orjson.loads(f.read()))
            except FileNotFoundError:
                return None
            except (OSError, ValueError, KeyError, TypeError) as e:
                raise ValueError(f"cassette {self.path(key)} is unreadable: {e}") from None
            if len(self._cache) < 10_000:
                self._cache[key] = c
        return c

    async def save(self, key: str, cassette: Cassette, body: bytes) -> None:
        data = orjson.dumps(cassette.to_doc(body), option=orjson.OPT_INDENT_2)
        await asyncio.to_thread(self._write, self.path(key), data)
        self._cache[key] = cassette

    def _write(self, path: str, data: bytes) -> None:
        os.makedirs(self.dir, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.dir, prefix=".cassette-")
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)


def upstream_root(url: str) -> str:
    """The upstream's root URL: ``https://api.openai.com/v1`` and ``.../v1/`` mean the same server."""
    return url.rstrip("/").removesuffix("/v1")
