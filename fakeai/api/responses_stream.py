"""Responses streaming: the typed event sequence, rendered from bytes templates.

One ``StreamPlan`` renders a response's events from its final body and its trace
(the token text of each decode step), so a live stream and a replay
(``GET /v1/responses/{id}?stream=true&starting_after=N``) produce the very same
events with the same ``sequence_number``s: event ``k`` is number ``k``.

Order: ``response.created``, ``response.in_progress``; a file search's item and its
``file_search_call.*`` events; then per decode step whatever opens there
(``output_item.added``, ``content_part.added``, ``reasoning_summary_part.added``),
the step's delta (``output_text.delta``, ``function_call_arguments.delta`` or
``reasoning_summary_text.delta``) and whatever closes there (``*.done``); finally
``response.completed`` (or ``response.incomplete`` / ``response.failed``).
No per-token objects: a delta is a precomputed prefix + the token's JSON string.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

from ..engine.core import Engine, Generation
from . import common
from .common import dumps

_CLOSING = {"completed": b"response.completed", "incomplete": b"response.incomplete",
            "failed": b"response.failed"}


def snapshot(body: dict, status: str) -> dict:
    """The response as it stands before any output (the created / in_progress events)."""
    out = {**body, "status": status, "output": [], "completed_at": None, "incomplete_details": None,
           "error": None}
    out.pop("usage", None)
    return out


def _ids(item: dict, index: int) -> bytes:
    return b'"item_id":' + dumps(item["id"]) + b',"output_index":' + str(index).encode()


class StreamPlan:
    __slots__ = ("body", "closes", "deltas", "opens", "seq", "texts")

    def __init__(self, body: dict, trace: dict | None) -> None:
        self.body = body
        self.texts: list[str] = trace["texts"] if trace else []
        self.seq = 0
        n = len(self.texts)
        self.deltas: list[tuple[bytes, bytes, bytes] | None] = [None] * n
        self.opens: dict[int, list[Callable[[], list[bytes]]]] = {}
        self.closes: dict[int, list[Callable[[], list[bytes]]]] = {}
        r = trace["r"] if trace else 0
        calls = iter(trace["calls"] if trace else ())
        for index, item in enumerate(body.get("output") or ()):
            kind = item["type"]
            if kind == "reasoning" and r:
                self._reasoning(index, item, r)
            elif kind == "message" and n > r:
                self._message(index, item, r, n)
            elif kind == "function_call":
                h, a, e = next(calls)
                self._call(index, item, h, a, e)

    # -- framing ------------------------------------------------------------------
    def frame(self, etype: bytes, fields: bytes) -> bytes:
        s = self.seq
        self.seq = s + 1
        return (b"event: " + etype + b'\ndata: {"type":"' + etype + b'",' + fields
                + b',"sequence_number":' + str(s).encode() + b"}\n\n")

    def _at(self, table: dict, step: int, fn: Callable[[], list[bytes]]) -> None:
        table.setdefault(step, []).append(fn)

    def _item_event(self, etype: bytes, index: int, item: dict) -> bytes:
        return self.frame(etype, b'"output_index":' + str(index).encode() + b',"item":' + dumps(item))

    # -- per item ---------------------------------------------------------------------
    def _reasoning(self, index: int, item: dict, r: int) -> None:
        ids = _ids(item, index)
        summary = item.get("summary") or []
        added = {"id": item["id"], "type": "reasoning", "summary": []}

        def open_() -> list[bytes]:
            out = [self._item_event(b"response.output_item.added", index, added)]
            if summary:
                out.append(self.frame(b"response.reasoning_summary_part.added",
                                      ids + b',"summary_index":0,"part":{"type":"summary_text","text":""}'))
            return out

        def close() -> list[bytes]:
            out = []
            if summary:
                text = dumps(summary[0]["text"])
                out.append(self.frame(b"response.reasoning_summary_text.done",
                                      ids + b',"summary_index":0,"text":' + text))
                out.append(self.frame(b"response.reasoning_summary_part.done",
                                      ids + b',"summary_index":0,"part":{"type":"summary_text","text":' + text + b"}"))
            out.append(self._item_event(b"response.output_item.done", index, item))
            return out

        self._at(self.opens, 0, open_)
        self._at(self.closes, r - 1, close)
        if summary:
            d = (b"response.reasoning_summary_text.delta", ids + b',"summary_index":0,"delta":', b"")
            for step in range(r):
                self.deltas[step] = d

    def _message(self, index: int, item: dict, r: int, n: int) -> None:
        ids = _ids(item, index) + b',"content_index":0'
        part = item["content"][0]
        added = {"id": item["id"], "type": "message", "status": "in_progress", "content": [], "role": "assistant"}
        if part["type"] == "refusal":
            empty = {"type": "refusal", "refusal": ""}
            kind, done, tail = b"response.refusal.", b',"refusal":' + dumps(part["refusal"]), b""
        else:
            empty = {**part, "annotations": [], "text": ""}
            kind, done, tail = b"response.output_text.", b',"text":' + dumps(part["text"]), b',"logprobs":[]'

        def open_() -> list[bytes]:
            return [self._item_event(b"response.output_item.added", index, added),
                    self.frame(b"response.content_part.added", ids + b',"part":' + dumps(empty))]

        def close() -> list[bytes]:
            return [self.frame(kind + b"done", ids + done + tail),
                    self.frame(b"response.content_part.done", ids + b',"part":' + dumps(part)),
                    self._item_event(b"response.output_item.done", index, item)]

        self._at(self.opens, r, open_)
        self._at(self.closes, n - 1, close)
        d = (kind + b"delta", ids + b',"delta":', tail)
        for step in range(r, n):
            self.deltas[step] = d

    def _call(self, index: int, item: dict, h: int, a: int, e: int) -> None:
        ids = _ids(item, index)
        added = {**item, "status": "in_progress", "arguments": ""}

        def close() -> list[bytes]:
            return [self.frame(b"response.function_call_arguments.done", ids + b',"name":' + dumps(item["name"])
                               + b',"arguments":' + dumps(item["arguments"])),
                    self._item_event(b"response.output_item.done", index, item)]

        self._at(self.opens, h, lambda: [self._item_event(b"response.output_item.added", index, added)])
        self._at(self.closes, max(h, e - 1), close)
        d = (b"response.function_call_arguments.delta", ids + b',"delta":', b"")
        for step in range(a, min(e, len(self.deltas))):
            self.deltas[step] = d

    # -- the sequence ---------------------------------------------------------------------
    def prelude(self) -> list[bytes]:
        body = self.body
        first = "queued" if body.get("background") else "in_progress"
        out = [self.frame(b"response.created", b'"response":' + dumps(snapshot(body, first))),
               self.frame(b"response.in_progress", b'"response":' + dumps(snapshot(body, "in_progress")))]
        for index, item in enumerate(body.get("output") or ()):
            if item["type"] != "file_search_call":
                continue
            ids = b'"output_index":' + str(index).encode() + b',"item_id":' + dumps(item["id"])
            out.append(self._item_event(b"response.output_item.added", index,
                                        {**item, "status": "in_progress", "results": None}))
            for phase in (b"in_progress", b"searching", b"completed"):
                out.append(self.frame(b"response.file_search_call." + phase, ids))
            out.append(self._item_event(b"response.output_item.done", index, item))
        return out

    def render(self, start: int, end: int) -> list[bytes]:
        out: list[bytes] = []
        texts, deltas, opens, closes = self.texts, self.deltas, self.opens, self.closes
        for step in range(start, min(end, len(texts))):
            if step in opens:
                for fn in opens[step]:
                    out += fn()
            d = deltas[step]
            if d is not None:
                out.append(self.frame(d[0], d[1] + dumps(texts[step]) + d[2]))
            if step in closes:
                for fn in closes[step]:
                    out += fn()
        return out

    def closing(self, body: dict) -> list[bytes]:
        etype = _CLOSING.get(body["status"])
        return [] if etype is None else [self.frame(etype, b'"response":' + dumps(body))]

    def replay(self) -> list[bytes]:
        """Every event of the stored response, in order (event k has sequence number k)."""
        return self.prelude() + self.render(0, len(self.texts)) + self.closing(self.body)


async def stream(engine: Engine, gen: Generation, plan: StreamPlan, finish: Callable[[], Awaitable[dict]],
                 on_close: Callable[[int], None] | None = None) -> AsyncIterator[bytes]:
    """A foreground stream: the prelude at once, each step range when the engine says it is
    due, then ``finish()`` (store the response, return its final body) and the closing event.
    ``on_close(steps sent)``: as ``common.paced`` (usage accounting)."""
    yield b"".join(plan.prelude())
    render = plan.render
    async for chunk in common.paced(engine, gen, lambda s, e: b"".join(render(s, e)), lambda: b"", done=b"",
                                    on_close=on_close):
        if chunk:
            yield chunk
    yield b"".join(plan.closing(await finish()))
