"""Stored responses, their history, conversations and live background runs.

Documents (``fakeai.store``):

* ``response``: ``{"id", "body", "input", "trace", "request"}``. ``body`` is the public
  Response object; ``input`` the request's own input items (stored shape, listed by
  ``input_items``: immutable, so one document, one durable write); ``trace`` what a
  stream of it replays from (token texts per decode step, the reasoning length and each
  tool call's step range); ``request`` the raw request of a background response, which
  a job runs (again, after a restart).
* ``response_job``: ``{"id"}`` per background response not yet finished: the job kind
  the runner scans, so finished responses are never rescanned.
* ``conversation``: the public Conversation object.
* ``conversation_item``: ``{"id": "<conv>/<item>", "item": {...}}`` under parent ``<conv>``:
  appended over time, listed in insertion order by the store.

``Live`` is the in-process event log of a running background response, which any
number of streams follow (``GET /v1/responses/{id}?stream=true``).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from ..store import Doc, Page, Store

RESPONSE = "response"
RESPONSE_JOB = "response_job"
CONVERSATION = "conversation"
ITEM = "conversation_item"
UNFINISHED = ("queued", "in_progress")


class Live:
    """The events of one running background response, as they are produced.

    Event ``k`` has sequence number ``k``, so a follower resumes by index."""

    __slots__ = ("_changed", "cancelled", "done", "events", "task")

    def __init__(self) -> None:
        self.events: list[bytes] = []
        self.done = False
        self.cancelled = False
        self.task: asyncio.Task | None = None
        self._changed = asyncio.Event()

    def push(self, events: list[bytes]) -> None:
        self.events.extend(events)
        self._wake()

    def finish(self) -> None:
        self.done = True
        self._wake()

    def cancel(self) -> None:
        self.cancelled = True
        if self.task is not None:
            self.task.cancel()

    def _wake(self) -> None:
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    async def follow(self, start: int, idle: float) -> AsyncIterator[tuple[bytes, int]]:
        """``(events, next index)`` from index ``start`` on, until the run ends; ``(b"", index)``
        after ``idle`` seconds without news (the caller may look elsewhere meanwhile)."""
        pos = start
        while True:
            if pos < len(self.events):
                chunk = b"".join(self.events[pos:])
                pos = len(self.events)
                yield chunk, pos
            elif self.done:
                return
            else:
                try:
                    await asyncio.wait_for(self._changed.wait(), idle)
                except TimeoutError:
                    yield b"", pos


class ResponseStore:
    def __init__(self, store: Store) -> None:
        self.store = store
        self.live: dict[str, Live] = {}

    # -- responses ------------------------------------------------------------------
    async def get(self, id: str) -> Doc | None:
        return await self.store.get(RESPONSE, id)

    async def save(self, record: Doc) -> None:
        await self.store.put(RESPONSE, record)

    async def create_background(self, record: Doc) -> None:
        await self.store.put(RESPONSE, record)
        await self.store.put(RESPONSE_JOB, {"id": record["id"]})

    async def finish_job(self, id: str) -> None:
        await self.store.delete(RESPONSE_JOB, id)

    async def update(self, id: str, change) -> Doc | None:
        return await self.store.update(RESPONSE, id, change)

    async def delete(self, id: str) -> bool:
        live = self.live.get(id)
        if live is not None:
            live.cancel()
        await self.store.delete(RESPONSE_JOB, id)
        return await self.store.delete(RESPONSE, id)

    async def history(self, previous_id: str) -> list[dict] | None:
        """Every item of the chain ending with ``previous_id``, oldest first: each
        response's input items then its output. None if that response is not stored.
        A chain whose older links were deleted starts at the oldest one still stored."""
        records = []
        rid: str | None = previous_id
        seen = set()
        while rid and rid not in seen:
            seen.add(rid)
            rec = await self.get(rid)
            if rec is None:
                if not records:
                    return None
                break
            records.append(rec)
            rid = rec["body"].get("previous_response_id")
        items: list[dict] = []
        for rec in reversed(records):
            items += rec.get("input") or []
            items += rec["body"].get("output") or []
        return items

    def open_live(self, id: str) -> Live:
        live = self.live.get(id)
        if live is None:
            live = self.live[id] = Live()
        return live

    def close_live(self, id: str) -> None:
        self.live.pop(id, None)

    # -- conversations --------------------------------------------------------------
    async def get_conversation(self, id: str) -> Doc | None:
        return await self.store.get(CONVERSATION, id)

    async def put_conversation(self, conv: Doc) -> None:
        await self.store.put(CONVERSATION, conv)

    async def update_conversation(self, id: str, metadata: dict) -> Doc | None:
        def change(doc: Doc) -> Doc:
            doc["metadata"] = metadata
            return doc

        return await self.store.update(CONVERSATION, id, change)

    async def delete_conversation(self, id: str) -> bool:
        # as OpenAI: the conversation goes, its items are not deleted
        return await self.store.delete(CONVERSATION, id)

    async def add_items(self, conv_id: str, items: list[dict]) -> None:
        for item in items:
            await self.store.put(ITEM, {"id": f"{conv_id}/{item['id']}", "item": item}, parent=conv_id)

    async def items(self, conv_id: str) -> list[dict]:
        return [doc["item"] async for doc in self.store.scan(ITEM, parent=conv_id)]

    async def items_page(self, conv_id: str, after: str | None, limit: int, order: str) -> Page:
        page = await self.store.page(ITEM, parent=conv_id, limit=limit, order=order,
                                     after=f"{conv_id}/{after}" if after else None)
        return Page([doc["item"] for doc in page.items], page.has_more)

    async def get_item(self, conv_id: str, item_id: str) -> dict | None:
        doc = await self.store.get(ITEM, f"{conv_id}/{item_id}")
        return None if doc is None else doc["item"]

    async def delete_item(self, conv_id: str, item_id: str) -> bool:
        return await self.store.delete(ITEM, f"{conv_id}/{item_id}")


def page_list(items: list[dict], after: str | None, before: str | None, limit: int, order: str) -> Page:
    """OpenAI cursor paging over an in-memory list of documents with ids (insertion order)."""
    seq = items if order == "asc" else items[::-1]
    ids = [it.get("id") for it in seq]
    if after is not None:
        seq = seq[ids.index(after) + 1:] if after in ids else []
    elif before is not None:
        seq = seq[:ids.index(before)] if before in ids else []
        return Page(seq[-limit:], len(seq) > limit)
    return Page(seq[:limit], len(seq) > limit)
