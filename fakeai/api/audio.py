"""``/v1/audio/speech``, ``/v1/audio/transcriptions`` and ``/v1/audio/translations``: wire format only.

Synthesis, decoding and transcripts live in ``fakeai.services.audio`` and
``fakeai.services.transcribe``; the CPU-heavy parts (synthesis, encoding,
decoding) run in a worker thread, and every request is held for its modelled
time by the engine (see docs/audio.md).
"""

from __future__ import annotations

import asyncio
import base64
import json
import math
import random
from collections.abc import AsyncIterator, Callable
from typing import Any

from fastapi import APIRouter, Request
from starlette.datastructures import UploadFile
from starlette.responses import Response, StreamingResponse

from ..engine.core import Engine, Generation
from ..engine.logprobs import token_entry
from ..engine.multimodal import audio_tokens as input_audio_tokens
from ..engine.output import Choice
from ..lazy import lazy_import
from ..registry import ModelDef
from ..schemas.audio import SpeechRequest, TranscriptionRequest, TranslationRequest
from . import common, metering
from .body import parse, read_json, request_body
from .common import dumps
from .errors import APIError

synth = lazy_import("fakeai.services.audio")
stt = lazy_import("fakeai.services.transcribe")

router = APIRouter(tags=["audio"])

MAX_INPUT_CHARS = 4096
_CHUNK = 32 * 1024                 # bytes per write of a speech response
_SSE_CHUNK = 12 * 1024             # raw audio bytes per speech.audio.delta (a multiple of 3)
_WHISPER_FORMATS = ("json", "text", "srt", "verbose_json", "vtt")
_GPT_FORMATS = ("json", "text")
_SSE_HEADERS = {"cache-control": "no-cache", "x-accel-buffering": "no"}
_BAD_CONTENT_TYPE = ("Invalid Content-Type header ({}), expected multipart/form-data. (HINT: If you're "
                     "using curl, you can pass -H 'Content-Type: multipart/form-data')")


def _multipart(model) -> dict:
    """OpenAPI requestBody for a multipart route (the model's schema, listed in components)."""
    extra = request_body(model)
    content = extra["requestBody"]["content"]
    content["multipart/form-data"] = content.pop("application/json")
    return extra


def _base(model: ModelDef) -> str:
    return model.parent or model.id


def _whisper(model: ModelDef) -> bool:
    """whisper-1 (and its fine-tunes): every response format, translations, no streaming."""
    return _base(model).startswith("whisper")


def _classic_tts(model: ModelDef) -> bool:
    """tts-1 / tts-1-hd: the nine original voices, no SSE."""
    return _base(model).startswith("tts-")


def _quote_list(values) -> str:
    return " and ".join(", ".join(f"'{v}'" for v in values).rsplit(", ", 1))


def _sse(events: AsyncIterator[bytes]) -> StreamingResponse:
    # a Starlette response: these routes go through FastAPI, which only passes those through
    return StreamingResponse(events, media_type="text/event-stream", headers=_SSE_HEADERS)


async def _off_loop(fn: Callable, *args):
    return await asyncio.get_running_loop().run_in_executor(None, fn, *args)


# --------------------------------------------------------------------------- speech

def _speech_voice(voice, model: ModelDef) -> str:
    if not isinstance(voice, str):
        return "custom:" + voice.id
    allowed = synth.CLASSIC_VOICES if _classic_tts(model) else tuple(synth.VOICES)
    if voice not in allowed:
        raise APIError(400, f"Invalid value: '{voice}'. Supported values are: {_quote_list(allowed)}.",
                       param="voice", code="invalid_value")
    return voice


def _check_text(param: str, text: str, required: bool) -> None:
    if required and not text.strip():
        raise APIError(400, f"Invalid '{param}': string too short. Expected a string with minimum length 1, "
                       "but got an empty string instead.", param=param, code="string_below_min_length")
    if len(text) > MAX_INPUT_CHARS:
        raise APIError(400, f"Invalid '{param}': string too long. Expected a string with maximum length "
                       f"{MAX_INPUT_CHARS}, but got a string with length {len(text)} instead.",
                       param=param, code="string_above_max_length")


@router.post("/v1/audio/speech", openapi_extra=request_body(SpeechRequest),
             **common.produces("audio/*", "text/event-stream", json=False))
