"""Streaming ``multipart/form-data``: parts come out as the body arrives, file data as a
stream of chunks, so a 512 MB upload goes straight to the store and is never held
(or spooled to a temporary file) whole. python-multipart does the parsing.

    form = MultipartStream(request)
    async for part in form.parts():
        if part.filename is None:
            value = await part.text()          # a small form field
        else:
            await sink(part.data())            # the file, chunk by chunk

A part must be consumed before the next one is asked for (unread data is skipped).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import ClientDisconnect, Request

from .errors import APIError

MAX_FIELD_BYTES = 64 * 1024


def _bad(message: str) -> APIError:
    return APIError(400, message, code="invalid_multipart")


class Part:
    def __init__(self, name: str, filename: str | None, content_type: str | None, events) -> None:
        self.name, self.filename, self.content_type = name, filename, content_type
        self._events = events
        self.done = False

    async def data(self) -> AsyncIterator[bytes]:
        """The part's bytes as they arrive."""
        if self.done:
            return
        async for kind, value in self._events:
            if kind == "data":
                yield value
            elif kind == "end":
                self.done = True
                return
        raise _bad("The multipart body ended in the middle of a part.")

    async def text(self, limit: int = MAX_FIELD_BYTES) -> str:
        parts, n = [], 0
        async for chunk in self.data():
            n += len(chunk)
            if n > limit:
                raise APIError(400, f"Form field '{self.name}' is too long.", param=self.name)
            parts.append(chunk)
        try:
            return b"".join(parts).decode()
        except UnicodeDecodeError:
            raise APIError(400, f"Form field '{self.name}' is not valid UTF-8.", param=self.name) from None

    async def skip(self) -> None:
        async for _ in self.data():
            pass


class MultipartStream:
    def __init__(self, request: Request) -> None:
        ctype, params = parse_options_header(request.headers.get("content-type", ""))
        if ctype != b"multipart/form-data":
            raise APIError(400, "Invalid request: expected a multipart/form-data body.",
                           code="invalid_content_type")
        boundary = params.get(b"boundary")
        if not boundary:
            raise _bad("Invalid multipart body: the Content-Type has no boundary.")
        self.request = request
        self.boundary = boundary
        self._pending: list[tuple[str, object]] = []
        self._header_name = b""
        self._header_value = b""
        self._headers: dict[bytes, bytes] = {}
        self.finished = False  # the whole body has been received

    # -- parser callbacks: queue events, handed out between body chunks ---------------
    def _on_part_begin(self) -> None:
        self._headers = {}

    def _on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_name += data[start:end]

    def _on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def _on_header_end(self) -> None:
        self._headers[self._header_name.lower()] = self._header_value
        self._header_name = self._header_value = b""

    def _on_headers_finished(self) -> None:
        self._pending.append(("begin", self._headers))

    def _on_part_data(self, data: bytes, start: int, end: int) -> None:
        if end > start:
            self._pending.append(("data", bytes(data[start:end])))

    def _on_part_end(self) -> None:
        self._pending.append(("end", None))

    async def _events(self) -> AsyncIterator[tuple[str, object]]:
        parser = MultipartParser(self.boundary, {
            "on_part_begin": self._on_part_begin, "on_header_field": self._on_header_field,
            "on_header_value": self._on_header_value, "on_header_end": self._on_header_end,
            "on_headers_finished": self._on_headers_finished, "on_part_data": self._on_part_data,
            "on_part_end": self._on_part_end})
        try:
            async for chunk in self._body():
                if chunk:
                    parser.write(chunk)
                if self._pending:
                    events, self._pending = self._pending, []
                    for event in events:
                        yield event
            parser.finalize()
        except MultipartParseError as e:
            raise _bad(f"Invalid multipart body: {e}") from None
        for event in self._pending:
            yield event
        self._pending = []

    async def _body(self) -> AsyncIterator[bytes]:
        while not self.finished:
            message = await self.request.receive()
            if message["type"] != "http.request":
                raise ClientDisconnect()
            if not message.get("more_body", False):
                self.finished = True
            yield message.get("body", b"")

    async def parts(self) -> AsyncIterator[Part]:
        events = self._events()
        part: Part | None = None
        async for kind, value in events:
            if kind != "begin":
                continue
            _, options = parse_options_header(value.get(b"content-disposition", b""))
            if b"name" not in options:
                raise _bad('Invalid multipart body: a part has no Content-Disposition "name".')
            name = options[b"name"].decode(errors="replace")
            filename = options[b"filename"].decode(errors="replace") if b"filename" in options else None
            ctype = value.get(b"content-type")
            part = Part(name, filename, ctype.decode(errors="replace") if ctype else None, events)
            yield part
            if not part.done:
                await part.skip()

    async def drain(self, limit: int = 64 << 20) -> bool:
        """Read and drop up to ``limit`` more bytes the client is still sending, so that an
        early error reply reaches it; False if more remain (the connection must close)."""
        n = 0
        while not self.finished:
            message = await self.request.receive()
            if message["type"] != "http.request":
                return False
            n += len(message.get("body", b""))
            if not message.get("more_body", False):
                self.finished = True
            elif n > limit:
                return False
        return True
