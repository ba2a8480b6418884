"""Voice activity detection on PCM16: the Realtime API's ``server_vad``, energy based.

The audio is cut into 10 ms frames; a frame is *voiced* when its RMS level,
in dBFS, is above the level the session's ``threshold`` (0..1) stands for:

    level_dbfs = -70 + 60 x threshold        (0.5, the default: -40 dBFS)

so a higher threshold needs louder audio, as OpenAI's does. Speech *starts*
once ``MIN_SPEECH_MS`` of consecutive voiced frames are seen (a click does not
start a turn); it is reported at its first voiced frame minus
``prefix_padding_ms`` (never before the end of the previous turn). Speech
*stops* once ``silence_duration_ms`` of unvoiced frames follow the last voiced
one; it is reported at that moment, i.e. the end of speech plus the silence,
which is where the committed audio ends ("includes the silence duration", as
the spec says of ``audio_end_ms``).

Times are milliseconds on the session's audio timeline: everything ever
appended to the input buffer, at the format's sample rate. The detector is
streaming: feeding audio in any chunking gives the same events.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

FRAME_MS = 10
MIN_SPEECH_MS = 30


def threshold_dbfs(threshold: float) -> float:
    """The frame level (dBFS RMS) a ``threshold`` in [0, 1] stands for."""
    return -70.0 + 60.0 * min(max(threshold, 0.0), 1.0)


def frame_levels(samples: np.ndarray, frame: int) -> np.ndarray:
    """dBFS RMS level of each whole ``frame``-sample frame of int16 ``samples``."""
    n = len(samples) // frame
    if n == 0:
        return np.empty(0, dtype=np.float64)
    x = samples[: n * frame].astype(np.float64).reshape(n, frame) / 32768.0
    rms = np.sqrt(np.mean(x * x, axis=1))
    return 20.0 * np.log10(np.maximum(rms, 1e-10))


@dataclass(frozen=True, slots=True)
class VADEvent:
    kind: str  # "speech_started" | "speech_stopped"
    ms: int    # audio_start_ms (padding included) or audio_end_ms (silence included)


class VAD:
    """A streaming speech detector over one session's input audio."""

    __slots__ = (
        "_floor",
        "_frames",
        "_onset",
        "_quiet",
        "_run",
        "_tail",
        "frame",
        "level",
        "padding_ms",
        "silence_ms",
        "speaking",
    )

    def __init__(self, rate: int, threshold: float = 0.5, prefix_padding_ms: int = 300,
                 silence_duration_ms: int = 500, start_ms: int = 0) -> None:
        self.frame = rate * FRAME_MS // 1000
        self.level = threshold_dbfs(threshold)
        self.padding_ms = max(0, int(prefix_padding_ms))
        self.silence_ms = max(FRAME_MS, int(silence_duration_ms))
        self.speaking = False
        self._frames = start_ms // FRAME_MS   # frames seen: the position on the timeline
        self._floor = start_ms                # a turn never reaches back before this (ms)
        self._run = 0                         # voiced frames in a row, while silent
        self._onset = 0                       # first frame of that run
        self._quiet = 0                       # unvoiced frames in a row, while speaking
        self._tail = np.empty(0, dtype=np.int16)  # samples of a frame not yet complete

    @property
    def position_ms(self) -> int:
        return self._frames * FRAME_MS

    def reset(self, position_ms: int) -> None:
        """Forget the current turn (the buffer was committed or cleared by the client)."""
        self.speaking = False
        self._run = self._quiet = 0
        self._floor = max(self._floor, position_ms)

    def feed(self, samples: np.ndarray) -> list[VADEvent]:
        """Take the next int16 samples; the speech starts and stops they complete."""
        if len(self._tail):
            samples = np.concatenate((self._tail, samples))
        levels = frame_levels(samples, self.frame)
        self._tail = samples[len(levels) * self.frame:].copy()
        events: list[VADEvent] = []
        need = -(-MIN_SPEECH_MS // FRAME_MS)
        quiet_frames = -(-self.silence_ms // FRAME_MS)
        for voiced in (levels > self.level).tolist():
            index = self._frames
            self._frames += 1
            if not self.speaking:
                if not voiced:
                    self._run = 0
                    continue
                if self._run == 0:
                    self._onset = index
                self._run += 1
                if self._run >= need:
                    self.speaking, self._quiet = True, 0
                    start = max(self._floor, self._onset * FRAME_MS - self.padding_ms)
                    events.append(VADEvent("speech_started", start))
            elif voiced:
                self._quiet = 0
            else:
                self._quiet += 1
                if self._quiet >= quiet_frames:
                    end = self._frames * FRAME_MS
                    self.speaking, self._run, self._floor = False, 0, end
                    events.append(VADEvent("speech_stopped", end))
        return events


def eagerness_silence_ms(eagerness: str) -> int:
    """semantic_vad's eagerness as a silence duration (an approximation: no turn model runs)."""
    return {"low": 1200, "high": 250}.get(eagerness, 600)
