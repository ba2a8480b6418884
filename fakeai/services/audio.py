"""Speech synthesis and audio encoding: real, decodable, voice-like audio for any text.

No model runs. A text becomes a *plan* of syllables and pauses: each word gets
as many syllables as it has vowel groups, punctuation becomes a pause (short
after ``,;:``, longer after ``.!?`` and line breaks). The plan is laid over a
fixed total duration,

    seconds = units / (WORDS_PER_SECOND x speed)      (units: words; a CJK character is half a word)

i.e. ~150 words per minute at speed 1.0. Each syllable is a vowel: a
fundamental at the voice's pitch (100-220 Hz) with a pitch accent and a slow
declination over each sentence, plus harmonics shaped by the vowel's three
formants, under a rise-and-fall amplitude envelope, preceded by a short noise
burst (the consonant). Pauses are silent. Everything is deterministic in
(voice, text): the same request gives the same samples at any speed. The
synthesis is vectorized in numpy and runs block by block, so memory stays
bounded for the longest input.

Encoders: WAV, FLAC, Ogg/Opus and MP3 through libsndfile (soundfile); AAC as
an ADTS stream through PyAV (FFmpeg); ``pcm`` is raw 16-bit little-endian
mono. All at 24 kHz mono, as OpenAI's speech endpoint.
"""

from __future__ import annotations

import base64
import hashlib
import io
import math
import os
import re
import time
from dataclasses import dataclass

import numpy as np
import soundfile as sf

SAMPLE_RATE = 24_000
WORDS_PER_SECOND = 2.5            # ~150 wpm at speed 1.0
AUDIO_TOKENS_PER_SECOND = 1250 / 60   # approx: gpt-4o-mini-tts bills ~1250 output tokens per minute
CHAT_AUDIO_TTL = 3600             # seconds a chat audio id stays referable (OpenAI: 1 hour)


@dataclass(frozen=True, slots=True)
class Voice:
    pitch: float      # mean fundamental, Hz
    formants: float   # formant scale (vocal tract length): ~1.0 lower voices, ~1.15 higher
    breath: float     # level of the consonant noise bursts


# Built-in voices: the union of tts-1's and gpt-4o-mini-tts's.
VOICES: dict[str, Voice] = {
    "alloy": Voice(175, 1.08, 0.10), "ash": Voice(122, 1.00, 0.12), "ballad": Voice(138, 1.02, 0.08),
    "coral": Voice(205, 1.14, 0.09), "echo": Voice(110, 0.98, 0.11), "fable": Voice(150, 1.04, 0.10),
    "onyx": Voice(100, 0.95, 0.13), "nova": Voice(214, 1.15, 0.08), "sage": Voice(190, 1.12, 0.12),
    "shimmer": Voice(220, 1.17, 0.09), "verse": Voice(128, 1.01, 0.10), "marin": Voice(198, 1.13, 0.10),
    "cedar": Voice(115, 0.97, 0.12),
}
#: The voices tts-1 and tts-1-hd have (the newer ones are gpt-4o-mini-tts only).
CLASSIC_VOICES = ("alloy", "ash", "coral", "echo", "fable", "onyx", "nova", "sage", "shimmer")

#: response_format -> media type of the encoded file.
MEDIA_TYPES = {"mp3": "audio/mpeg", "opus": "audio/opus", "aac": "audio/aac", "flac": "audio/flac",
               "wav": "audio/wav", "pcm": "audio/pcm"}

_CJK = "\u3040-\u30ff\u3400-\u9fff\uac00-\ud7af\uf900-\ufaff"
_TOKEN = re.compile(rf"([{_CJK}])|([^\W_{_CJK}]+(?:'[^\W_{_CJK}]+)*)|([,;:\u2013\u2014])|([.!?\u2026\n]+)")
_VOWEL_GROUPS = re.compile(r"[aeiouy\u00e0-\u00ff]+")
# weights of the plan, in syllable lengths
_GAP, _SHORT, _LONG, _EDGE = 0.15, 0.8, 1.6, 0.5
# (F1, F2, F3) of the vowels a, e, i, o, u (adult male, Hz); scaled per voice
_VOWELS = np.array([(730, 1090, 2440), (530, 1840, 2480), (270, 2290, 3010),
                    (570, 840, 2410), (300, 870, 2240)], dtype=np.float64)
_FORMANT_GAIN = np.array([1.0, 0.6, 0.25], dtype=np.float32)
_FORMANT_BW = np.array([90.0, 120.0, 170.0], dtype=np.float32)
_K = np.arange(1, 33, dtype=np.float32)[:, None]   # harmonic numbers
_BAND = 4000.0                    # Hz: harmonics above are left out (telephone-like bandwidth)
_HOP = 32                         # samples between updates of the harmonic levels
_BLOCK = 1 << 16                  # samples synthesized per numpy pass
_GAIN = 0.8                       # ~-20 dBFS RMS overall, peaks below full scale


