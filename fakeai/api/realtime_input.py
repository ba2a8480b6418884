"""Input audio of a Realtime session: the buffer, server-VAD turns and input transcription.

``input_audio_buffer.append`` decodes the base64 audio (in the session's input format),
appends it and, with turn detection on, runs the voice activity detector
(``fakeai.services.vad``) over the decoded samples: ``speech_started`` (and, with
``interrupt_response``, the active response is cancelled), then ``speech_stopped``, an
automatic commit of the turn (from its padded start to its end) and, with
``create_response``, a response. While nobody speaks, audio older than the prefix
padding is dropped: the buffer stays small however long the client streams silence.

A commit makes a user message item with the audio. With input transcription on, its
transcript (``fakeai.services.transcribe``: fake words, deterministic in the audio
bytes, ~2.5 words per second) streams as ``...input_audio_transcription.delta`` events
paced by the engine on the transcription model, then ``...completed`` with its usage.
"""

from __future__ import annotations

import asyncio
import math
import random
from contextlib import aclosing

from ..engine.core import Generation
from ..engine.logprobs import token_entry
from ..engine.multimodal import audio_tokens
from ..engine.output import Choice
from ..lazy import lazy_import

raudio = lazy_import("fakeai.services.realtime_audio")
vadlib = lazy_import("fakeai.services.vad")
stt = lazy_import("fakeai.services.transcribe")
conversation = lazy_import("fakeai.services.realtime_conversation")
realtime = lazy_import("fakeai.services.realtime")
compose = lazy_import("fakeai.engine.compose")

MIN_COMMIT_MS = 100  # OpenAI refuses to commit less than 100 ms of audio


