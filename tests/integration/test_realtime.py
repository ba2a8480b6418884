"""The Realtime API (``/v1/realtime`` over WebSocket) against the real server.

The official SDK's realtime client (sync and async) drives the conversations; raw
``websockets`` sends what the SDK would never send (malformed events). Every server
event received is validated against the spec's ``RealtimeServerEvent`` component.
"""

from __future__ import annotations

import asyncio
import base64
import json
import math
import re
import time

import jsonschema
import numpy as np
import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from fakeai.engine.tokenizer import (
    get_tokenizer,  # tiktoken with the official o200k_base ranks
)
from tests.openapi_spec import validate
from tests.server import run_server

pytestmark = [pytest.mark.timeout(60),  # the SDK's sync client trips a websockets deprecation warning:
              pytest.mark.filterwarnings("ignore:connect\\(\\) must be used as a context manager")]

MODEL = "gpt-realtime"
KEY = "sk-test"  # what tests.server's clients send
ENC = get_tokenizer("o200k_base")
RATE = 24_000
WEATHER = {"type": "object", "properties": {"location": {"type": "string"},
                                            "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}},
           "required": ["location", "unit"], "additionalProperties": False}


def checked(data: bytes | str) -> dict:
    event = json.loads(data)
    validate("RealtimeServerEvent", event)
    return event


def until(conn, *stop: str) -> list[dict]:
    """Events from an SDK connection up to (and with) the first of type ``stop``, each validated."""
    out = []
    while True:
        out.append(checked(conn.recv_bytes()))
        if out[-1]["type"] in stop:
            return out


def raw_until(ws, *stop: str) -> list[dict]:
    out = []
    while True:
        out.append(checked(ws.recv(timeout=20)))
        if out[-1]["type"] in stop:
            return out


def of(events: list[dict], kind: str) -> list[dict]:
    return [e for e in events if e["type"] == kind]


def user_text(text: str) -> dict:
    return {"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}


def spoken_seconds(transcript: str) -> float:
    """~150 words per minute: the speaking rate fakeai's speech has (docs/audio.md)."""
    return len(re.findall(r"[^\W_]+(?:'[^\W_]+)*", transcript)) / 2.5


def voiced(seconds: float, rate: int = RATE) -> np.ndarray:
    """A speech-like signal: a 140 Hz voice with harmonics under a 4 Hz syllable envelope."""
    t = np.arange(round(seconds * rate)) / rate
    wave = sum(np.sin(2 * np.pi * k * 140.0 * t) / k for k in range(1, 8))
    env = 0.6 + 0.4 * np.sin(2 * np.pi * 4.0 * t)
    return (0.3 * 32767 * env * wave / np.max(np.abs(wave))).astype(np.int16)


def dbfs(samples: np.ndarray) -> float:
    x = samples.astype(np.float64) / 32768
    return 20 * math.log10(max(np.sqrt(np.mean(x * x)), 1e-10))


@pytest.fixture(scope="module")
def paced():
    """A server with 100 ms TTFT and 20 ms per token, authentication and rate limits on."""
    with run_server("--ttft", "100", "--itl", "20", "--api-key", KEY, "--rate-limit-rpm", "1000",
                    "--rate-limit-tpm", "1000000") as s:
        yield s


def ws_url(server, model: str = MODEL) -> str:
    return f"ws://127.0.0.1:{server.port}/v1/realtime?model={model}"


# -- catalog --------------------------------------------------------------------------------------

def test_realtime_models_are_listed(client):
    ids = {m.id for m in client.models.list().data}
    assert {"gpt-realtime", "gpt-realtime-mini", "gpt-4o-realtime-preview", "gpt-4o-mini-realtime-preview"} <= ids
    assert client.models.retrieve("gpt-realtime-2025-08-28").id == "gpt-realtime"


# -- text -----------------------------------------------------------------------------------------

def test_text_response_with_the_sync_sdk(server):
    with server.client().realtime.connect(model=MODEL) as conn:
        created = conn.recv()
        assert created.type == "session.created" and created.session.model == MODEL
        conn.session.update(session={"type": "realtime", "output_modalities": ["text"],
                                     "instructions": "Answer briefly."})
        updated = until(conn, "session.updated")[-1]["session"]
        assert updated["output_modalities"] == ["text"] and updated["instructions"] == "Answer briefly."
        conn.conversation.item.create(item=user_text("Tell me about the lighthouses of Brittany."))
        added = until(conn, "conversation.item.done")
        assert [e["type"] for e in added] == ["conversation.item.added", "conversation.item.created",
                                             "conversation.item.done"]
        conn.response.create()
        events = until(conn, "response.done")
    kinds = [e["type"] for e in events]
    assert kinds[:2] == ["response.created", "rate_limits.updated"]
    assert events[1]["rate_limits"] == []  # no limits configured
    assert kinds.index("response.output_item.added") < kinds.index("response.content_part.added") \
        < kinds.index("response.output_text.delta")
    assert kinds[-5:] == ["response.output_text.done", "response.content_part.done", "response.output_item.done",
                          "conversation.item.done", "response.done"]
    text = "".join(e["delta"] for e in of(events, "response.output_text.delta"))
    assert text and text == of(events, "response.output_text.done")[0]["text"]
    done = events[-1]["response"]
    assert done["status"] == "completed" and done["output"][0]["content"] == [{"type": "output_text", "text": text}]
    usage = done["usage"]
    assert usage["output_tokens"] == usage["output_token_details"]["text_tokens"] == len(ENC.encode(text))
    assert usage["output_token_details"]["audio_tokens"] == 0
    assert usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"]
    assert usage["input_token_details"]["audio_tokens"] == 0
    assert usage["input_token_details"]["text_tokens"] == usage["input_tokens"] > len(ENC.encode("Answer briefly."))
    assert len({e["event_id"] for e in events}) == len(events)


# -- audio out --------------------------------------------------------------------------------------

def test_audio_response_with_the_async_sdk(server):
    async def talk():
        async with server.async_client().realtime.connect(model=MODEL) as conn:
            assert (await conn.recv()).type == "session.created"
            await conn.conversation.item.create(item=user_text("Describe a calm evening at sea."))
            await conn.response.create()
            events = []
            while not events or events[-1]["type"] != "response.done":
                events.append(checked(await conn.recv_bytes()))
            return events

    events = asyncio.run(talk())
    transcript = "".join(e["delta"] for e in of(events, "response.output_audio_transcript.delta"))
    assert transcript == of(events, "response.output_audio_transcript.done")[0]["transcript"]
    pcm = b"".join(base64.b64decode(e["delta"]) for e in of(events, "response.output_audio.delta"))
    samples = np.frombuffer(pcm, dtype="<i2")
    seconds = len(samples) / RATE
    assert seconds == pytest.approx(spoken_seconds(transcript), rel=0.02, abs=0.05)
    assert dbfs(samples) > -35  # speech, not silence
    frames = samples[: len(samples) // 240 * 240].reshape(-1, 240).astype(float)
    assert (np.sqrt((frames ** 2).mean(axis=1)) < 30).mean() > 0.05  # with pauses between words
    done = events[-1]["response"]
    assert done["output"][0]["content"] == [{"type": "output_audio", "transcript": transcript}]
    assert done["audio"]["output"]["format"] == {"type": "audio/pcm", "rate": RATE}
    out = done["usage"]["output_token_details"]
    assert out["text_tokens"] == len(ENC.encode(transcript))
    assert out["audio_tokens"] == math.ceil(seconds * 1250 / 60)
    assert done["usage"]["output_tokens"] == out["text_tokens"] + out["audio_tokens"]


def test_audio_in_g711_out_and_truncation(server):
    with connect(ws_url(server), open_timeout=10) as ws:
        raw_until(ws, "session.created")
        ws.send(json.dumps({"type": "session.update", "session": {
            "type": "realtime", "audio": {"output": {"format": {"type": "audio/pcmu"}, "voice": "cedar"}}}}))
        assert raw_until(ws, "session.updated")[-1]["session"]["audio"]["output"]["voice"] == "cedar"
        ws.send(json.dumps({"type": "conversation.item.create", "item": user_text("Say something short.")}))
        ws.send(json.dumps({"type": "response.create", "response": {"max_output_tokens": 30}}))
        events = raw_until(ws, "response.done")
        ulaw = b"".join(base64.b64decode(e["delta"]) for e in of(events, "response.output_audio.delta"))
        transcript = of(events, "response.output_audio_transcript.done")[0]["transcript"]
        assert len(ulaw) / 8000 == pytest.approx(spoken_seconds(transcript), rel=0.02, abs=0.05)
        assert len(set(ulaw)) > 50  # companded speech, not a constant
        item = events[-1]["response"]["output"][0]["id"]
        assert events[-1]["response"]["usage"]["output_token_details"]["text_tokens"] <= 30
        # the client played 500 ms of it: the rest leaves the conversation
        ws.send(json.dumps({"type": "conversation.item.truncate", "item_id": item, "content_index": 0,
                            "audio_end_ms": 500}))
        assert raw_until(ws, "conversation.item.truncated")[-1]["audio_end_ms"] == 500
        ws.send(json.dumps({"type": "conversation.item.retrieve", "item_id": item}))
        part = raw_until(ws, "conversation.item.retrieved")[-1]["item"]["content"][0]
        assert len(base64.b64decode(part["audio"])) == 4000 and part["transcript"] == ""
        ws.send(json.dumps({"type": "conversation.item.truncate", "item_id": item, "content_index": 0,
                            "audio_end_ms": 90_000, "event_id": "trunc-too-far"}))
        err = raw_until(ws, "error")[-1]["error"]
        assert err["event_id"] == "trunc-too-far" and err["param"] == "audio_end_ms"
        ws.send(json.dumps({"type": "session.update", "session": {"type": "realtime",
                                                                  "audio": {"output": {"voice": "ash"}}}}))
        assert raw_until(ws, "error")[-1]["error"]["code"] == "cannot_update_voice"  # it has spoken already


# -- audio in ---------------------------------------------------------------------------------------

def test_server_vad_turn_with_transcription_and_automatic_response(server):
    audio = np.concatenate([np.zeros(RATE // 2, np.int16), voiced(2.0), np.zeros(RATE, np.int16)])
    with server.client().realtime.connect(model=MODEL) as conn:
        until(conn, "session.created")
        conn.session.update(session={"type": "realtime", "output_modalities": ["text"], "audio": {"input": {
            "format": {"type": "audio/pcm", "rate": RATE},
            "transcription": {"model": "gpt-4o-mini-transcribe"},
            "turn_detection": {"type": "server_vad", "threshold": 0.5, "prefix_padding_ms": 300,
                               "silence_duration_ms": 500}}}})
        until(conn, "session.updated")
        for i in range(0, len(audio), RATE // 10):  # 100 ms per append, as a microphone would
            conn.input_audio_buffer.append(audio=base64.b64encode(audio[i:i + RATE // 10].tobytes()).decode())
        events = until(conn, "response.done")
        if not of(events, "conversation.item.input_audio_transcription.completed"):
            events += until(conn, "conversation.item.input_audio_transcription.completed")
    started, stopped = of(events, "input_audio_buffer.speech_started"), of(events, "input_audio_buffer.speech_stopped")
    assert len(started) == len(stopped) == 1
    assert abs(started[0]["audio_start_ms"] - (500 - 300)) <= 10   # speech at 0.5 s, minus the padding
    assert abs(stopped[0]["audio_end_ms"] - (2500 + 500)) <= 10    # speech ends at 2.5 s, plus the silence
    item_id = started[0]["item_id"]
    assert stopped[0]["item_id"] == of(events, "input_audio_buffer.committed")[0]["item_id"] == item_id
    user = next(e["item"] for e in of(events, "conversation.item.added") if e["item"]["id"] == item_id)
    assert user["role"] == "user" and user["content"][0]["type"] == "input_audio"
    done = of(events, "conversation.item.input_audio_transcription.completed")[0]
    deltas = [e["delta"] for e in of(events, "conversation.item.input_audio_transcription.delta")]
    committed_s = (stopped[0]["audio_end_ms"] - started[0]["audio_start_ms"]) / 1000
    assert "".join(deltas) == done["transcript"] and len(done["transcript"].split()) == round(committed_s * 2.5)
    assert done["usage"]["input_token_details"]["audio_tokens"] == math.ceil(committed_s * 10)
    response = events[-1]["response"]  # created by the server when the turn ended
    assert response["status"] == "completed"
    assert response["usage"]["input_token_details"]["audio_tokens"] == math.ceil(committed_s * 10)


def test_manual_commit_and_buffer_events(server):
    with connect(ws_url(server), open_timeout=10) as ws:
        raw_until(ws, "session.created")
        ws.send(json.dumps({"type": "session.update", "session": {
            "type": "realtime", "audio": {"input": {"turn_detection": None}}}}))
        assert raw_until(ws, "session.updated")[-1]["session"]["audio"]["input"]["turn_detection"] is None
        ws.send(json.dumps({"type": "input_audio_buffer.append",
                            "audio": base64.b64encode(voiced(1.5).tobytes()).decode()}))
        ws.send(json.dumps({"type": "input_audio_buffer.commit"}))
        events = raw_until(ws, "conversation.item.done")
        assert not of(events, "input_audio_buffer.speech_started")  # turn detection is off
        item_id = of(events, "input_audio_buffer.committed")[0]["item_id"]
        ws.send(json.dumps({"type": "conversation.item.retrieve", "item_id": item_id}))
        part = raw_until(ws, "conversation.item.retrieved")[-1]["item"]["content"][0]
        assert len(base64.b64decode(part["audio"])) == 2 * RATE * 3 // 2
        ws.send(json.dumps({"type": "input_audio_buffer.append", "audio": base64.b64encode(b"\0\0" * 100).decode()}))
        ws.send(json.dumps({"type": "input_audio_buffer.clear"}))
        raw_until(ws, "input_audio_buffer.cleared")
        ws.send(json.dumps({"type": "input_audio_buffer.commit", "event_id": "empty"}))
        err = raw_until(ws, "error")[-1]["error"]
        assert (err["code"], err["event_id"]) == ("input_audio_buffer_commit_empty", "empty")
        ws.send(json.dumps({"type": "conversation.item.delete", "item_id": item_id}))
        assert raw_until(ws, "conversation.item.deleted")[-1]["item_id"] == item_id


# -- tools --------------------------------------------------------------------------------------------

def test_function_call_then_answer(server):
    with server.client().realtime.connect(model=MODEL) as conn:
        until(conn, "session.created")
        conn.session.update(session={"type": "realtime", "output_modalities": ["text"], "tools": [
            {"type": "function", "name": "get_weather", "description": "Current weather for a location.",
             "parameters": WEATHER}], "tool_choice": "auto"})
        until(conn, "session.updated")
        conn.conversation.item.create(item=user_text("What is the weather like in Paris today?"))
        conn.response.create()
        events = until(conn, "response.done")
        call = of(events, "response.output_item.done")[0]["item"]
        assert call["type"] == "function_call" and call["name"] == "get_weather"
        args = of(events, "response.function_call_arguments.done")[0]
        assert "".join(e["delta"] for e in of(events, "response.function_call_arguments.delta")) == args["arguments"]
        jsonschema.validate(json.loads(args["arguments"]), WEATHER)
        assert args["call_id"] == call["call_id"] and events[-1]["response"]["output"] == [call]
        conn.conversation.item.create(item={"type": "function_call_output", "call_id": call["call_id"],
                                            "output": json.dumps({"temperature": 21, "unit": "celsius"})})
        until(conn, "conversation.item.done")
        conn.response.create()
        answer = until(conn, "response.done")[-1]["response"]
    assert answer["output"][0]["type"] == "message"  # after the tool's result, the model answers
    details = answer["usage"]["input_token_details"]
    assert details["cached_tokens"] > 0  # the first turn's prompt is in the prefix cache
    assert details["cached_tokens_details"]["text_tokens"] == details["cached_tokens"]


# -- cancel, timing, out-of-band --------------------------------------------------------------------------

def test_cancel_mid_response_and_the_session_goes_on(paced):
    with paced.client().realtime.connect(model=MODEL) as conn:
        until(conn, "session.created")
        conn.session.update(session={"type": "realtime", "output_modalities": ["text"]})
        until(conn, "session.updated")
        conn.conversation.item.create(item=user_text("Write a long story about a lighthouse keeper."))
        conn.response.create(response={"max_output_tokens": 4096})
        first = until(conn, "response.output_text.delta")
        conn.response.cancel()
        events = first + until(conn, "response.done")
        limits = {x["name"]: x for x in of(events, "rate_limits.updated")[0]["rate_limits"]}
        assert limits["requests"]["limit"] == 1000 and limits["requests"]["remaining"] < 1000
        assert limits["tokens"]["limit"] == 1_000_000 and limits["tokens"]["remaining"] <= 1_000_000 - 4096
        assert 0 < limits["requests"]["reset_seconds"] <= 60
        done = events[-1]["response"]
        assert done["status"] == "cancelled" and done["status_details"] == {"type": "cancelled",
                                                                            "reason": "client_cancelled"}
        sent = of(events, "response.output_text.delta")
        assert done["output"][0]["status"] == "incomplete"
        assert done["usage"]["output_tokens"] == len(sent) < 4096
        assert of(events, "response.output_text.done")[0]["text"] == "".join(e["delta"] for e in sent)
        conn.response.cancel(event_id="nothing-to-cancel")
        assert until(conn, "error")[-1]["error"]["code"] == "response_cancel_not_active"
        conn.response.create(response={"max_output_tokens": 5})
        after = until(conn, "response.done")[-1]["response"]
    assert after["status"] == "incomplete" and after["status_details"]["reason"] == "max_output_tokens"
    assert after["usage"]["output_tokens"] == 5


def test_speech_interrupts_the_response_and_starts_the_next_turn(paced):
    with paced.client().realtime.connect(model=MODEL) as conn:
        until(conn, "session.created")
        conn.session.update(session={"type": "realtime", "output_modalities": ["text"], "audio": {"input": {
            "turn_detection": {"type": "server_vad", "silence_duration_ms": 300}}}})
        until(conn, "session.updated")
        conn.conversation.item.create(item=user_text("Tell me a long story about the sea."))
        conn.response.create(response={"max_output_tokens": 4096})
        until(conn, "response.output_text.delta")
        speech = np.concatenate([voiced(0.6), np.zeros(RATE // 2, np.int16)])
        conn.input_audio_buffer.append(audio=base64.b64encode(speech.tobytes()).decode())
        events = until(conn, "response.done")
        assert events[-1]["response"]["status_details"] == {"type": "cancelled", "reason": "turn_detected"}
        assert "input_audio_buffer.speech_started" in [e["type"] for e in events]
        events = until(conn, "response.done")  # the server answers the new turn
    assert [e["type"] for e in events][:3] == ["input_audio_buffer.speech_stopped", "input_audio_buffer.committed",
                                              "conversation.item.added"]
    assert events[-1]["response"]["status"] == "completed"
    assert events[-1]["response"]["usage"]["input_token_details"]["audio_tokens"] > 0


def test_first_delta_waits_for_the_ttft(paced):
    with connect(ws_url(paced), additional_headers={"Authorization": f"Bearer {KEY}"}, open_timeout=10) as ws:
        raw_until(ws, "session.created")
        ws.send(json.dumps({"type": "session.update", "session": {"type": "realtime", "output_modalities": ["text"]}}))
        raw_until(ws, "session.updated")
        ws.send(json.dumps({"type": "conversation.item.create", "item": user_text("Hello there.")}))
        raw_until(ws, "conversation.item.done")
        t0 = time.monotonic()
        ws.send(json.dumps({"type": "response.create", "response": {"max_output_tokens": 3}}))
        raw_until(ws, "response.output_text.delta")
        assert time.monotonic() - t0 >= 0.100
        raw_until(ws, "response.done")


def test_authentication_applies_to_the_handshake(paced):
    with pytest.raises(InvalidStatus) as e:
        connect(ws_url(paced), open_timeout=10)
    assert e.value.response.status_code == 401
    with pytest.raises(InvalidStatus) as e:
        connect(ws_url(paced), additional_headers={"Authorization": "Bearer sk-wrong"}, open_timeout=10)
    assert e.value.response.status_code == 401
    with paced.client().realtime.connect(model=MODEL) as conn:  # the SDK sends its key on the handshake
        assert checked(conn.recv_bytes())["type"] == "session.created"


def test_out_of_band_response_leaves_the_conversation_alone(server):
    with connect(ws_url(server), open_timeout=10) as ws:
        raw_until(ws, "session.created")
        ws.send(json.dumps({"type": "response.create", "response": {
            "conversation": "none", "output_modalities": ["text"], "metadata": {"purpose": "summary"},
            "max_output_tokens": 20, "input": [user_text("Summarize the tides in one sentence.")]}}))
        events = raw_until(ws, "response.done")
        assert not [e for e in events if e["type"].startswith("conversation.")]
        done = events[-1]["response"]
        assert done["metadata"] == {"purpose": "summary"} and "conversation_id" not in done
        ws.send(json.dumps({"type": "conversation.item.retrieve", "item_id": done["output"][0]["id"]}))
        assert raw_until(ws, "error")[-1]["error"]["code"] == "item_not_found"


def test_a_long_conversation_is_truncated_unless_truncation_is_disabled(server):
    words = " ".join(f"lighthouse{i}" for i in range(3000))  # ~9000 tokens per item
    with connect(ws_url(server), open_timeout=10) as ws:
        raw_until(ws, "session.created")
        ws.send(json.dumps({"type": "session.update", "session": {"type": "realtime", "output_modalities": ["text"],
                                                                  "truncation": "disabled"}}))
        raw_until(ws, "session.updated")
        for _ in range(4):
            ws.send(json.dumps({"type": "conversation.item.create", "item": user_text(words)}))
            raw_until(ws, "conversation.item.done")
        ws.send(json.dumps({"type": "response.create", "event_id": "too-long"}))
        events = raw_until(ws, "error")
        done = of(events, "response.done")[0]["response"]
        assert done["status"] == "failed" and done["status_details"]["error"]["code"] == "context_length_exceeded"
        assert events[-1]["error"]["event_id"] == "too-long"
        assert done["usage"]["input_tokens"] > 32_000
        ws.send(json.dumps({"type": "session.update", "session": {"type": "realtime", "truncation": "auto"}}))
        raw_until(ws, "session.updated")
        ws.send(json.dumps({"type": "response.create", "response": {"max_output_tokens": 5}}))
        usage = raw_until(ws, "response.done")[-1]["response"]["usage"]
    assert 9000 < usage["input_tokens"] <= 32_000 - 4096  # the oldest items left the context


# -- errors ---------------------------------------------------------------------------------------------

MALFORMED = [
    ("{not json", "invalid_json", None),
    (json.dumps([1, 2]), "invalid_event", None),
    (json.dumps({"event_id": "e1", "item": {}}), "invalid_event", "type"),
    (json.dumps({"event_id": "e2", "type": "conversation.item.explode"}), "invalid_value", "type"),
    (json.dumps({"event_id": "e3", "type": "conversation.item.create"}), "missing_required_parameter", "item"),
    (json.dumps({"event_id": "e4", "type": "input_audio_buffer.append", "audio": "***not base64***"}),
     "invalid_value", "audio"),
    (json.dumps({"event_id": "e5", "type": "input_audio_buffer.append", "audio": "AA=="}),  # 1 byte: half a sample
     "invalid_value", "audio"),
    (json.dumps({"event_id": "e6", "type": "conversation.item.retrieve", "item_id": "item_nope"}),
     "item_not_found", "item_id"),
    (json.dumps({"event_id": "e7", "type": "session.update", "session": {"type": "realtime", "voice": "x"}}),
     "unknown_parameter", "session.voice"),
    (json.dumps({"event_id": "e8", "type": "session.update", "session": {
        "type": "realtime", "output_modalities": ["text", "audio"]}}), "invalid_value", "session.output_modalities"),
    (json.dumps({"event_id": "e9", "type": "conversation.item.create", "item": {
        "type": "function_call_output", "call_id": "call_unknown", "output": "{}"}}),
     "invalid_tool_call_id", "item.call_id"),
    (json.dumps({"event_id": "e10", "type": "conversation.item.create", "item": {
        "type": "message", "role": "system", "content": [{"type": "input_audio", "audio": ""}]}}),
     "invalid_value", "item.content[0].type"),
    (json.dumps({"event_id": "e11", "type": "response.create", "response": {"max_output_tokens": 0}}),
     "invalid_value", "response.max_output_tokens"),
    (json.dumps({"event_id": "e12", "type": "session.update", "session": {"type": "realtime", "tools": [
        {"type": "function", "name": "f", "parameters": {"type": "nonsense"}}]}}),
     "invalid_function_parameters", "session.tools[0].parameters"),
]


def test_malformed_events_get_error_events_and_the_socket_stays_usable(server):
    with connect(ws_url(server), open_timeout=10) as ws:
        raw_until(ws, "session.created")
        for frame, code, param in MALFORMED:
            ws.send(frame)
            event = checked(ws.recv(timeout=10))
            assert event["type"] == "error", frame
            err = event["error"]
            assert (err["type"], err["code"], err["param"]) == ("invalid_request_error", code, param), frame
            sent = json.loads(frame) if frame.startswith("{\"") else {}
            assert err["event_id"] == sent.get("event_id"), frame
        ws.send(b'{"type": "input_audio_buffer.clear"}')  # a binary frame holding JSON is read too
        assert checked(ws.recv(timeout=10))["type"] == "input_audio_buffer.cleared"
        ws.send(json.dumps({"type": "session.update", "session": {"type": "realtime", "output_modalities": ["text"]}}))
        assert checked(ws.recv(timeout=10))["type"] == "session.updated"


@pytest.mark.parametrize("model,code", [("gpt-4o", "model_not_supported"), ("no-such-model", "model_not_found"),
                                        ("", "missing_required_parameter")])
def test_a_session_needs_a_realtime_model(server, model, code):
    with connect(ws_url(server, model), open_timeout=10) as ws:
        event = checked(ws.recv(timeout=10))
        assert event["type"] == "error" and event["error"]["code"] == code
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=10)
    assert closed.value.rcvd.code == 1008


def test_conversation_memory_is_bounded(monkeypatch):
    from fakeai.services import realtime_conversation as rc
    from fakeai.services.realtime_audio import PCM

    monkeypatch.setattr(rc, "MAX_AUDIO_BYTES", 10_000)
    monkeypatch.setattr(rc, "MAX_TEXT_CHARS", 1_000)
    conv = rc.Conversation()
    audio = base64.b64encode(b"\1\0" * 3000).decode()  # 6000 bytes, 125 ms
    spoken = [rc.client_item({"type": "message", "role": "user", "content": [{"type": "input_audio", "audio": audio}]},
                             PCM, "gpt-4o") for _ in range(3)]
    for item in spoken:
        conv.add(item)
    assert [bool(i.audio) for i in spoken] == [False, False, True]  # the oldest audio went first...
    assert all(i.seconds[0] == pytest.approx(0.125) for i in spoken)  # ...its duration (and tokens) stay
    for n in range(12):
        conv.add(rc.client_item(user_text("x" * 100), PCM, "gpt-4o"))
    assert len(conv.items) == 10 and spoken[0].id not in conv.by_id  # 1000 characters of text at most


# -- accounting -----------------------------------------------------------------------------------------

def test_usage_is_recorded_as_completions(server):
    model = "gpt-realtime-mini"  # no other test uses it

    def totals() -> dict:
        with server.http() as h:
            r = h.get("/v1/organization/usage/completions", params={"start_time": int(time.time()) - 3600,
                                                                    "models": model, "bucket_width": "1d"})
        rows = [x for b in r.json()["data"] for x in b["results"]]
        keys = ("input_tokens", "output_tokens", "input_audio_tokens", "output_audio_tokens", "num_model_requests")
        return {k: sum(x.get(k) or 0 for x in rows) for k in keys}

    before = totals()
    with server.client().realtime.connect(model=model) as conn:
        until(conn, "session.created")
        conn.input_audio_buffer.append(audio=base64.b64encode(voiced(1.0).tobytes()).decode())
        conn.session.update(session={"type": "realtime", "audio": {"input": {"turn_detection": None}}})
        until(conn, "session.updated")
        conn.input_audio_buffer.commit()
        conn.response.create(response={"max_output_tokens": 12})
        usage = until(conn, "response.done")[-1]["response"]["usage"]
    after = totals()
    assert usage["input_token_details"]["audio_tokens"] == 10 and usage["output_token_details"]["audio_tokens"] > 0
    assert after["num_model_requests"] - before["num_model_requests"] == 1
    assert after["input_tokens"] - before["input_tokens"] == usage["input_tokens"]
    assert after["output_tokens"] - before["output_tokens"] == usage["output_tokens"]
    assert after["input_audio_tokens"] - before["input_audio_tokens"] == 10
    assert after["output_audio_tokens"] - before["output_audio_tokens"] == usage["output_token_details"]["audio_tokens"]
