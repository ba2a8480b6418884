"""Stored chat completions (``store=true``): list, filters, retrieve, update, delete, messages."""

from __future__ import annotations

import os

import openai
import pytest

from tests.openapi_spec import validate, validate_error

MODEL = "gpt-4o-mini"


def test_store_list_filter_and_paginate(server, client):
    tag = os.urandom(4).hex()  # the session server is shared: filter on this test's own tag
    made = [client.chat.completions.create(model=model, messages=[{"role": "user", "content": f"Hi {i}"}],
                                           max_tokens=8, store=True, metadata={"tag": tag, "i": str(i)})
            for i, model in enumerate([MODEL, MODEL, "gpt-4.1-mini"])]
    unstored = client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "no"}],
                                              max_tokens=8, metadata={"tag": tag})
    with server.http() as http:
        body = http.get("/v1/chat/completions", params={"metadata[tag]": tag}).json()
    validate("ChatCompletionList", body)
    assert [c["id"] for c in body["data"]] == [c.id for c in made]  # oldest first by default
    assert unstored.id not in {c["id"] for c in body["data"]}
    assert body["data"][0]["metadata"] == {"tag": tag, "i": "0"}
    assert body["data"][0]["choices"][0]["message"]["content"] == made[0].choices[0].message.content
    only_41 = client.chat.completions.list(metadata={"tag": tag}, model="gpt-4.1-mini")
    assert [c.id for c in only_41.data] == [made[2].id]
    one = client.chat.completions.list(metadata={"tag": tag, "i": "1"})
    assert [c.id for c in one.data] == [made[1].id]
    page1 = client.chat.completions.list(metadata={"tag": tag}, limit=2)
    assert [c.id for c in page1.data] == [made[0].id, made[1].id] and page1.has_more
    page2 = client.chat.completions.list(metadata={"tag": tag}, limit=2, after=page1.data[-1].id)
    assert [c.id for c in page2.data] == [made[2].id] and not page2.has_more
    desc = client.chat.completions.list(metadata={"tag": tag}, order="desc")
    assert [c.id for c in desc.data] == [c.id for c in reversed(made)]
    # the SDK pages through them itself
    assert [c.id for c in client.chat.completions.list(metadata={"tag": tag}, limit=1)] == [c.id for c in made]


def test_retrieve_update_delete_and_messages(server, client):
    messages = [{"role": "system", "content": "Be terse."},
                {"role": "user", "content": [{"type": "text", "text": "Name a colour."}]}]
    c = client.chat.completions.create(model=MODEL, messages=messages, max_tokens=8, store=True,
                                       metadata={"k": "v"})
    with server.http() as http:
        got = http.get(f"/v1/chat/completions/{c.id}").json()
        validate("CreateChatCompletionResponse", got)
        assert got["usage"] == c.usage.model_dump(mode="json", exclude_unset=True)
        msgs = http.get(f"/v1/chat/completions/{c.id}/messages").json()
    # the spec types list items as assistant messages; its own example lists the request's roles
    validate("ChatCompletionMessageList", {**msgs, "data": [{**m, "role": "assistant"} for m in msgs["data"]]})
    assert [(m["id"], m["role"], m["content"]) for m in msgs["data"]] == [
        (f"{c.id}-0", "system", "Be terse."), (f"{c.id}-1", "user", "Name a colour.")]
    assert msgs["data"][1]["content_parts"] == [{"type": "text", "text": "Name a colour."}]
    sdk_msgs = client.chat.completions.messages.list(c.id, limit=1)
    assert [m.role for m in sdk_msgs.data] == ["system"] and sdk_msgs.has_more
    updated = client.chat.completions.update(c.id, metadata={"k": "w", "x": "y"})
    assert updated.metadata == {"k": "w", "x": "y"}
    assert client.chat.completions.retrieve(c.id).metadata == {"k": "w", "x": "y"}
    with server.http() as http:
        deleted = http.delete(f"/v1/chat/completions/{c.id}").json()
        validate("ChatCompletionDeleted", deleted)
        assert deleted == {"object": "chat.completion.deleted", "id": c.id, "deleted": True}
        for method, path in [("GET", f"/v1/chat/completions/{c.id}"), ("DELETE", f"/v1/chat/completions/{c.id}"),
                             ("GET", f"/v1/chat/completions/{c.id}/messages")]:
            r = http.request(method, path)
            assert r.status_code == 404
            validate_error(r.json())


def test_streamed_completion_is_stored_once_sent(client):
    tag = os.urandom(4).hex()
    stream = client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "Count to five."}],
                                            stream=True, store=True, metadata={"tag": tag})
    chunks = list(stream)
    text = "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices)
    (stored,) = client.chat.completions.list(metadata={"tag": tag}).data
    assert stored.id == chunks[0].id and stored.choices[0].message.content == text


def test_bad_requests(server, client):
    with server.http() as http:
        r = http.post("/v1/chat/completions", json={"model": MODEL, "messages": [{"role": "user", "content": "x"}],
                                                    "store": True, "metadata": {"k" * 65: "v"}})
        assert r.status_code == 400 and r.json()["error"]["param"] == "metadata"
        r = http.get("/v1/chat/completions", params={"limit": 0})
        assert r.status_code == 400 and r.json()["error"]["param"] == "limit"
        validate_error(r.json())
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.update("chatcmpl-missing", metadata={"a": "b"})
