"""Chat completions with spoken output (modalities ["text", "audio"])."""

from __future__ import annotations

import base64
import io

import openai
import pytest
import soundfile as sf

from fakeai.services.audio import audio_tokens, speech_seconds
from tests.openapi_spec import validate

MODEL = "gpt-4o-audio-preview"
MSGS = [{"role": "user", "content": "Say something"}]


def test_message_audio_is_real_and_billed(server, client):
    with server.http() as http:
        body = http.post("/v1/chat/completions", json={
            "model": MODEL, "messages": MSGS, "max_tokens": 40, "seed": 3,
            "modalities": ["text", "audio"], "audio": {"voice": "nova", "format": "wav"}}).json()
    validate("CreateChatCompletionResponse", body)
    msg = body["choices"][0]["message"]
    assert msg["content"] is None
    audio = msg["audio"]
    samples, rate = sf.read(io.BytesIO(base64.b64decode(audio["data"])))
    assert rate == 24000
    assert len(samples) / rate == pytest.approx(speech_seconds(audio["transcript"]), rel=0.05)
    assert (samples ** 2).mean() ** 0.5 > 0.01  # audible, not silence
    details = body["usage"]["completion_tokens_details"]
    assert details["audio_tokens"] == audio_tokens(speech_seconds(audio["transcript"])) > 0
    text_only = client.chat.completions.create(model=MODEL, messages=MSGS, max_tokens=40, seed=3)
    assert text_only.choices[0].message.content == audio["transcript"]
    assert body["usage"]["completion_tokens"] == text_only.usage.completion_tokens + details["audio_tokens"]


def test_streamed_audio_transcript_and_data(client):
    stream = client.chat.completions.create(
        model=MODEL, messages=MSGS, max_tokens=12, seed=5, stream=True,
        modalities=["text", "audio"], audio={"voice": "alloy", "format": "pcm16"})
    transcript, data, ids = "", None, set()
    for chunk in stream:
        for ch in chunk.choices:
            if ch.delta.audio:
                a = ch.delta.audio.model_dump()
                transcript += a.get("transcript") or ""
                data = a.get("data") or data
                if a.get("id"):
                    ids.add(a["id"])
    plain = client.chat.completions.create(model=MODEL, messages=MSGS, max_tokens=12, seed=5)
    assert transcript == plain.choices[0].message.content
    assert len(ids) == 1
    pcm = base64.b64decode(data)
    assert len(pcm) / 48000 == pytest.approx(speech_seconds(transcript), rel=0.05)  # 24 kHz, 16-bit


@pytest.mark.parametrize("body,param", [
    ({"model": "gpt-4o", "audio": {"voice": "alloy", "format": "wav"}}, "modalities"),
    ({"model": MODEL}, "audio"),
    ({"model": MODEL, "audio": {"voice": "alloy", "format": "ogg"}}, "audio.format"),
    ({"model": MODEL, "audio": {"voice": "alloy", "format": "wav"}, "stream": True}, "audio.format"),
])
def test_bad_audio_requests(client, body, param):
    with pytest.raises(openai.BadRequestError) as e:
        client.chat.completions.create(messages=MSGS, modalities=["text", "audio"], **body)
    assert e.value.body["param"] == param
