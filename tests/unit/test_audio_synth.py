"""Speech synthesis, encoding, decoding and fake transcripts (fakeai/services/audio.py, transcribe.py).

Every encoded format is read back with an independent decoder (libsndfile through
soundfile, FFmpeg through PyAV); pitch is measured by autocorrelation, not taken
from the voice table.
"""

from __future__ import annotations

import base64
import io
import itertools
import re
import time

import av
import numpy as np
import pytest
import soundfile as sf

from fakeai.services import audio as A
from fakeai.services import transcribe as T

SR = A.SAMPLE_RATE
TEXT = ("The lighthouse keeper climbed the stairs at dusk, lit the lamp, and watched the ships "
        "pass by. Nobody knew how long he had lived there!")           # 25 words
WORDS = 25


def decode(data: bytes, fmt: str) -> tuple[np.ndarray, int]:
    """Float samples and rate of an encoded file, by a decoder that knows nothing of fakeai."""
    if fmt == "pcm":
        return np.frombuffer(data, "<i2").astype(np.float64) / 32768, SR
    if fmt == "aac":
        with av.open(io.BytesIO(data)) as c:
            assert c.format.name == "aac"                      # raw ADTS stream
            frames = [f.to_ndarray().reshape(-1) for f in c.decode(audio=0)]
            rate = c.streams.audio[0].sample_rate
        return np.concatenate(frames).astype(np.float64), rate
    x, rate = sf.read(io.BytesIO(data))
    return x, rate


def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64))))


def pitch(x: np.ndarray) -> float:
    """Median fundamental (Hz) over the loud 40 ms frames, by autocorrelation."""
    x = x.astype(np.float64) / 32768
    n = int(0.04 * SR)
    frames = [x[i:i + n] for i in range(0, len(x) - n, n)]
    level = np.array([rms(f) for f in frames])
    found = []
    for f in (f for f, lv in zip(frames, level) if lv > 0.5 * level.max()):
        ac = np.correlate(f, f, "full")[n - 1:]
        lo, hi = SR // 300, SR // 70                             # search 70-300 Hz
        found.append(SR / (lo + int(np.argmax(ac[lo:hi]))))
    return float(np.median(found))


# -- synthesis -------------------------------------------------------------------------

def test_duration_follows_words_and_speed():
    assert A.speech_seconds(TEXT) == pytest.approx(WORDS / 2.5)
    for speed in (0.25, 0.5, 1.0, 2.0, 4.0):
        x = A.synthesize(TEXT, "alloy", speed)
        assert x.dtype == np.int16
        assert len(x) / SR == pytest.approx(WORDS / (2.5 * speed), abs=1 / SR)
    # punctuation does not count as words; CJK characters count as half a word
    assert A.speech_seconds("Hello, world... !!!") == pytest.approx(2 / 2.5)
    assert A.speech_seconds("你好世界") == pytest.approx(2 / 2.5)
    assert A.speech_seconds("...") == pytest.approx(1 / 2.5)        # never empty


def test_signal_is_speech_like_not_silence():
    x = A.synthesize(TEXT, "nova").astype(np.float64) / 32768
    assert rms(x) > 0.05                                           # ~-20 dBFS
    assert np.abs(x).max() < 1.0                                   # no clipping
    # syllables: the 10 ms envelope goes up and down several times per second
    env = np.array([rms(x[i:i + 240]) for i in range(0, len(x) - 240, 240)])
    loud = env > 0.3 * env.max()
    rises = int(np.count_nonzero(loud[1:] & ~loud[:-1]))
    seconds = len(x) / SR
    assert 2.0 * seconds < rises < 8.0 * seconds
    assert (env < 0.01 * env.max()).mean() > 0.05                 # real pauses between them


def test_deterministic_and_voices_differ():
    a = A.synthesize(TEXT, "alloy")
    assert np.array_equal(a, A.synthesize(TEXT, "alloy"))
    assert not np.array_equal(a, A.synthesize(TEXT + " Again.", "alloy")[: len(a)])
    pitches = {v: pitch(A.synthesize(TEXT, v)) for v in ("onyx", "echo", "fable", "coral", "shimmer")}
    assert all(85 <= p <= 250 for p in pitches.values()), pitches
    assert pitches["onyx"] < pitches["fable"] < pitches["coral"] < pitches["shimmer"], pitches
    assert pitches["shimmer"] / pitches["onyx"] > 1.7
    custom = A.synthesize(TEXT, "custom:voice_1234")              # custom voices: stable, in range
    assert np.array_equal(custom, A.synthesize(TEXT, "custom:voice_1234"))
    assert 85 <= pitch(custom) <= 250


def test_synthesis_speed():
    t0 = time.perf_counter()
    x = A.synthesize(TEXT * 8, "alloy")
    ms_per_second = (time.perf_counter() - t0) * 1000 / (len(x) / SR)
    assert ms_per_second < 50, f"{ms_per_second:.1f} ms of CPU per second of audio"


# -- encoding --------------------------------------------------------------------------

