"""Energy-based voice activity detection (fakeai.services.vad) on synthetic PCM16."""

from __future__ import annotations

import numpy as np
import pytest

from fakeai.services.realtime_audio import (
    PCM,
    PCMA,
    PCMU,
    InputBuffer,
    alaw_decode,
    alaw_encode,
    parse_format,
    ulaw_decode,
    ulaw_encode,
)
from fakeai.services.vad import VAD, frame_levels, threshold_dbfs

RATE = 24_000


def tone(seconds: float, amplitude: float = 0.3, freq: float = 220.0, rate: int = RATE) -> np.ndarray:
    t = np.arange(round(seconds * rate)) / rate
    return (amplitude * 32767 * np.sin(2 * np.pi * freq * t)).astype(np.int16)


def silence(seconds: float, rate: int = RATE, noise: float = 0.0) -> np.ndarray:
    n = round(seconds * rate)
    if not noise:
        return np.zeros(n, dtype=np.int16)
    return (np.random.default_rng(7).normal(0, noise * 32767, n)).astype(np.int16)


def run(vad: VAD, samples: np.ndarray, chunk: int) -> list[tuple[str, int]]:
    events = []
    for i in range(0, len(samples), chunk):
        events += [(e.kind, e.ms) for e in vad.feed(samples[i:i + chunk])]
    return events


def test_threshold_maps_to_a_level():
    assert threshold_dbfs(0.5) == -40.0
    assert threshold_dbfs(0.0) < threshold_dbfs(0.5) < threshold_dbfs(1.0)


def test_frame_levels_are_rms_dbfs():
    levels = frame_levels(tone(0.1, amplitude=0.5, freq=400.0), 240)  # whole cycles per frame
    # a sine of amplitude A has RMS A/sqrt(2): 0.5 -> -9.03 dBFS
    assert np.allclose(levels, 20 * np.log10(0.5 / np.sqrt(2)), atol=0.1)
    assert frame_levels(silence(0.05), 240).max() < -150


@pytest.mark.parametrize("chunk", [RATE, 37 * 24, 240, 100_000])
def test_bursts_separated_by_silence(chunk):
    # speech 1.0-2.0 s and 3.2-3.7 s; padding 300 ms, silence 500 ms
    audio = np.concatenate([silence(1.0), tone(1.0), silence(1.2), tone(0.5), silence(1.0)])
    vad = VAD(RATE, threshold=0.5, prefix_padding_ms=300, silence_duration_ms=500)
    events = run(vad, audio, chunk)
    kinds = [k for k, _ in events]
    assert kinds == ["speech_started", "speech_stopped", "speech_started", "speech_stopped"]
    (_, start1), (_, stop1), (_, start2), (_, stop2) = events
    assert start1 == 1000 - 300
    assert stop1 == 2000 + 500
    assert start2 == 3200 - 300
    assert stop2 == 3700 + 500


def test_padding_never_reaches_back_before_the_previous_turn():
    audio = np.concatenate([tone(0.5), silence(0.3), tone(0.5), silence(0.6)])
    vad = VAD(RATE, prefix_padding_ms=300, silence_duration_ms=200)
    events = run(vad, audio, 480)
    assert events == [("speech_started", 0), ("speech_stopped", 700), ("speech_started", 700),
                      ("speech_stopped", 1500)]


def test_short_pauses_do_not_end_a_turn_and_clicks_do_not_start_one():
    click = tone(0.01)
    audio = np.concatenate([silence(0.5), click, silence(0.5), tone(0.4), silence(0.3), tone(0.4), silence(1.0)])
    events = run(VAD(RATE, prefix_padding_ms=0, silence_duration_ms=500), audio, 1000)
    assert events == [("speech_started", 1010), ("speech_stopped", 2110 + 500)]


def test_threshold_decides_what_counts_as_speech():
    quiet = np.concatenate([silence(0.2), tone(0.5, amplitude=0.003), silence(0.8)])  # ~ -53 dBFS
    assert run(VAD(RATE, threshold=0.5), quiet, 2400) == []
    assert [k for k, _ in run(VAD(RATE, threshold=0.2), quiet, 2400)] == ["speech_started", "speech_stopped"]
    noise = silence(1.0, noise=0.005)  # ~ -46 dBFS
    noisy = np.concatenate([noise, tone(0.5, amplitude=0.5), noise])
    assert [k for k, _ in run(VAD(RATE, threshold=0.5), noisy, 2400)] == ["speech_started", "speech_stopped"]
    assert len(run(VAD(RATE, threshold=0.1), noisy, 2400)) == 1  # the noise itself is "speech": it never stops


def test_timeline_offset_and_reset():
    vad = VAD(RATE, prefix_padding_ms=100, silence_duration_ms=200, start_ms=5000)
    events = run(vad, np.concatenate([silence(0.5), tone(0.3), silence(0.3)]), 2400)
    assert events == [("speech_started", 5400), ("speech_stopped", 6000)]
    vad2 = VAD(RATE, prefix_padding_ms=0, silence_duration_ms=200)
    run(vad2, tone(0.3), 2400)
    assert vad2.speaking
    vad2.reset(vad2.position_ms)
    assert not vad2.speaking and run(vad2, silence(0.5), 2400) == []


def test_g711_at_8khz():
    audio = np.concatenate([silence(0.5, rate=8000), tone(0.6, rate=8000), silence(0.7, rate=8000)])
    for encode, decode in ((ulaw_encode, ulaw_decode), (alaw_encode, alaw_decode)):
        decoded = decode(encode(audio))
        assert np.max(np.abs(decoded.astype(int) - audio.astype(int))) <= 1100  # 8-bit companding error
        events = run(VAD(8000, prefix_padding_ms=200, silence_duration_ms=400), decoded, 800)
        assert events == [("speech_started", 300), ("speech_stopped", 1500)]


def test_formats_and_buffer():
    assert parse_format({"type": "audio/pcm", "rate": 24000}) is PCM
    assert parse_format("g711_ulaw") is PCMU and parse_format({"type": "audio/pcma"}) is PCMA
    assert parse_format({"type": "audio/pcm", "rate": 16000}) is None and parse_format("mp3") is None
    buf = InputBuffer(PCM)
    buf.append(tone(1.0).tobytes())
    assert buf.end_ms == pytest.approx(1000.0)
    buf.drop_before(400)
    assert buf.start_ms == pytest.approx(400.0) and len(buf.data) == 2 * 14_400
    data, start = buf.take(until_ms=900, since_ms=500)
    assert start == pytest.approx(500.0) and len(data) == 2 * 9600
    assert buf.start_ms == pytest.approx(900.0) and buf.end_ms == pytest.approx(1000.0)
    buf.clear()
    assert buf.start_ms == pytest.approx(1000.0) and not buf.data
