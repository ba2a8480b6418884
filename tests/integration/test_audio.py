"""The audio endpoints over loopback: speech, transcriptions, translations (official SDK and httpx).

Speech is decoded with independent decoders (libsndfile through soundfile, FFmpeg
through PyAV) and measured; uploads are made here with numpy + soundfile at known
durations; subtitles are parsed by a small parser below; every JSON body and stream
event is validated against the OpenAI spec.
"""

from __future__ import annotations

import base64
import io
import json
import math
import re
import time

import av
import numpy as np
import openai
import pytest
import soundfile as sf

from fakeai.engine.tokenizer import get_tokenizer
from tests.openapi_spec import validate, validate_error
from tests.server import run_server

SR = 24_000
TEXT = ("Every morning the baker opens the shop, lights the ovens, and greets the first customers "
        "before the sun rises over the quiet town.")                     # 23 words -> 9.2 s
SECONDS = 23 / 2.5
O200K = get_tokenizer("o200k_base")


# -- helpers ---------------------------------------------------------------------------

def decode(data: bytes, fmt: str) -> tuple[np.ndarray, int]:
    if fmt == "pcm":
        return np.frombuffer(data, "<i2").astype(np.float64) / 32768, SR
    if fmt == "aac":
        with av.open(io.BytesIO(data)) as c:
            frames = [f.to_ndarray().reshape(-1) for f in c.decode(audio=0)]
            return np.concatenate(frames).astype(np.float64), c.streams.audio[0].sample_rate
    return sf.read(io.BytesIO(data))


def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x))))


def pitch(x: np.ndarray) -> float:
    """Median fundamental (Hz) of the loud 40 ms frames, by autocorrelation."""
    n = int(0.04 * SR)
    frames = [x[i:i + n] for i in range(0, len(x) - n, n)]
    top = max(rms(f) for f in frames)
    lo, hi = SR // 300, SR // 70
    found = [SR / (lo + int(np.argmax(np.correlate(f, f, "full")[n - 1:][lo:hi])))
             for f in frames if rms(f) > 0.5 * top]
    return float(np.median(found))


def tone_file(seconds: float, fmt: str, rate: int = 16_000) -> bytes:
    """A syllable-modulated tone of exactly `seconds`, encoded as `fmt` (wav, flac, mp3)."""
    t = np.arange(int(seconds * rate)) / rate
    x = 0.3 * np.sin(2 * np.pi * 180 * t) * (0.6 + 0.4 * np.sin(2 * np.pi * 4 * t))
    buf = io.BytesIO()
    subtype = {"wav": "PCM_16", "flac": "PCM_16", "mp3": "MPEG_LAYER_III"}[fmt]
    sf.write(buf, x, rate, format=fmt.upper(), subtype=subtype)
    return buf.getvalue()


def parse_subtitles(text: str, fmt: str) -> list[tuple[float, float, str]]:
    """(start, end, text) cues of a SubRip or WebVTT document; asserts the syntax."""
    sep = "," if fmt == "srt" else r"\."
    stamp = rf"(\d\d):(\d\d):(\d\d){sep}(\d\d\d)"
    if fmt == "vtt":
        assert text.startswith("WEBVTT\n\n")
        text = text[len("WEBVTT\n\n"):]
    cues = []
    for i, block in enumerate(b for b in text.strip("\n").split("\n\n") if b):
        lines = block.split("\n")
        if fmt == "srt":
            assert lines.pop(0) == str(i + 1)
        m = re.fullmatch(rf"{stamp} --> {stamp}", lines[0])
        assert m, lines[0]
        g = [int(v) for v in m.groups()]
        start = g[0] * 3600 + g[1] * 60 + g[2] + g[3] / 1000
        end = g[4] * 3600 + g[5] * 60 + g[6] + g[7] / 1000
        cues.append((start, end, " ".join(lines[1:])))
    return cues


def events(response) -> list[dict]:
    return [json.loads(line[6:]) for line in response.text.split("\n") if line.startswith("data: ")]


