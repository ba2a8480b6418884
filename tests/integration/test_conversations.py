"""Conversations: CRUD, items, and responses that read from and append to them."""

from __future__ import annotations

import openai
import pytest

from fakeai.engine.tokenizer import get_tokenizer
from tests.openapi_spec import validate, validate_error

MODEL = "gpt-4o-mini"
TOK = get_tokenizer("o200k_base")


def msg_tokens(role: str, text: str) -> int:
    return 3 + len(TOK.encode(role)) + len(TOK.encode(text))


def test_conversation_crud_and_items(server, client):
    conv = client.conversations.create(metadata={"topic": "travel"},
                                       items=[{"type": "message", "role": "user", "content": "Hello!"},
                                              {"role": "assistant", "content": "Hi, where to?"}])
    with server.http() as http:
        body = http.get(f"/v1/conversations/{conv.id}").json()
        validate("ConversationResource", body)
        assert body["metadata"] == {"topic": "travel"} and body["id"].startswith("conv_")
        listed = http.get(f"/v1/conversations/{conv.id}/items", params={"order": "asc"}).json()
        validate("ConversationItemList", listed)
    assert [i["role"] for i in listed["data"]] == ["user", "assistant"]
    assert listed["data"][0]["content"] == [{"type": "input_text", "text": "Hello!"}]
    added = client.conversations.items.create(conv.id, items=[{"role": "user", "content": "Lisbon, maybe."}])
    assert len(added.data) == 1 and added.data[0].role == "user"
    desc = client.conversations.items.list(conv.id, limit=2)  # newest first by default
    assert [i.role for i in desc.data] == ["user", "assistant"] and desc.has_more
    rest = client.conversations.items.list(conv.id, limit=2, after=desc.data[-1].id)
    assert [i.role for i in rest.data] == ["user"] and not rest.has_more
    one = client.conversations.items.retrieve(added.data[0].id, conversation_id=conv.id)
    assert one.content[0].text == "Lisbon, maybe."
    with server.http() as http:
        validate("ConversationItem", http.get(f"/v1/conversations/{conv.id}/items/{one.id}").json())
    after_delete = client.conversations.items.delete(one.id, conversation_id=conv.id)
    assert after_delete.id == conv.id
    assert len(client.conversations.items.list(conv.id).data) == 2
    updated = client.conversations.update(conv.id, metadata={"topic": "food"})
    assert updated.metadata == {"topic": "food"}
    assert client.conversations.retrieve(conv.id).metadata == {"topic": "food"}
    with server.http() as http:
        gone = http.delete(f"/v1/conversations/{conv.id}").json()
    validate("DeletedConversationResource", gone)
    assert gone == {"id": conv.id, "object": "conversation.deleted", "deleted": True}
    with pytest.raises(openai.NotFoundError):
        client.conversations.retrieve(conv.id)


def test_responses_append_to_a_conversation(client):
    conv = client.conversations.create(items=[{"role": "user", "content": "My name is Ada."}])
    r1 = client.responses.create(model=MODEL, conversation=conv.id, input="What is a lighthouse?",
                                 max_output_tokens=40)
    assert r1.conversation.id == conv.id
    expected = 3 + msg_tokens("user", "My name is Ada.") + msg_tokens("user", "What is a lighthouse?")
    assert r1.usage.input_tokens == expected
    items = client.conversations.items.list(conv.id, order="asc").data
    assert [(i.type, i.role) for i in items] == [("message", "user"), ("message", "user"), ("message", "assistant")]
    assert items[-1].id == r1.output[0].id and items[-1].content[0].text == r1.output_text
    r2 = client.responses.create(model=MODEL, conversation={"id": conv.id}, input="And who am I?",
                                 max_output_tokens=20)
    assert r2.usage.input_tokens == (expected + msg_tokens("assistant", r1.output_text)
                                     + msg_tokens("user", "And who am I?"))
    assert len(client.conversations.items.list(conv.id).data) == 5


def test_conversation_errors(server, client):
    with server.http() as http:
        for method, path in [("GET", "/v1/conversations/conv_missing"), ("DELETE", "/v1/conversations/conv_missing"),
                             ("GET", "/v1/conversations/conv_missing/items"),
                             ("GET", "/v1/conversations/conv_missing/items/msg_x")]:
            r = http.request(method, path)
            assert r.status_code == 404, path
            validate_error(r.json())
        conv = client.conversations.create()
        r = http.get(f"/v1/conversations/{conv.id}/items/msg_missing")
        assert r.status_code == 404 and r.json()["error"]["param"] == "item_id"
        r = http.post("/v1/conversations", json={"items": [{"role": "user"}]})
        assert r.status_code == 400 and r.json()["error"]["param"] == "items[0].content"
        r = http.post("/v1/conversations", json={"metadata": {f"k{i}": "v" for i in range(17)}})
        assert r.status_code == 400 and r.json()["error"]["param"] == "metadata"
        r = http.post("/v1/conversations", json={"items": [{"role": "user", "content": "x"}] * 21})
        assert r.status_code == 400 and r.json()["error"]["param"] == "items"
        r = http.post("/v1/responses", json={"model": MODEL, "input": "hi", "conversation": "conv_missing"})
        assert r.status_code == 404 and r.json()["error"]["param"] == "conversation"
        validate_error(r.json())
