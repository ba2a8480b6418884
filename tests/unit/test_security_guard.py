"""The guard as a plain ASGI layer: what reaches the app, and what an in-process caller
(the batch runner) may do that an outside client cannot."""

from __future__ import annotations

import asyncio

from fakeai.config import Settings
from fakeai.security.auth import Guard
from fakeai.security.runtime import Security

KEY = "sk-guard-test-0123456789abcdef"


def call(guard: Guard, path: str = "/v1/models", headers=(), state=None) -> tuple[int, dict]:
    scope = {"type": "http", "method": "GET", "path": path, "headers": list(headers),
             "client": ("10.0.0.1", 1234), "state": dict(state or {})}
    out: dict = {}

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        if message["type"] == "http.response.start":
            out["status"] = message["status"]
        else:
            out["body"] = message.get("body", b"")

    asyncio.run(guard(scope, receive, send))
    return out["status"], scope["state"]


async def ok_app(scope, receive, send):
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"{}"})


def test_a_valid_key_reaches_the_app_and_names_itself_for_usage():
    sec = Security(Settings(api_key=[KEY]))
    guard = Guard(ok_app, sec)
    status, state = call(guard, headers=[(b"authorization", f"Bearer {KEY}".encode())])
    (record,) = sec.keys.records()
    assert status == 200 and state["api_key_id"] == record.id
    assert call(guard)[0] == 401
    assert call(guard, headers=[(b"x-api-key", b"sk-nope-0123456789")])[0] == 401


def test_in_process_callers_act_as_a_key_by_id_only_while_it_exists():
    sec = Security(Settings(api_key=[KEY]))
    guard = Guard(ok_app, sec)
    (record,) = sec.keys.records()
    assert call(guard, state={"act_as_key": record.id})[0] == 200
    assert call(guard, state={"act_as_key": "key_unknown"})[0] == 401
    sec.keys.revoke(record.id)
    assert call(guard, state={"act_as_key": record.id})[0] == 401


def test_nothing_configured_means_nothing_checked():
    sec = Security(Settings())
    assert not sec.active
    assert call(Guard(ok_app, sec), path="/admin/config")[0] == 200