def check_timeline(spans: list[tuple[float, float]], seconds: float) -> None:
    """Monotonic, well-formed, and covering [0, seconds]."""
    flat = [x for span in spans for x in span]
    assert flat == sorted(flat)
    assert all(a <= b for a, b in spans)
    assert flat[0] == 0.0 and flat[-1] == pytest.approx(seconds, abs=0.011)


# -- speech ----------------------------------------------------------------------------

@pytest.mark.parametrize("fmt", ["mp3", "opus", "aac", "flac", "wav", "pcm"])
def test_speech_every_format_is_real_audio(client, fmt):
    raw = client.audio.speech.with_raw_response.create(model="tts-1", voice="alloy", input=TEXT,
                                                        response_format=fmt)
    assert raw.headers["content-type"] == {"mp3": "audio/mpeg", "opus": "audio/opus", "aac": "audio/aac",
                                           "flac": "audio/flac", "wav": "audio/wav", "pcm": "audio/pcm"}[fmt]
    assert raw.headers.get("transfer-encoding") == "chunked"
    x, rate = decode(raw.parse().read(), fmt)
    assert rate == SR
    assert len(x) / rate == pytest.approx(SECONDS, rel=0.05)
    assert rms(x) > 0.05                                            # well above silence (~-20 dBFS)


def test_voices_differ_and_requests_are_deterministic(client):
    def wav(voice):
        return client.audio.speech.create(model="gpt-4o-mini-tts", voice=voice, input=TEXT,
                                          response_format="wav").read()
    onyx, shimmer = wav("onyx"), wav("shimmer")
    assert onyx == wav("onyx")
    assert onyx != shimmer
    low, high = pitch(decode(onyx, "wav")[0]), pitch(decode(shimmer, "wav")[0])
    assert 85 < low < 130 and 190 < high < 250, (low, high)
    ballad = wav("ballad")                                          # gpt-4o-mini-tts only voice
    assert ballad not in (onyx, shimmer) and rms(decode(ballad, "wav")[0]) > 0.05


@pytest.mark.parametrize("speed", [0.5, 2.0, 4.0])
def test_speed_scales_duration(client, speed):
    x, rate = decode(client.audio.speech.create(model="tts-1-hd", voice="nova", input=TEXT,
                                                response_format="flac", speed=speed).read(), "flac")
    assert len(x) / rate == pytest.approx(SECONDS / speed, rel=0.01)