class Input:
    def __init__(self, session) -> None:
        self.s = session
        self.buffer = raudio.InputBuffer(session.cfg.input_format)
        self.vad = None
        self._td: dict | None = None
        self.turn_item: str | None = None   # the item speech_started announced
        self.turn_start = 0
        self.configure()

    def configure(self) -> None:
        """Follow the session's input format and turn detection (after a session.update)."""
        cfg = self.s.cfg
        if cfg.input_format is not self.buffer.fmt:  # audio in the old format cannot be mixed in
            self.buffer = raudio.InputBuffer(cfg.input_format, self.buffer.end_ms)
            self._td = None
        td = cfg.turn_detection
        if td == self._td:
            return
        self._td = None if td is None else dict(td)
        self.turn_item = None
        if td is None:
            self.vad = None
            return
        silence = (td["silence_duration_ms"] if td["type"] == "server_vad"
                   else vadlib.eagerness_silence_ms(td["eagerness"]))
        self.vad = vadlib.VAD(self.buffer.fmt.rate, td.get("threshold", 0.5), td.get("prefix_padding_ms", 300),
                              silence, start_ms=int(self.buffer.end_ms))

    # -- client events ----------------------------------------------------------------
    async def append(self, ev: dict) -> None:
        if "audio" not in ev:
            raise realtime.bad("Missing required parameter: 'audio'.", "audio", "missing_required_parameter")
        buf = self.buffer
        data = conversation.decode_audio(ev["audio"], buf.fmt)
        if len(buf.data) + len(data) > raudio.MAX_BUFFER_BYTES:
            raise realtime.bad(f"The input audio buffer is full ({raudio.MAX_BUFFER_BYTES} bytes): commit or clear "
                               "it first.", "audio", "input_audio_buffer_full")
        buf.append(data)
        vad = self.vad
        if vad is None or not data:
            return
        for e in vad.feed(buf.fmt.decode(data)):
            if e.kind == "speech_started":
                await self._started(e.ms)
            else:
                await self._stopped(e.ms)
        if not vad.speaking:  # no turn can reach back further than the padding
            buf.drop_before(vad.position_ms - vad.padding_ms - vadlib.MIN_SPEECH_MS - vadlib.FRAME_MS)

    async def commit(self) -> None:
        buf = self.buffer
        have = buf.end_ms - buf.start_ms
        if have < MIN_COMMIT_MS:
            raise realtime.bad(f"Error committing input audio buffer: buffer too small. Expected at least "
                               f"{MIN_COMMIT_MS}ms of audio, but buffer only has {have:.2f}ms of audio.",
                               None, "input_audio_buffer_commit_empty")
        item_id = self.turn_item
        if self.vad is not None:
            self.vad.reset(int(buf.end_ms))
            self.turn_item = None
        await self._commit(None, None, item_id)

    async def clear(self) -> None:
        self.buffer.clear()
        if self.vad is not None:
            self.vad.reset(int(self.buffer.end_ms))
        self.turn_item = None
        await self.s.send(self.s.ev("input_audio_buffer.cleared"))

    # -- turns ------------------------------------------------------------------------
    async def _started(self, ms: int) -> None:
        s = self.s
        self.turn_item, self.turn_start = realtime.new_id("item_"), ms
        await s.send(s.ev("input_audio_buffer.speech_started", audio_start_ms=ms, item_id=self.turn_item))
        if self._td.get("interrupt_response", True) and s.active is not None:
            s.cancel(s.active, "turn_detected")
            await s.settle_cancelled()  # its response.done goes out before the turn goes on

    async def _stopped(self, ms: int) -> None:
        s = self.s
        item_id = self.turn_item or realtime.new_id("item_")
        self.turn_item = None
        await s.send(s.ev("input_audio_buffer.speech_stopped", audio_end_ms=ms, item_id=item_id))
        await self._commit(ms, self.turn_start, item_id)
        await s.settle_cancelled()
        if self._td.get("create_response", True) and s.active is None:
            s.start_response(realtime.response_params(s.cfg, None), None)

    async def _commit(self, until_ms, since_ms, item_id: str | None) -> None:
        s = self.s
        data, _ = self.buffer.take(until_ms, since_ms)
        fmt = self.buffer.fmt
        item = s.new_item({"type": "message", "status": "completed", "role": "user",
                           "content": [{"type": "input_audio"}]}, item_id)
        seconds = fmt.seconds(len(data))
        item.audio[0], item.seconds[0] = (data, fmt), seconds
        tr = s.cfg.transcription
        item.heard = stt.transcript(data, seconds, (tr or {}).get("prompt")).text
        prev = s.conv.add(item)
        wire = item.wire
        await s.send_many([s.ev("input_audio_buffer.committed", previous_item_id=prev, item_id=item.id),
                           s.ev("conversation.item.added", previous_item_id=prev, item=dict(wire)),
                           s.ev("conversation.item.created", previous_item_id=prev, item=dict(wire)),
                           s.ev("conversation.item.done", previous_item_id=prev, item=dict(wire))])
        if tr is not None:
            s.spawn(self._transcribe(item, tr))

    # -- transcription ----------------------------------------------------------------------
    async def _transcribe(self, item, tr: dict) -> None:
        s = self.s
        engine = s.engine
        model = engine.model(tr["model"])
        tok = engine.tokenizer(model)
        text, seconds = item.heard, item.seconds[0]
        ids = tok.encode(text)
        texts = compose.exact_texts(tok, ids)
        text_in = tok.count(tr["prompt"]) if tr.get("prompt") else 0
        audio_in = audio_tokens(seconds, model.id)
        gen = Generation(model, text_in + audio_in, [Choice(ids, texts, "stop")],
                         engine.latency(model).timing(text_in + audio_in),
                         arrival=asyncio.get_running_loop().time(), endpoint="transcriptions")
        logprobs = bool(s.cfg.include)
        rng = random.Random(stt.file_seed(item.audio[0][0]) ^ 1)
        entries = [{k: v for k, v in token_entry(tok, t, x, rng, 0).items() if k != "top_logprobs"}
                   for t, x in zip(ids, texts)] if logprobs else None
        async with aclosing(engine.run(gen)) as steps:
            async for a, b in steps:
                await s.send_many([s.ev("conversation.item.input_audio_transcription.delta", item_id=item.id,
                                        content_index=0, delta=texts[k],
                                        logprobs=[entries[k]] if entries else None) for k in range(a, b)])
        item.wire["content"][0]["transcript"] = text
        if "whisper" in model.id:
            usage = {"type": "duration", "seconds": round(seconds, 3)}
        else:
            usage = {"type": "tokens", "input_tokens": text_in + audio_in,
                     "input_token_details": {"text_tokens": text_in, "audio_tokens": audio_in},
                     "output_tokens": len(ids), "total_tokens": text_in + audio_in + len(ids)}
        await s.send(s.ev("conversation.item.input_audio_transcription.completed", item_id=item.id, content_index=0,
                          transcript=text, usage=usage, logprobs=entries))
        s.app.usage.record("audio_transcriptions", tr["model"], request=s.ws, seconds=math.ceil(seconds),
                           input_tokens=text_in + audio_in, output_tokens=len(ids))
