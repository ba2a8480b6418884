"""One Realtime response, from ``response.create`` to ``response.done``, paced by the engine.

The engine decides the content (text, or function calls with arguments valid against
each tool's schema) and the timing (TTFT, ITL, the simulated cluster); each due step
range becomes its events: ``response.output_text.delta`` per token, or for audio the
transcript per token plus ``response.output_audio.delta`` chunks carrying the speech of
those tokens. Speech is synthesized sentence by sentence off the event loop, one
sentence ahead, so memory holds a sentence of audio, not the answer's. Its total
duration is the transcript's spoken duration (``fakeai.services.audio``).

A cancelled response (``response.cancel``, or speech detected with
``interrupt_response``) closes its open parts and items as ``incomplete`` and ends with
``response.done`` status ``cancelled``; usage then counts what was sent.
"""

from __future__ import annotations

import asyncio
import base64
import re
from contextlib import aclosing
from dataclasses import dataclass, field

from ..engine.core import GenParams
from ..engine.errors import EngineError
from ..engine.output import OutputSpec
from ..lazy import lazy_import
from ..security.ratelimit import RateLimited

speech = lazy_import("fakeai.services.audio")
conversation = lazy_import("fakeai.services.realtime_conversation")
_MAX_DELTA_SECONDS = 0.5            # audio of one output_audio.delta, at most
_MAX_SEGMENT_TOKENS = 48            # a synthesized piece: a sentence, or this many tokens
_SENTENCE_END = re.compile(r"[.!?\u2026]\W*$")
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")
_UNIT = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


@dataclass(slots=True)
class Running:
    """A response in progress (what response.cancel finds)."""

    id: str
    params: object                 # services.realtime.ResponseParams
    prompt: object                 # services.realtime_conversation.Prompt
    event_id: str | None
    arrival: float
    task: asyncio.Task | None = None
    cancel_reason: str | None = None
    output: list = field(default_factory=list)   # the output items (Item), in order

    @property
    def default_conversation(self) -> bool:
        return self.params.conversation == "auto"


def _seconds(text: str) -> float:
    return sum(float(n) * _UNIT[u] for n, u in _DURATION.findall(text))


def rate_limits(headers: list[tuple[bytes, bytes]]) -> list[dict]:
    """``rate_limits.updated`` entries from a reservation's x-ratelimit headers."""
    seen: dict[str, dict] = {}
    for name, value in headers:
        parts = name.decode().split("-")  # x-ratelimit-<limit|remaining|reset>-<requests|tokens>
        if len(parts) != 4:
            continue
        entry = seen.setdefault(parts[3], {"name": parts[3]})
        v = value.decode()
        key = {"limit": "limit", "remaining": "remaining", "reset": "reset_seconds"}[parts[2]]
        entry[key] = round(_seconds(v), 3) if key == "reset_seconds" else int(v)
    return list(seen.values())