async def create_speech(request: Request):
    app = request.app.state
    req = parse(SpeechRequest, await read_json(request), app.settings.strict_params)
    engine: Engine = app.engine
    model = common.require_model(engine, req.model, "tts", "speech synthesis")
    voice = _speech_voice(req.voice, model)
    _check_text("input", req.input, required=True)
    _check_text("instructions", req.instructions or "", required=False)
    sse = req.stream_format == "sse"
    if sse and _classic_tts(model):
        raise APIError(400, f"stream_format 'sse' is not supported for model '{req.model}'. Use 'audio' "
                       "instead.", param="stream_format", code="unsupported_value")
    tok = engine.tokenizer(model)
    prompt_tokens = tok.count(req.input) + (tok.count(req.instructions) if req.instructions else 0)
    if prompt_tokens > model.context_window:
        raise APIError(400, f"Invalid 'input': the input is {prompt_tokens} tokens, more than the "
                       f"{model.context_window} tokens model '{req.model}' accepts.", param="input",
                       code="string_above_max_length")
    data, seconds = await _off_loop(synth.speech, req.input, voice, req.response_format, req.speed)
    await engine.simulate(model, prompt_tokens, arrival=common.arrival(request), endpoint="speech",
                          hints=common.route_hints(request))
    out_tokens = synth.audio_tokens(seconds)
    metering.record(request, "audio_speeches", req.model, characters=len(req.input), input_tokens=prompt_tokens,
                    output_tokens=out_tokens)
    if sse:
        usage = {"input_tokens": prompt_tokens, "output_tokens": out_tokens,
                 "total_tokens": prompt_tokens + out_tokens}
        return _sse(_speech_events(data, usage))
    return StreamingResponse(_chunks(data), media_type=synth.MEDIA_TYPES[req.response_format])


async def _chunks(data: bytes) -> AsyncIterator[bytes]:
    for i in range(0, len(data), _CHUNK):
        yield data[i:i + _CHUNK]


async def _speech_events(data: bytes, usage: dict) -> AsyncIterator[bytes]:
    for i in range(0, len(data), _SSE_CHUNK):
        chunk = base64.b64encode(data[i:i + _SSE_CHUNK]).decode("ascii")
        yield b"data: " + dumps({"type": "speech.audio.delta", "audio": chunk}) + b"\n\n"
    yield b"data: " + dumps({"type": "speech.audio.done", "usage": usage}) + b"\n\n"


# --------------------------------------------------------------------------- uploads

_LIST_FIELDS = frozenset({"timestamp_granularities", "include", "known_speaker_names",
                          "known_speaker_references"})


def _scalar(name: str, value: str) -> Any:
    """A form field as the JSON value it stands for (left a string when it is not one)."""
    if name == "temperature":
        try:
            return float(value)
        except ValueError:
            return value
    if name == "stream":
        return {"true": True, "false": False}.get(value.strip().lower(), value)
    if name == "chunking_strategy" and value.lstrip().startswith("{"):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


async def _form(request: Request) -> tuple[dict[str, Any], str]:
    """(fields with the file as bytes, the file's name) of a multipart upload."""
    ctype = request.headers.get("content-type", "")
    if not ctype.lower().startswith("multipart/form-data"):
        raise APIError(400, _BAD_CONTENT_TYPE.format(ctype or "none"))
    fields: dict[str, Any] = {}
    filename = ""
    try:
        async with request.form() as form:
            for key, value in form.multi_items():
                name = key.removesuffix("[]")
                if isinstance(value, UploadFile):
                    fields[name] = await value.read()
                    filename = value.filename or ""
                elif name in _LIST_FIELDS:
                    fields.setdefault(name, []).append(value)
                else:
                    fields[name] = _scalar(name, value)
    except APIError:
        raise
    except Exception:  # noqa: BLE001 - python-multipart raises several types on a malformed body
        raise APIError(400, "Could not parse multipart form data.") from None
    return fields, filename


