"""Audio of a Realtime session: its formats, G.711 codecs and the input audio buffer.

Formats (the session's ``audio.input.format`` / ``audio.output.format``):

* ``audio/pcm`` (legacy name ``pcm16``): 16-bit little-endian mono PCM at 24 kHz;
* ``audio/pcmu`` (``g711_ulaw``) and ``audio/pcma`` (``g711_alaw``): G.711 at 8 kHz,
  one byte per sample (ITU-T G.711, the classic segment tables).

Input audio is really decoded: its duration is its sample count over the rate,
and the decoded samples feed the voice activity detector. Output speech is
synthesized at 24 kHz (``fakeai.services.audio``) and, for G.711, decimated to
8 kHz (3-tap average, then every third sample) and encoded.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

import numpy as np

SPEECH_RATE = 24_000
MAX_APPEND_BYTES = 15 * 1024 * 1024   # OpenAI: up to 15 MiB of audio per append
MAX_BUFFER_BYTES = 15 * 1024 * 1024   # and the buffer holds no more than that


@dataclass(frozen=True, slots=True)
class AudioFormat:
    type: str          # GA name: audio/pcm, audio/pcmu, audio/pcma
    rate: int
    width: int         # bytes per sample

    def wire(self) -> dict:
        return {"type": self.type, "rate": self.rate} if self.type == "audio/pcm" else {"type": self.type}

    def seconds(self, nbytes: int) -> float:
        return nbytes / (self.width * self.rate)

    def decode(self, data: bytes) -> np.ndarray:
        """int16 samples of ``data`` (at this format's rate)."""
        if self.type == "audio/pcm":
            return np.frombuffer(data, dtype="<i2").astype(np.int16)
        raw = np.frombuffer(data, dtype=np.uint8)
        return ulaw_decode(raw) if self.type == "audio/pcmu" else alaw_decode(raw)

    def encode(self, samples: np.ndarray) -> bytes:
        """``samples`` (int16 at 24 kHz) in this format."""
        if self.type == "audio/pcm":
            return samples.astype("<i2").tobytes()
        low = decimate3(samples)
        return (ulaw_encode(low) if self.type == "audio/pcmu" else alaw_encode(low)).tobytes()


PCM = AudioFormat("audio/pcm", SPEECH_RATE, 2)
PCMU = AudioFormat("audio/pcmu", 8000, 1)
PCMA = AudioFormat("audio/pcma", 8000, 1)
_BY_NAME = {"audio/pcm": PCM, "audio/pcmu": PCMU, "audio/pcma": PCMA,
            "pcm16": PCM, "g711_ulaw": PCMU, "g711_alaw": PCMA}


def parse_format(value) -> AudioFormat | None:
    """A format from its GA object (``{"type": "audio/pcm", "rate": 24000}``) or legacy name;
    None if it is neither."""
    if isinstance(value, str):
        return _BY_NAME.get(value)
    if isinstance(value, dict) and isinstance(value.get("type"), str):
        fmt = _BY_NAME.get(value["type"])
        if fmt is None or set(value) - {"type", "rate"}:
            return None
        rate = value.get("rate", fmt.rate)
        return fmt if rate == fmt.rate and not isinstance(rate, bool) else None
    return None


def b64decode(text: str) -> bytes:
    """Strict base64 (padding and alphabet checked); raises ValueError."""
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("invalid base64") from None


def b64encode(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


# --------------------------------------------------------------------------- G.711

_BIAS = 0x84
_ALAW_SEG_END = np.array([0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF])
_ULAW_SEG_END = np.array([0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF])


def ulaw_encode(samples: np.ndarray) -> np.ndarray:
    s = samples.astype(np.int32) >> 2                       # 14-bit
    mask = np.where(s < 0, 0x7F, 0xFF)
    mag = np.minimum(np.abs(s), 8159) + (_BIAS >> 2)
    seg = np.searchsorted(_ULAW_SEG_END, mag)
    val = np.where(seg >= 8, 0x7F, (np.minimum(seg, 7) << 4) | ((mag >> (np.minimum(seg, 7) + 1)) & 0x0F))
    return ((val ^ mask) & 0xFF).astype(np.uint8)


def ulaw_decode(raw: np.ndarray) -> np.ndarray:
    u = ~raw.astype(np.int32) & 0xFF
    exp = (u >> 4) & 0x07
    mag = (((u & 0x0F) << 3) + _BIAS) << exp
    return np.where(u & 0x80, _BIAS - mag, mag - _BIAS).astype(np.int16)


def alaw_encode(samples: np.ndarray) -> np.ndarray:
    s = samples.astype(np.int32) >> 3
    mask = np.where(s >= 0, 0xD5, 0x55)
    s = np.where(s >= 0, s, -s - 1)
    seg = np.searchsorted(_ALAW_SEG_END, s)
    low = np.where(seg < 2, s >> 1, s >> np.maximum(seg, 1)) & 0x0F
    val = np.where(seg >= 8, 0x7F, (np.minimum(seg, 7) << 4) | low)
    return ((val ^ mask) & 0xFF).astype(np.uint8)


def alaw_decode(raw: np.ndarray) -> np.ndarray:
    a = raw.astype(np.int32) ^ 0x55
    t = (a & 0x0F) << 4
    seg = (a & 0x70) >> 4
    t = np.where(seg == 0, t + 8, (t + 0x108) << np.maximum(seg - 1, 0))
    return np.where(a & 0x80, t, -t).astype(np.int16)


def decimate3(samples: np.ndarray) -> np.ndarray:
    """24 kHz -> 8 kHz: a 3-sample moving average (a crude low-pass) then every third sample."""
    n = len(samples) // 3 * 3
    return samples[:n].astype(np.int32).reshape(-1, 3).mean(axis=1).astype(np.int16)


# --------------------------------------------------------------------------- input buffer

class InputBuffer:
    """The session's input audio buffer: raw bytes in the input format, placed on the session's
    audio timeline (``start_ms`` of its first byte; everything ever appended advances ``end_ms``)."""

    __slots__ = ("data", "fmt", "start_ms")

    def __init__(self, fmt: AudioFormat, start_ms: float = 0.0) -> None:
        self.fmt = fmt
        self.data = bytearray()
        self.start_ms = start_ms

    @property
    def end_ms(self) -> float:
        return self.start_ms + self.ms(len(self.data))

    def ms(self, nbytes: int) -> float:
        return nbytes * 1000.0 / (self.fmt.width * self.fmt.rate)

    def _offset(self, ms: float) -> int:
        """The byte offset of timeline position ``ms`` (clamped to the buffer, whole samples)."""
        samples = round((ms - self.start_ms) * self.fmt.rate / 1000.0)
        return min(max(samples, 0) * self.fmt.width, len(self.data))

    def append(self, chunk: bytes) -> None:
        self.data += chunk

    def take(self, until_ms: float | None = None, since_ms: float | None = None) -> tuple[bytes, float]:
        """Remove and return the audio up to ``until_ms`` (all of it: None), skipping what lies
        before ``since_ms``; with the timeline position where the returned audio starts."""
        end = len(self.data) if until_ms is None else self._offset(until_ms)
        begin = 0 if since_ms is None else min(self._offset(since_ms), end)
        start_ms = self.start_ms + self.ms(begin)
        out = bytes(self.data[begin:end])
        del self.data[:end]
        self.start_ms += self.ms(end)
        return out, start_ms

    def drop_before(self, ms: float) -> None:
        """Forget audio older than ``ms`` (no turn can reach back to it any more)."""
        cut = self._offset(ms)
        if cut:
            del self.data[:cut]
            self.start_ms += self.ms(cut)

    def clear(self) -> None:
        self.start_ms = self.end_ms
        self.data.clear()