class Speech:
    """The speech of a transcript, synthesized piece by piece (a piece per sentence), handed
    out by token: ``take(k)`` yields the audio of the tokens up to ``k`` not yet taken."""

    def __init__(self, texts: list[str], voice: str, speed: float, fmt) -> None:
        self.texts, self.voice, self.speed, self.fmt = texts, voice, speed, fmt
        self.cum = [0]
        for t in texts:
            self.cum.append(self.cum[-1] + len(t))
        self.bounds = self._segments()
        self.loop = asyncio.get_running_loop()
        self.jobs: dict[int, asyncio.Future] = {}
        self.seg = 0
        self.off = 0          # bytes of the current piece already taken
        self.bytes = 0        # bytes taken in all

    def _segments(self) -> list[int]:
        """Token boundaries of the pieces: after a sentence end, or before a word once a piece is
        long; every piece has a word in it (a piece without one would be a hummed syllable)."""
        texts = self.texts
        worded = [any(ch.isalnum() for ch in t) for t in texts]
        later = [False] * (len(texts) + 1)  # a word at or after token k
        for k in range(len(texts) - 1, -1, -1):
            later[k] = worded[k] or later[k + 1]
        bounds, start, has_word = [0], 0, False
        for k in range(1, len(texts)):
            has_word = has_word or worded[k - 1]
            long = k - start >= _MAX_SEGMENT_TOKENS and texts[k][:1].isspace()
            if has_word and later[k] and (long or _SENTENCE_END.search(texts[k - 1])):
                bounds.append(k)
                start, has_word = k, False
        bounds.append(len(texts))
        return bounds

    def _job(self, i: int) -> asyncio.Future:
        job = self.jobs.get(i)
        if job is None:
            text = "".join(self.texts[self.bounds[i]:self.bounds[i + 1]])
            job = self.jobs[i] = self.loop.run_in_executor(None, _synthesize, text, self.voice, self.speed, self.fmt)
        return job

    def prefetch(self) -> None:
        if self.texts:
            self._job(0)

    @property
    def seconds(self) -> float:
        return self.fmt.seconds(self.bytes)

    async def take(self, k: int):
        width, last = self.fmt.width, len(self.bounds) - 2
        while self.texts:
            i = self.seg
            a, b = self.bounds[i], self.bounds[i + 1]
            data = await self._job(i)
            if i < last:
                self._job(i + 1)  # the next piece synthesizes while this one goes out
            if k >= b:
                pos = len(data)
            else:
                span = self.cum[b] - self.cum[a]
                frac = (self.cum[max(k, a)] - self.cum[a]) / span if span else 0.0
                pos = round(frac * len(data) / width) * width
            chunk = round(_MAX_DELTA_SECONDS * self.fmt.rate) * width
            while self.off < pos:
                piece = data[self.off:min(pos, self.off + chunk)]
                self.off += len(piece)
                self.bytes += len(piece)
                yield piece
            if k < b or i == last:
                return
            self.jobs.pop(i, None)
            self.seg, self.off = i + 1, 0

    def cancel(self) -> None:
        for job in self.jobs.values():
            job.cancel()


def _synthesize(text: str, voice: str, speed: float, fmt) -> bytes:
    return fmt.encode(speech.synthesize(text, voice, speed))