async def _audio_seconds(data: bytes, filename: str) -> float:
    ext = filename.rsplit(".", 1)[1].lower() if "." in filename else ""
    if ext and ext not in stt.EXTENSIONS:
        raise APIError(400, f"Invalid file format. Supported formats: {list(stt.EXTENSIONS)}",
                       param="file", code="invalid_value")
    if len(data) > stt.MAX_FILE_BYTES:
        raise APIError(413, f"Maximum content size limit ({stt.MAX_FILE_BYTES}) exceeded ({len(data)} "
                       "bytes read)", param="file", code="file_too_large")
    try:
        return await _off_loop(stt.decode_seconds, data)
    except stt.AudioError:
        raise APIError(400, "Audio file might be corrupted or unsupported", param="file",
                       code="invalid_value") from None


_ENDPOINTS = {"transcribe": "transcriptions", "translate": "translations"}  # request records


def _check_model(engine: Engine, model_id: str, task: str) -> ModelDef:
    model = engine.model(model_id)
    if not model.capabilities.transcription or (task == "translate" and not _whisper(model)):
        what = "transcriptions" if task == "transcribe" else "translations"
        raise APIError(400, f"The model `{model_id}` does not support audio {what}.", param="model",
                       code="model_not_supported")
    return model


def _check_format(fmt: str, model: ModelDef, model_id: str) -> None:
    allowed = _WHISPER_FORMATS if _whisper(model) else _GPT_FORMATS
    if fmt not in allowed:
        raise APIError(400, f"response_format '{fmt}' is not compatible with model '{model_id}'. "
                       f"Use {_quote_list(allowed).replace(' and ', ' or ')} instead.",
                       param="response_format", code="unsupported_value")


@router.post("/v1/audio/transcriptions", openapi_extra=_multipart(TranscriptionRequest),
             **common.produces("text/plain", "text/event-stream"))
async def create_transcription(request: Request):
    app = request.app.state
    fields, filename = await _form(request)
    req = parse(TranscriptionRequest, fields, app.settings.strict_params)
    engine: Engine = app.engine
    model = _check_model(engine, req.model, "transcribe")
    _check_format(req.response_format, model, req.model)
    if req.timestamp_granularities and req.response_format != "verbose_json":
        raise APIError(400, "timestamp_granularities is only supported when response_format is "
                       "'verbose_json'.", param="timestamp_granularities", code="unsupported_value")
    language = stt.language_name(req.language)
    if language is None:
        raise APIError(400, f"Invalid language '{req.language}'. Language parameter must be specified in "
                       "ISO-639-1 format.", param="language", code="invalid_language_format")
    whisper = _whisper(model)
    granularity = set(req.timestamp_granularities or ("segment",))
    return await _answer(request, engine, model, req, filename, "transcribe", language,
                         stream=bool(req.stream) and not whisper,   # whisper-1 ignores `stream`
                         logprobs=bool(req.include) and not whisper and req.response_format == "json",
                         words="word" in granularity, segments="segment" in granularity)


@router.post("/v1/audio/translations", openapi_extra=_multipart(TranslationRequest),
             **common.produces("text/plain"))
async def create_translation(request: Request):
    app = request.app.state
    fields, filename = await _form(request)
    req = parse(TranslationRequest, fields, app.settings.strict_params)
    engine: Engine = app.engine
    model = _check_model(engine, req.model, "translate")
    return await _answer(request, engine, model, req, filename, "translate", "english",
                         stream=False, logprobs=False, words=False, segments=True)


# --------------------------------------------------------------------------- transcripts