def test_speech_sse_stream(server):
    instructions = "Speak in a cheerful and positive tone."
    with server.http() as h:
        r = h.post("/v1/audio/speech", json={"model": "gpt-4o-mini-tts", "voice": "coral", "input": TEXT,
                                             "instructions": instructions, "stream_format": "sse",
                                             "response_format": "wav"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
    evs = events(r)
    for e in evs:
        validate("CreateSpeechResponseStreamEvent", e)
    assert [e["type"] for e in evs] == ["speech.audio.delta"] * (len(evs) - 1) + ["speech.audio.done"]
    assert len(evs) > 3                                             # the file comes in several chunks
    validate("SpeechAudioDoneEvent", evs[-1])
    audio = b"".join(base64.b64decode(e["audio"]) for e in evs[:-1])
    x, rate = decode(audio, "wav")
    assert len(x) / rate == pytest.approx(SECONDS, rel=0.05) and rms(x) > 0.05
    usage = evs[-1]["usage"]
    assert usage["input_tokens"] == len(O200K.encode(TEXT)) + len(O200K.encode(instructions))
    assert usage["output_tokens"] > SECONDS * 10                    # audio tokens grow with the audio
    assert usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"]


@pytest.mark.parametrize("body, status, param", [
    ({"voice": "robot"}, 400, "voice"),
    ({"voice": "ballad"}, 400, "voice"),                            # not a tts-1 voice
    ({"response_format": "ogg"}, 400, "response_format"),
    ({"speed": 0.1}, 400, "speed"),
    ({"speed": 4.5}, 400, "speed"),
    ({"speed": "fast"}, 400, "speed"),
    ({"input": ""}, 400, "input"),
    ({"input": "   "}, 400, "input"),
    ({"input": "a" * 4097}, 400, "input"),
    ({"model": "gpt-4o-mini-tts", "instructions": "b" * 4097}, 400, "instructions"),
    ({"model": "gpt-4o-mini-tts", "input": "".join(chr(0x4E00 + i * 37 % 20000) for i in range(4000))},
     400, "input"),                                                 # 4000 chars, ~7600 tokens > 2000
    ({"stream_format": "sse"}, 400, "stream_format"),               # sse: not for tts-1
    ({"model": "gpt-4o-mini"}, 400, "model"),
    ({"model": "text-embedding-3-small"}, 400, "model"),
    ({"model": "no-such-model"}, 404, "model"),
    ({"voice": None}, 400, "voice"),
])
def test_speech_errors(server, body, status, param):
    payload = {"model": "tts-1", "voice": "alloy", "input": "Hello there.", **body}
    with server.http() as h:
        r = h.post("/v1/audio/speech", json={k: v for k, v in payload.items() if v is not None})
    assert r.status_code == status, r.text
    validate_error(r.json())
    assert r.json()["error"]["param"] == param


def test_speech_input_at_the_limit_and_custom_voice(client):
    x, rate = decode(client.audio.speech.create(model="gpt-4o-mini-tts", voice={"id": "voice_1234"},
                                                input="word " * 819, response_format="pcm").read(), "pcm")
    assert len(x) / rate == pytest.approx(819 / 2.5, rel=0.01) and rms(x) > 0.05


# -- transcriptions --------------------------------------------------------------------

UPLOADS = {"wav": 4.0, "flac": 10.0, "mp3": 6.0}


@pytest.fixture(scope="module")
def uploads():
    return {fmt: tone_file(seconds, fmt) for fmt, seconds in UPLOADS.items()}


@pytest.mark.parametrize("fmt", list(UPLOADS))
def test_transcription_every_response_format(client, uploads, fmt):
    data, seconds = uploads[fmt], UPLOADS[fmt]                     # decoded exactly (MP3: gapless tag)
    file = (f"clip.{fmt}", data)
    js = client.audio.transcriptions.create(model="whisper-1", file=file).model_dump(exclude_unset=True)
    validate("CreateTranscriptionResponseJson", js)
    text = js["text"]
    assert len(text.split()) == pytest.approx(seconds * 2.5, abs=1)
    plain = client.audio.transcriptions.create(model="whisper-1", file=file, response_format="text")
    assert plain.strip() == text                                    # same file, same words
    for sub in ("srt", "vtt"):
        cues = parse_subtitles(client.audio.transcriptions.create(model="whisper-1", file=file,
                                                                  response_format=sub), sub)
        check_timeline([(a, b) for a, b, _ in cues], seconds)
        assert " ".join(t for _, _, t in cues) == text
    verbose = client.audio.transcriptions.create(model="whisper-1", file=file, response_format="verbose_json",
                                                 timestamp_granularities=["word", "segment"])
    body = verbose.model_dump(exclude_unset=True)
    validate("CreateTranscriptionResponseVerboseJson", body)
    assert body["task"] == "transcribe" and body["language"] == "english" and body["text"] == text
    assert body["duration"] == pytest.approx(seconds, abs=0.005)
    assert js["usage"] == body["usage"] == {"type": "duration", "seconds": math.ceil(body["duration"])}
    check_timeline([(s["start"], s["end"]) for s in body["segments"]], body["duration"])
    check_timeline([(w["start"], w["end"]) for w in body["words"]], body["duration"])
    assert [w["word"] for w in body["words"]] == [re.sub(r"[^\w'-]", "", w) for w in text.split()]
    assert "".join(s["text"] for s in body["segments"]).strip() == text
    tok = get_tokenizer("cl100k_base")                              # whisper-1's vocabulary here
    assert all(tok.decode(s["tokens"]) == s["text"] for s in body["segments"])


def test_timestamp_granularities_control_words_and_segments(client, uploads):
    file = ("clip.wav", uploads["wav"])
    default = client.audio.transcriptions.create(model="whisper-1", file=file, response_format="verbose_json")
    assert default.segments and default.words is None
    words = client.audio.transcriptions.create(model="whisper-1", file=file, response_format="verbose_json",
                                               timestamp_granularities=["word"])
    assert words.words and words.segments is None


def test_speech_round_trip_and_other_containers(client):
    """The server's own speech, uploaded back as MP3 and as AAC in an M4A container."""
    mp3 = client.audio.speech.create(model="tts-1", voice="echo", input=TEXT).read()
    aac = client.audio.speech.create(model="tts-1", voice="echo", input=TEXT, response_format="aac").read()
    m4a = io.BytesIO()
    with av.open(io.BytesIO(aac)) as src, av.open(m4a, "w", format="ipod") as dst:   # remux, no re-encode
        out = dst.add_stream_from_template(src.streams.audio[0])
        for packet in src.demux(src.streams.audio[0]):
            if packet.dts is not None:
                packet.stream = out
                dst.mux(packet)
    for name, data in (("speech.mp3", mp3), ("speech.m4a", m4a.getvalue())):
        v = client.audio.transcriptions.create(model="whisper-1", file=(name, data),
                                               response_format="verbose_json")
        assert v.duration == pytest.approx(SECONDS, rel=0.02), name
        assert len(v.text.split()) == pytest.approx(23, abs=1)


def test_gpt4o_transcribe_json_usage_and_logprobs(client, uploads):
    seconds = UPLOADS["flac"]
    r = client.audio.transcriptions.create(model="gpt-4o-transcribe", file=("a.flac", uploads["flac"]),
                                           prompt="A talk about bread.", include=["logprobs"])
    body = r.model_dump(exclude_unset=True)
    validate("CreateTranscriptionResponseJson", body)
    usage = body["usage"]
    assert usage["type"] == "tokens"
    assert usage["output_tokens"] == len(O200K.encode(body["text"]))
    assert usage["input_token_details"]["text_tokens"] == len(O200K.encode("A talk about bread."))
    assert usage["input_token_details"]["audio_tokens"] >= seconds * 5
    assert usage["input_tokens"] == sum(usage["input_token_details"].values())
    assert usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"]
    assert "".join(lp["token"] for lp in body["logprobs"]) == body["text"]
    assert all(lp["logprob"] < 0 and bytes(map(int, lp["bytes"])) == lp["token"].encode() for lp in body["logprobs"])
    text = client.audio.transcriptions.create(model="gpt-4o-mini-transcribe", file=("a.flac", uploads["flac"]),
                                              response_format="text")
    assert len(text.split()) == 25


def test_transcription_stream(client, server, uploads):
    stream = client.audio.transcriptions.create(model="gpt-4o-mini-transcribe", file=("a.wav", uploads["wav"]),
                                                stream=True, include=["logprobs"])
    got = [e.model_dump(exclude_unset=True) for e in stream]
    for e in got:
        validate("CreateTranscriptionResponseStreamEvent", e)
    deltas, done = got[:-1], got[-1]
    assert done["type"] == "transcript.text.done" and {e["type"] for e in deltas} == {"transcript.text.delta"}
    assert len(deltas) > 5 and "".join(e["delta"] for e in deltas) == done["text"]
    assert len(done["text"].split()) == 10
    assert [lp for e in deltas for lp in e["logprobs"]] == done["logprobs"]
    validate("TranscriptTextUsageTokens", done["usage"])
    with server.http() as h:                                          # whisper-1 ignores `stream`
        r = h.post("/v1/audio/transcriptions", files={"file": ("a.wav", uploads["wav"])},
                   data={"model": "whisper-1", "stream": "true"})
    assert r.headers["content-type"] == "application/json" and r.json()["text"]


@pytest.mark.filterwarnings("ignore::DeprecationWarning")            # the SDK marks translations deprecated
@pytest.mark.parametrize("fmt", ["json", "text", "srt", "verbose_json", "vtt"])
def test_translations(client, uploads, fmt):
    r = client.audio.translations.create(model="whisper-1", file=("a.mp3", uploads["mp3"]), response_format=fmt)
    if fmt == "json":
        validate("CreateTranslationResponseJson", r.model_dump(exclude_unset=True))
        assert len(r.text.split()) == pytest.approx(15, abs=1)
    elif fmt == "verbose_json":
        body = r.model_dump(exclude_unset=True)
        validate("CreateTranslationResponseVerboseJson", body)
        assert body["task"] == "translate" and body["language"] == "english"
        check_timeline([(s["start"], s["end"]) for s in body["segments"]], body["duration"])
    elif fmt == "text":
        assert r.endswith("\n") and r.strip()[-1] == "."
    else:
        cues = parse_subtitles(r, fmt)
        assert cues[0][0] == 0.0 and cues[-1][1] == pytest.approx(6.0, rel=0.05)


@pytest.mark.parametrize("fields, file, status, param", [
    ({}, ("a.wav", b"RIFF....WAVEjunk" * 64), 400, "file"),                # corrupt
    ({}, ("a.mp3", bytes(range(256)) * 64), 400, "file"),
    ({}, ("a.wav", b""), 400, "file"),                                     # empty
    ({}, ("notes.txt", b"hello"), 400, "file"),                            # not an audio extension
    ({}, None, 400, "file"),                                               # missing
    ({"model": "gpt-4o-mini"}, "wav", 400, "model"),
    ({"model": "tts-1"}, "wav", 400, "model"),
    ({"model": "no-such-model"}, "wav", 404, "model"),
    ({"response_format": "xml"}, "wav", 400, "response_format"),
    ({"model": "gpt-4o-transcribe", "response_format": "verbose_json"}, "wav", 400, "response_format"),
    ({"model": "gpt-4o-transcribe", "response_format": "srt"}, "wav", 400, "response_format"),
    ({"language": "klingon"}, "wav", 400, "language"),
    ({"temperature": "2"}, "wav", 400, "temperature"),
    ({"temperature": "warm"}, "wav", 400, "temperature"),
    ({"timestamp_granularities[]": "word"}, "wav", 400, "timestamp_granularities"),
    ({"timestamp_granularities[]": "char", "response_format": "verbose_json"}, "wav", 400,
     "timestamp_granularities[0]"),
])
def test_transcription_errors(server, uploads, fields, file, status, param):
    if file == "wav":
        file = ("a.wav", uploads["wav"])
    data = {"model": "whisper-1", **fields}
    with server.http() as h:
        r = h.post("/v1/audio/transcriptions", data=data, files={"file": file} if file else {"x": (None, "")})
    assert r.status_code == status, r.text
    validate_error(r.json())
    assert r.json()["error"]["param"] == param


def test_upload_errors_of_the_request_itself(server, uploads):
    with server.http() as h:
        r = h.post("/v1/audio/transcriptions", json={"model": "whisper-1"})
        assert r.status_code == 400 and "multipart/form-data" in r.json()["error"]["message"]
        r = h.post("/v1/audio/translations", data={"model": "gpt-4o-transcribe"},
                   files={"file": ("a.wav", uploads["wav"])})
        assert r.status_code == 400 and r.json()["error"]["param"] == "model"
        big = uploads["wav"] + bytes(25 * 1024 * 1024)                  # over OpenAI's 25 MB limit
        r = h.post("/v1/audio/transcriptions", data={"model": "whisper-1"}, files={"file": ("big.wav", big)})
        assert r.status_code == 413
        validate_error(r.json())
    with pytest.raises(openai.BadRequestError):
        server.client().audio.transcriptions.create(model="whisper-1", file=("a.ogg", b"OggS" + bytes(100)))


def test_modelled_time_and_strict_params(uploads):
    with run_server("--ttft", "300", "--itl", "0", "--strict-params") as s:
        client = s.client()
        client.audio.speech.create(model="tts-1", voice="alloy", input="warm up").read()
        t0 = time.perf_counter()
        client.audio.speech.create(model="tts-1", voice="alloy", input="Hello there.").read()
        assert time.perf_counter() - t0 >= 0.3
        t0 = time.perf_counter()
        client.audio.transcriptions.create(model="whisper-1", file=("a.wav", uploads["wav"]))
        assert time.perf_counter() - t0 >= 0.3
        with s.http() as h:                                          # form fields are checked like JSON
            r = h.post("/v1/audio/transcriptions", data={"model": "whisper-1", "colour": "blue"},
                       files={"file": ("a.wav", uploads["wav"])})
        assert r.status_code == 400 and r.json()["error"]["code"] == "unrecognized_argument"
        assert r.json()["error"]["param"] == "colour"