class ResponseRun:
    """Runs one response on a session (see ``fakeai.api.realtime.Session``)."""

    def __init__(self, session, running: Running) -> None:
        self.s, self.r = session, running
        self.p = running.params
        self.gen = None
        self.sent = 0               # decode steps sent
        self.msg = None             # the message item, once opened
        self.msg_text: list[str] = []
        self.audio_store: bytearray | None = None
        self.calls_open: dict[int, object] = {}   # call index -> Item
        self.speech: Speech | None = None
        self.status, self.details = "in_progress", None

    # -- events ---------------------------------------------------------------------
    def response(self, with_usage: bool = False) -> dict:
        p = self.p
        body = {"object": "realtime.response", "id": self.r.id, "status": self.status,
                "output": [i.wire for i in self.r.output], "output_modalities": list(p.modalities),
                "max_output_tokens": p.max_output_tokens,
                "audio": {"output": {"format": p.output_format.wire(), "voice": p.voice}},
                "metadata": p.metadata}
        if self.details is not None:
            body["status_details"] = self.details
        if self.r.default_conversation:
            body["conversation_id"] = self.s.conv.id
        if with_usage:
            body["usage"] = self.usage()
        return body

    def usage(self) -> dict:
        gen, prompt = self.gen, self.r.prompt
        inp = gen.prompt_tokens if gen is not None else len(prompt.ids)
        cached = gen.cached_tokens if gen is not None else 0
        c_audio, c_image = prompt.cached_media(cached)
        text_out = self.sent if gen is None else min(self.sent, gen.steps)
        audio_out = speech.audio_tokens(self.speech.seconds) if self.speech is not None and self.speech.bytes else 0
        out = text_out + audio_out
        return {"total_tokens": inp + out, "input_tokens": inp, "output_tokens": out,
                "input_token_details": {
                    "cached_tokens": cached, "text_tokens": inp - prompt.audio_tokens - prompt.image_tokens,
                    "image_tokens": prompt.image_tokens, "audio_tokens": prompt.audio_tokens,
                    "cached_tokens_details": {"text_tokens": cached - c_audio - c_image, "image_tokens": c_image,
                                              "audio_tokens": c_audio}},
                "output_token_details": {"text_tokens": text_out, "audio_tokens": audio_out}}

    async def _send(self, events: list[dict]) -> None:
        """Send a step's events whole: a cancel arriving meanwhile takes effect after them, so
        the closing events and the usage match what the client received."""
        await asyncio.shield(self.s.send_many(events))

    def _ids(self, item, output_index: int, **more) -> dict:
        return {"response_id": self.r.id, "item_id": item.id, "output_index": output_index, **more}

    async def _open_item(self, item, output_index: int) -> list[dict]:
        s = self.s
        self.r.output.append(item)
        events = [s.ev("response.output_item.added", response_id=self.r.id, output_index=output_index,
                       item=dict(item.wire))]
        if self.r.default_conversation:
            prev = s.conv.add(item)
            events += [s.ev("conversation.item.added", previous_item_id=prev, item=dict(item.wire)),
                       s.ev("conversation.item.created", previous_item_id=prev, item=dict(item.wire))]
        return events

    def _close_item(self, item, output_index: int) -> list[dict]:
        s = self.s
        events = [s.ev("response.output_item.done", response_id=self.r.id, output_index=output_index,
                       item=item.wire)]
        if self.r.default_conversation and item.id in s.conv.by_id:
            events.append(s.ev("conversation.item.done", previous_item_id=s.conv.previous(item), item=item.wire))
        return events

    # -- the message ------------------------------------------------------------------
    async def _open_message(self) -> list[dict]:
        item = self.msg = self.s.new_item({"type": "message", "status": "in_progress", "role": "assistant",
                                           "content": []})
        events = await self._open_item(item, 0)
        part = {"type": "audio", "transcript": ""} if self.p.audio else {"type": "text", "text": ""}
        events.append(self.s.ev("response.content_part.added", **self._ids(item, 0, content_index=0), part=part))
        return events

    async def _message(self, start: int, end: int) -> None:
        s, c = self.s, self.gen.choices[0]
        events = [] if self.msg is not None else await self._open_message()
        item, texts = self.msg, c.texts[max(start, c.reasoning):end]
        kind = "response.output_audio_transcript.delta" if self.p.audio else "response.output_text.delta"
        for t in texts:
            events.append(s.ev(kind, **self._ids(item, 0, content_index=0), delta=t))
        self.msg_text += texts
        self.sent = end
        await self._send(events)
        if self.speech is not None:
            async for chunk in self.speech.take(end - c.reasoning):
                self.s.spoke = True
                if self.audio_store is not None:
                    if len(self.audio_store) + len(chunk) <= conversation.MAX_AUDIO_BYTES:
                        self.audio_store += chunk
                    else:
                        self.audio_store = None  # too long to keep: the duration is kept, not the bytes
                await self._send([s.ev("response.output_audio.delta", **self._ids(item, 0, content_index=0),
                                       delta=base64.b64encode(chunk).decode("ascii"))])

    def _finish_message(self, status: str) -> list[dict]:
        s, item = self.s, self.msg
        text = "".join(self.msg_text)
        ids = self._ids(item, 0, content_index=0)
        if self.p.audio:
            events = [s.ev("response.output_audio.done", **ids),
                      s.ev("response.output_audio_transcript.done", **ids, transcript=text),
                      s.ev("response.content_part.done", **ids, part={"type": "audio", "transcript": text})]
            item.wire["content"] = [{"type": "output_audio", "transcript": text}]
            item.seconds[0] = self.speech.seconds
            if self.audio_store is not None:
                item.audio[0] = (bytes(self.audio_store), self.p.output_format)
        else:
            events = [s.ev("response.output_text.done", **ids, text=text),
                      s.ev("response.content_part.done", **ids, part={"type": "text", "text": text})]
            item.wire["content"] = [{"type": "output_text", "text": text}]
        item.wire["status"] = status
        item.changed()
        return events + self._close_item(item, 0)

    # -- function calls -----------------------------------------------------------------------
    async def _calls(self, start: int, end: int) -> None:
        s, c = self.s, self.gen.choices[0]
        events: list[dict] = []
        for step in range(start, end):
            for k, call in enumerate(c.tool_calls):
                if step == call.header_step:
                    item = self.s.new_item({"type": "function_call", "status": "in_progress", "call_id": call.id,
                                            "name": call.name, "arguments": ""})
                    self.calls_open[k] = item
                    events += await self._open_item(item, k)
                item = self.calls_open.get(k)
                if item is None:
                    continue
                if call.args_start <= step < call.args_end:
                    item.wire["arguments"] += c.texts[step]
                    events.append(s.ev("response.function_call_arguments.delta", **self._ids(item, k),
                                       call_id=call.id, delta=c.texts[step]))
                if step == max(call.header_step, call.args_end - 1):
                    events += self._finish_call(k, "completed")
        self.sent = end
        await self._send(events)

    def _finish_call(self, k: int, status: str) -> list[dict]:
        item = self.calls_open.pop(k)
        w = item.wire
        w["status"] = status
        item.changed()
        return [self.s.ev("response.function_call_arguments.done", **self._ids(item, k), call_id=w["call_id"],
                          name=w["name"], arguments=w["arguments"])] + self._close_item(item, k)

    def _finish_open(self, status: str) -> list[dict]:
        events = []
        if self.msg is not None and self.msg.wire["status"] == "in_progress":
            events += self._finish_message(status)
        for k in sorted(self.calls_open):
            events += self._finish_call(k, status)
        return events

    # -- the run ---------------------------------------------------------------------------------
    async def run(self) -> None:
        s, r = self.s, self.r
        engine, model, p = s.engine, s.model, self.p
        reservation = None
        limiter = s.app.security.limiter
        if limiter.enabled:
            budget = p.max_tokens or engine.max_new_tokens(model, len(r.prompt.ids), None, "response")
            try:
                reservation = await limiter.reserve(s.subject, model.id, len(r.prompt.ids) + budget)
            except RateLimited as e:
                await s.error(e.message, code="rate_limit_exceeded", type=e.kind, event_id=r.event_id)
                return
        try:
            self.gen = engine.generate(
                model, len(r.prompt.ids), GenParams(max_tokens=p.max_tokens), r.prompt.user_text,
                param="response.max_output_tokens", arrival=r.arrival,
                spec=OutputSpec(tools=p.tools.plan(r.prompt.after_tool)), endpoint="realtime",
                prompt_ids=r.prompt.ids)
        except EngineError as e:
            self.status = "failed"
            self.details = {"type": "failed", "error": {"type": "invalid_request_error", "code": e.code or "error"}}
            await s.send_many([s.ev("response.created", response=self.response()),
                               s.ev("response.done", response=self.response(with_usage=True))])
            await s.error(e.message, param=e.param, code=e.code, event_id=r.event_id)
            return
        await s.send_many([s.ev("response.created", response=self.response()),
                           s.ev("rate_limits.updated", rate_limits=rate_limits(reservation.headers if reservation
                                                                                 else []))])
        c = self.gen.choices[0]
        if p.audio and not c.tool_calls:
            self.speech = Speech(c.texts[c.reasoning:], p.voice, p.speed, p.output_format)
            self.speech.prefetch()
            self.audio_store = bytearray()
        try:
            async with aclosing(engine.run(self.gen)) as steps:
                async for start, end in steps:
                    await (self._calls(start, end) if c.tool_calls else self._message(start, end))
            if not c.tool_calls and self.msg is None:  # nothing generated: an empty message
                await s.send_many(await self._open_message())
            length = c.finish_reason == "length"
            self.status = "incomplete" if length else "completed"
            if length:
                self.details = {"type": "incomplete", "reason": "max_output_tokens"}
            await s.send_many(self._finish_open("incomplete" if length else "completed"))
        except asyncio.CancelledError:
            self.status = "cancelled"
            self.details = {"type": "cancelled", "reason": r.cancel_reason or "client_cancelled"}
            await s.send_many(self._finish_open("incomplete"))
        finally:
            if self.speech is not None:
                self.speech.cancel()
        if self.msg is not None or r.output:
            s.conv.bound()
        usage = self.usage()
        await s.send(s.ev("response.done", response=self.response(with_usage=True)))
        if reservation is not None:
            await reservation.settle(usage["total_tokens"])
        s.record(usage)