async def _answer(request: Request, engine: Engine, model: ModelDef, req, filename: str, task: str,
                  language: str, *, stream: bool, logprobs: bool, words: bool, segments: bool) -> Response:
    """Decode the upload, make its transcript, hold it for the modelled time, render it."""
    seconds = await _audio_seconds(req.file, filename)
    script = stt.transcript(req.file, seconds, req.prompt)
    tok = engine.tokenizer(model)
    ids = tok.encode(script.text)
    text_in = tok.count(req.prompt) if req.prompt else 0
    audio_in = input_audio_tokens(seconds, model.id)
    usage = {"type": "tokens", "input_tokens": text_in + audio_in,
             "input_token_details": {"text_tokens": text_in, "audio_tokens": audio_in},
             "output_tokens": len(ids), "total_tokens": text_in + audio_in + len(ids)}
    entries = None
    if logprobs:
        rng = random.Random(stt.file_seed(req.file) ^ 1)
        entries = [{k: v for k, v in token_entry(tok, t, tok.token_text(t), rng, 0).items()
                    if k != "top_logprobs"} for t in ids]
    arrival = common.arrival(request)
    billed = {"seconds": math.ceil(script.seconds), "input_tokens": usage["input_tokens"], "output_tokens": len(ids)}
    if stream:
        texts = [tok.token_text(t) for t in ids]
        gen = Generation(model, usage["input_tokens"], [Choice(ids, texts, "stop")],
                         engine.latency(model).timing(usage["input_tokens"]), arrival=arrival,
                         endpoint=_ENDPOINTS[task], hints=common.route_hints(request))
        metering.record(request, "audio_transcriptions", req.model, **billed)
        return _sse(_transcript_events(engine, gen, script.text, entries, usage))
    await engine.simulate(model, usage["input_tokens"], len(ids), arrival=arrival, endpoint=_ENDPOINTS[task],
                          hints=common.route_hints(request))
    metering.record(request, "audio_transcriptions", req.model, **billed)
    if _whisper(model):                                  # whisper-1 is billed by the second
        usage = {"type": "duration", "seconds": math.ceil(script.seconds)}
    fmt = req.response_format
    if fmt == "text":
        return Response(script.text + "\n", media_type="text/plain; charset=utf-8")
    if fmt in ("srt", "vtt"):
        return Response(_subtitles(script, fmt), media_type="text/plain; charset=utf-8")
    if fmt == "json":
        body: dict[str, Any] = {"text": script.text}
        if task == "transcribe":
            body["usage"] = usage
        if entries is not None:
            body["logprobs"] = entries
        return common.json_response(dumps(body))
    body = _verbose(script, task, language, req.temperature, tok, words, segments)
    if task == "transcribe":
        body["usage"] = usage
    return common.json_response(dumps(body))


def _verbose(script: stt.Transcript, task: str, language: str, temperature: float, tok,
             words: bool, segments: bool) -> dict[str, Any]:
    """The verbose_json body (without usage)."""
    body: dict[str, Any] = {"task": task, "language": language, "duration": script.seconds,
                            "text": script.text}
    if segments:
        body["segments"] = [
            {"id": i, "seek": int(s.start * 100) // 3000 * 3000, "start": s.start, "end": s.end,
             "text": " " + s.text, "tokens": tok.encode(" " + s.text), "temperature": temperature,
             "avg_logprob": s.avg_logprob, "compression_ratio": round(s.compression_ratio, 6),
             "no_speech_prob": s.no_speech_prob}
            for i, s in enumerate(script.segments)]
    if words:
        body["words"] = [{"word": w, "start": a, "end": b} for w, a, b in script.words]
    return body


def _timestamp(seconds: float, sep: str) -> str:
    ms = round(seconds * 1000)
    return f"{ms // 3_600_000:02d}:{ms // 60_000 % 60:02d}:{ms // 1000 % 60:02d}{sep}{ms % 1000:03d}"


def _subtitles(script: stt.Transcript, fmt: str) -> str:
    """SubRip or WebVTT cues, one per segment."""
    sep = "," if fmt == "srt" else "."
    cues = [f"{_timestamp(s.start, sep)} --> {_timestamp(s.end, sep)}\n{s.text}\n" for s in script.segments]
    if fmt == "srt":
        return "\n".join(f"{i}\n{cue}" for i, cue in enumerate(cues, 1))
    return "WEBVTT\n\n" + "\n".join(cues)


async def _transcript_events(engine: Engine, gen: Generation, text: str, entries: list[dict] | None,
                             usage: dict) -> AsyncIterator[bytes]:
    texts = gen.choices[0].texts
    async for start, end in engine.run(gen):
        out = []
        for i in range(start, end):
            event: dict[str, Any] = {"type": "transcript.text.delta", "delta": texts[i]}
            if entries is not None:
                event["logprobs"] = [entries[i]]
            out.append(b"data: " + dumps(event) + b"\n\n")
        yield b"".join(out)
    done: dict[str, Any] = {"type": "transcript.text.done", "text": text, "usage": usage}
    if entries is not None:
        done["logprobs"] = entries
    yield b"data: " + dumps(done) + b"\n\n"