def _plan(text: str) -> tuple[float, np.ndarray, np.ndarray]:
    """(word units, per-unit weights, per-unit voiced flags): the syllables and pauses of `text`."""
    words = 0.0
    weights: list[float] = [_EDGE]
    voiced: list[bool] = [False]
    for cjk, word, _, long_ in _TOKEN.findall(text):
        if cjk or word:
            words += 0.5 if cjk else 1.0
            if cjk or word.isdigit():
                n = 1 if cjk else min(len(word), 7)
            else:
                n = min(max(len(_VOWEL_GROUPS.findall(word.lower())), 1), 7)
            if voiced[-1]:
                weights.append(_GAP)
                voiced.append(False)
            weights += [1.0] * n
            voiced += [True] * n
        else:                                         # a pause, merged with one just before
            pause = _LONG if long_ else _SHORT
            if voiced[-1]:
                weights.append(pause)
                voiced.append(False)
            else:
                weights[-1] = max(weights[-1], pause)
    if len(weights) == 1:                             # no word at all: one hummed syllable
        weights.append(1.0)
        voiced.append(True)
    weights.append(_EDGE)
    voiced.append(False)
    return max(words, 1.0), np.array(weights), np.array(voiced)


def speech_seconds(text: str, speed: float = 1.0) -> float:
    """Duration of the synthesized speech: word units / (2.5 words/s x speed)."""
    return _plan(text)[0] / (WORDS_PER_SECOND * speed)


def audio_tokens(seconds: float) -> int:
    """Output audio tokens billed for `seconds` of generated speech (approx)."""
    return math.ceil(seconds * AUDIO_TOKENS_PER_SECOND)


def voice_of(voice: str) -> Voice:
    """A built-in voice, or a deterministic one for a custom voice id."""
    v = VOICES.get(voice)
    if v is not None:
        return v
    h = hashlib.blake2b(voice.encode(), digest_size=8).digest()
    return Voice(100 + h[0] / 255 * 120, 0.95 + h[1] / 255 * 0.22, 0.08 + h[2] / 255 * 0.05)


def _seed(voice: str, text: str) -> int:
    return int.from_bytes(hashlib.blake2b(f"{voice}\0{text}".encode(), digest_size=8).digest(), "little")


def _voiced_wave(s: np.ndarray, f0: np.ndarray, phase: np.ndarray, centers: np.ndarray,
                 vowels: np.ndarray) -> np.ndarray:
    """The harmonics of `f0`, each at the level the current vowel's formants give it."""
    # levels change slowly: computed every _HOP samples and held in between
    hk = _K * f0[::_HOP].astype(np.float32)                            # (harmonics, samples / _HOP)
    level = np.full_like(hk, 0.05)                                     # a floor: no harmonic vanishes
    for j in range(3):
        fj = np.interp(s[::_HOP], centers, vowels[:, j]).astype(np.float32)
        level += _FORMANT_GAIN[j] * np.exp(-(((hk - fj) / _FORMANT_BW[j]) ** 2))
    level = np.repeat(np.where(hk < _BAND, level / _K, 0.0), _HOP, axis=1)[:, :len(s)]   # 1/k tilt
    # sin(k x phase) by the Chebyshev recurrence: two trigonometric calls per sample, not one per harmonic
    cur = np.sin(phase).astype(np.float32)
    twocos = (2 * np.cos(phase)).astype(np.float32)
    prev = np.zeros_like(cur)
    wave = np.zeros_like(cur)
    for lv in level:
        wave += lv * cur
        prev, cur = cur, twocos * cur - prev
    return wave