@pytest.mark.parametrize("fmt", ["mp3", "opus", "aac", "flac", "wav", "pcm"])
def test_every_format_decodes(fmt):
    samples = A.synthesize(TEXT, "sage")
    data = A.encode(samples, fmt)
    x, rate = decode(data, fmt)
    assert rate == SR
    assert len(x) / rate == pytest.approx(WORDS / 2.5, rel=0.02)
    assert rms(x) > 0.04
    if fmt in ("wav", "flac", "pcm"):                                 # lossless: the exact samples
        assert np.array_equal(np.round(x * 32768).astype(np.int16), samples)
    signature = {"mp3": b"\xff", "opus": b"OggS", "aac": b"\xff", "flac": b"fLaC", "wav": b"RIFF"}
    assert fmt == "pcm" or data.startswith((signature[fmt], b"ID3"))
    if fmt == "opus":
        assert b"OpusHead" in data[:100]


def test_chat_audio():
    out = A.chat_audio("Hello there, how are you today?", "verse", "wav")
    assert set(out) == {"id", "data", "transcript", "expires_at"}
    assert out["id"].startswith("audio_") and out["transcript"] == "Hello there, how are you today?"
    assert out["expires_at"] - time.time() == pytest.approx(3600, abs=5)
    x, rate = sf.read(io.BytesIO(base64.b64decode(out["data"])))
    assert rate == SR and len(x) / rate == pytest.approx(6 / 2.5, rel=0.01) and rms(x) > 0.04
    pcm = base64.b64decode(A.chat_audio("Two words", "alloy", "pcm16")["data"])
    assert len(pcm) == 2 * round(2 / 2.5 * SR)
    with pytest.raises(ValueError):
        A.chat_audio("x", "alloy", "ogg")


# -- decoding uploads ------------------------------------------------------------------

def _mux(samples: np.ndarray, container: str, codec: str) -> bytes:
    buf = io.BytesIO()
    with av.open(buf, "w", format=container) as c:
        stream = c.add_stream(codec, rate=48000 if codec == "libopus" else SR, layout="mono")
        frame = av.AudioFrame.from_ndarray(samples.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = SR
        for packet in (*stream.encode(frame), *stream.encode(None)):
            c.mux(packet)
    return buf.getvalue()


def test_decode_seconds_of_every_upload_format():
    samples = A.synthesize("one two three four five six seven eight nine ten", "ash")    # 4 s
    files = {fmt: A.encode(samples, fmt) for fmt in ("wav", "flac", "mp3", "opus", "aac")}
    files["m4a"] = _mux(samples, "ipod", "aac")
    files["webm"] = _mux(samples, "webm", "libopus")
    sf_buf = io.BytesIO()
    sf.write(sf_buf, samples, SR, format="OGG", subtype="VORBIS")
    files["ogg"] = sf_buf.getvalue()
    for name, data in files.items():
        assert T.decode_seconds(data) == pytest.approx(4.0, rel=0.02), name


@pytest.mark.parametrize("data", [b"", b"not audio at all" * 100, bytes(range(256)) * 40,
                                  b"RIFF\x00\x00\x00\x00WAVEfmt "])
def test_corrupt_uploads_raise(data):
    with pytest.raises(T.AudioError):
        T.decode_seconds(data)


def test_truncated_mp3_is_measured_by_what_decodes():
    mp3 = A.encode(A.synthesize(TEXT, "alloy"), "mp3")             # 10 s, with a Xing frame count
    assert T.decode_seconds(mp3) == pytest.approx(10.0, rel=0.01)
    assert T.decode_seconds(mp3[: len(mp3) // 4]) < 3.5


# -- transcripts -----------------------------------------------------------------------

@pytest.mark.parametrize("seconds", [0.5, 3.0, 12.34, 61.0, 300.0])
def test_transcript_fits_the_duration(seconds):
    data = f"audio {seconds}".encode()
    t = T.transcript(data, seconds)
    assert t == T.transcript(data, seconds)                        # deterministic per bytes
    assert t.text != T.transcript(data + b"!", seconds).text
    words = t.text.split()
    assert len(words) == round(seconds * 2.5)
    assert t.text[0].isupper() and t.text.endswith(".")
    assert [w for w, _, _ in t.words] == [re.sub(r"[^\w'-]", "", w) for w in words]
    stamps = [x for _, a, b in t.words for x in (a, b)]
    assert stamps == sorted(stamps) and stamps[0] == 0.0 and stamps[-1] == round(seconds, 2)
    segs = t.segments
    assert segs[0].start == 0.0 and segs[-1].end == round(seconds, 2)
    assert all(a.end == b.start for a, b in itertools.pairwise(segs))   # contiguous cues
    assert all(s.start < s.end for s in segs)
    assert " ".join(s.text for s in segs) == t.text
    assert all(len(s.text.split()) <= 30 for s in segs)
    assert all(-1 < s.avg_logprob < 0 and 0 <= s.no_speech_prob < 0.1 and s.compression_ratio > 0
               for s in segs)


def test_transcript_of_silence_length_audio_is_empty():
    t = T.transcript(b"x", 0.1)
    assert t.text == "" and t.words == [] and t.segments == []


def test_prompt_steers_the_vocabulary():
    base = T.transcript(b"same bytes", 120.0)
    steered = T.transcript(b"same bytes", 120.0, prompt="kubernetes kubernetes kubernetes deployment")
    assert "kubernetes" not in base.text.lower()
    assert "kubernetes" in steered.text.lower()
    assert len(steered.text.split()) == len(base.text.split())


def test_language_names():
    assert T.language_name(None) == "english"
    assert T.language_name("FR") == "french"
    assert T.language_name("xx") is None