def synthesize(text: str, voice: str, speed: float = 1.0) -> np.ndarray:
    """Mono int16 samples at SAMPLE_RATE of `text` spoken by `voice` at `speed`."""
    words, weights, voiced = _plan(text)
    n = max(1, round(words / (WORDS_PER_SECOND * speed) * SAMPLE_RATE))
    v = voice_of(voice)
    rng = np.random.default_rng(_seed(voice, text))
    units = len(weights)
    bounds = np.concatenate(([0.0], np.cumsum(weights) / weights.sum() * n))
    starts, lengths = bounds[:-1], np.maximum(np.diff(bounds), 1.0)
    centers = starts + lengths / 2

    # per-unit prosody: pitch accents, a declination reset after each long pause, loudness
    sentence = np.cumsum(~voiced & (weights >= _LONG))
    first = np.searchsorted(sentence, sentence)          # first unit of each unit's sentence
    declination = 1.0 - 0.12 * (np.arange(units) - first) / np.maximum(np.bincount(sentence)[sentence], 1)
    pitch = v.pitch * declination * (1.0 + rng.normal(0.0, 0.06, units))
    loud = np.where(voiced, rng.uniform(0.55, 1.0, units), 0.0)
    vowels = _VOWELS[rng.integers(0, len(_VOWELS), units)] * v.formants
    burst = rng.uniform(0.08, 0.2, units)                 # consonant share of each syllable
    noise = np.random.default_rng(_seed(voice, text) ^ 0x5EED)
    out = np.empty(n, dtype=np.int16)
    phase0 = 0.0
    for a in range(0, n, _BLOCK):
        s = np.arange(a, min(a + _BLOCK, n), dtype=np.float64)
        unit = np.minimum(np.searchsorted(bounds, s, side="right") - 1, units - 1)
        pos = (s - starts[unit]) / lengths[unit]           # 0..1 within the unit
        f0 = np.interp(s, centers, pitch) * (1.0 + 0.012 * np.sin(2 * np.pi * 5.1 * s / SAMPLE_RATE))
        phase = phase0 + 2 * np.pi * np.cumsum(f0) / SAMPLE_RATE
        phase0 = float(phase[-1]) % (2 * np.pi)
        wave = _voiced_wave(s, f0, phase, centers, vowels)
        body = np.sin(np.pi * np.clip(pos, 0.0, 1.0)) ** 0.7
        env = np.where(voiced[unit], loud[unit] * body, 0.0).astype(np.float32)
        hiss = np.diff(noise.standard_normal(len(s) + 1, dtype=np.float32))
        cons = np.where(voiced[unit] & (pos < burst[unit]), v.breath * loud[unit], 0.0).astype(np.float32)
        signal = _GAIN * (env * wave + cons * hiss)
        out[a:a + len(s)] = np.clip(signal * 32767.0, -32768, 32767).astype(np.int16)
    return out


# --------------------------------------------------------------------------- encoding

_SOUNDFILE = {"wav": ("WAV", "PCM_16", {}), "flac": ("FLAC", "PCM_16", {}), "opus": ("OGG", "OPUS", {}),
              "mp3": ("MP3", "MPEG_LAYER_III", {"bitrate_mode": "CONSTANT", "compression_level": 0.5})}


def _aac(samples: np.ndarray) -> bytes:
    """AAC-LC in ADTS frames (what OpenAI's `aac` is), encoded by FFmpeg through PyAV."""
    import av  # lazily: only `aac` needs FFmpeg

    buf = io.BytesIO()
    with av.open(buf, "w", format="adts") as container:
        stream = container.add_stream("aac", rate=SAMPLE_RATE, layout="mono")
        stream.bit_rate = 64_000
        frame = av.AudioFrame.from_ndarray(samples.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = SAMPLE_RATE
        for packet in (*stream.encode(frame), *stream.encode(None)):
            container.mux(packet)
    return buf.getvalue()


def encode(samples: np.ndarray, fmt: str) -> bytes:
    """The int16 mono samples as a complete file in `fmt` (a key of MEDIA_TYPES)."""
    if fmt == "pcm":
        return samples.astype("<i2").tobytes()
    if fmt == "aac":
        return _aac(samples)
    container, subtype, options = _SOUNDFILE[fmt]
    buf = io.BytesIO()
    sf.write(buf, samples, SAMPLE_RATE, format=container, subtype=subtype, **options)
    return buf.getvalue()


def speech(text: str, voice: str, fmt: str, speed: float = 1.0) -> tuple[bytes, float]:
    """(encoded file, seconds) of `text` spoken by `voice`."""
    samples = synthesize(text, voice, speed)
    return encode(samples, fmt), len(samples) / SAMPLE_RATE


# Chat audio formats: pcm16 is the chat name of raw 16-bit PCM.
_CHAT_FORMATS = {"wav": "wav", "mp3": "mp3", "flac": "flac", "opus": "opus", "aac": "aac", "pcm16": "pcm"}


def chat_audio(text: str, voice: str, fmt: str) -> dict:
    """A chat completion's ``message.audio``: the spoken `text` as base64 in `fmt`.

    `fmt` is a chat ``audio.format`` (wav, mp3, flac, opus, aac, pcm16); raises
    ValueError for another. CPU-bound: call it off the event loop for long texts.
    """
    if fmt not in _CHAT_FORMATS:
        raise ValueError(f"unsupported chat audio format {fmt!r}")
    data, _ = speech(text, voice, _CHAT_FORMATS[fmt])
    return {"id": "audio_" + os.urandom(12).hex(), "data": base64.b64encode(data).decode("ascii"),
            "transcript": text, "expires_at": int(time.time()) + CHAT_AUDIO_TTL}
