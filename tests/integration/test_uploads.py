"""/v1/uploads through the official SDK: parts in any order, completion with md5 into a
normal file, byte-count and md5 mismatches, cancel, expiry, the part and total limits."""

from __future__ import annotations

import asyncio
import concurrent.futures
import hashlib
import json
import os

import httpx
import openai
import pytest

from fakeai.services import uploads
from fakeai.store.sqlite import SQLiteStore
from tests.openapi_spec import validate, validate_error
from tests.server import run_server


def error_of(exc: openai.APIStatusError) -> dict:
    body = exc.response.json()
    validate_error(body)
    return body["error"]


def new_upload(client, data: bytes, purpose: str = "assistants", **kw):
    return client.uploads.create(bytes=len(data), filename="up.bin", mime_type="application/octet-stream",
                                 purpose=purpose, **kw)


def test_parts_in_parallel_then_complete_in_order(client):
    pieces = [os.urandom(200_000 + i) for i in range(4)]
    data = b"".join(pieces)
    raw = client.uploads.with_raw_response.create(bytes=len(data), filename="big.bin", mime_type="image/png",
                                                  purpose="vision").http_response.json()
    validate("Upload", raw)
    assert raw["status"] == "pending" and raw["expires_at"] == raw["created_at"] + 3600
    with concurrent.futures.ThreadPoolExecutor(4) as pool:  # sent at once, in reverse
        parts = list(pool.map(lambda p: client.uploads.parts.with_raw_response.create(raw["id"], data=p),
                              pieces[::-1]))
    part_ids = []
    for p in parts[::-1]:
        body = p.http_response.json()
        validate("UploadPart", body)
        assert body["upload_id"] == raw["id"] and body["object"] == "upload.part"
        part_ids.append(body["id"])
    done = client.uploads.with_raw_response.complete(raw["id"], part_ids=part_ids,
                                                     md5=hashlib.md5(data).hexdigest()).http_response.json()
    validate("Upload", done)
    assert done["status"] == "completed"
    f = done["file"]
    validate("OpenAIFile", f)
    assert (f["bytes"], f["filename"], f["purpose"]) == (len(data), "big.bin", "vision")
    assert client.files.content(f["id"]).content == data
    assert client.files.retrieve(f["id"]).id == f["id"]
    with pytest.raises(openai.BadRequestError):  # a completed upload takes no more parts
        client.uploads.parts.create(raw["id"], data=b"more")


def test_sdk_chunked_helper_and_file_expiry(client):
    data = os.urandom(1_000_000)
    up = client.uploads.upload_file_chunked(file=data, filename="c.bin", bytes=len(data),
                                            mime_type="application/octet-stream",
                                            purpose="assistants", part_size=300_000)
    assert up.status == "completed" and up.file.bytes == len(data)
    assert client.files.content(up.file.id).content == data
    up = client.uploads.create(bytes=2, filename="e.txt", mime_type="text/plain", purpose="assistants",
                               expires_after={"anchor": "created_at", "seconds": 4000})
    part = client.uploads.parts.create(up.id, data=b"ok")
    done = client.uploads.complete(up.id, part_ids=[part.id])
    assert done.file.expires_at == done.file.created_at + 4000


def test_md5_mismatch_then_retry(client):
    data = b"hello world\n" * 1000
    up = new_upload(client, data)
    part = client.uploads.parts.create(up.id, data=data)
    with pytest.raises(openai.BadRequestError) as e:
        client.uploads.complete(up.id, part_ids=[part.id], md5=hashlib.md5(b"other").hexdigest())
    err = error_of(e.value)
    assert err["param"] == "md5" and hashlib.md5(data).hexdigest() in err["message"]
    done = client.uploads.complete(up.id, part_ids=[part.id], md5=hashlib.md5(data).hexdigest())
    assert done.status == "completed" and client.files.content(done.file.id).content == data


def test_byte_count_and_part_id_mismatches(client):
    up = new_upload(client, b"x" * 10)
    p1 = client.uploads.parts.create(up.id, data=b"x" * 4)
    with pytest.raises(openai.BadRequestError) as e:
        client.uploads.complete(up.id, part_ids=[p1.id])
    assert "(4)" in error_of(e.value)["message"] and "(10)" in error_of(e.value)["message"]
    other = new_upload(client, b"y" * 6)
    foreign = client.uploads.parts.create(other.id, data=b"y" * 6)
    for ids in ([p1.id, foreign.id], [p1.id, p1.id], [], ["part_nope"]):
        with pytest.raises(openai.BadRequestError) as e:
            client.uploads.complete(up.id, part_ids=ids)
        assert error_of(e.value)["param"] == "part_ids"


def test_batch_upload_is_checked_on_completion(client):
    good = json.dumps({"custom_id": "a", "method": "POST", "url": "/v1/embeddings",
                       "body": {"model": "text-embedding-3-small", "input": "x"}}).encode()
    data = good + b"\n" + b"{oops\n"
    up = new_upload(client, data, purpose="batch")
    part = client.uploads.parts.create(up.id, data=data)
    with pytest.raises(openai.BadRequestError) as e:
        client.uploads.complete(up.id, part_ids=[part.id])
    assert "line 2" in error_of(e.value)["message"]


def test_cancel(client):
    up = new_upload(client, b"abc")
    client.uploads.parts.create(up.id, data=b"abc")
    raw = client.uploads.with_raw_response.cancel(up.id).http_response.json()
    validate("Upload", raw)
    assert raw["status"] == "cancelled" and raw["file"] is None
    for call in (lambda: client.uploads.cancel(up.id), lambda: client.uploads.parts.create(up.id, data=b"x"),
                 lambda: client.uploads.complete(up.id, part_ids=["part_x"])):
        with pytest.raises(openai.BadRequestError) as e:
            call()
        assert "cancelled" in error_of(e.value)["message"]


def test_unknown_upload_is_404(server):
    with server.http() as http:
        for path, kw in (("/v1/uploads/upload_nope/parts", {"files": {"data": ("d", b"x")}}),
                         ("/v1/uploads/upload_nope/complete", {"json": {"part_ids": ["p"]}}),
                         ("/v1/uploads/upload_nope/cancel", {})):
            r = http.post(path, **kw)
            assert r.status_code == 404, path
            validate_error(r.json())


def test_create_validation(client):
    with pytest.raises(openai.BadRequestError) as e:
        client.uploads.create(bytes=10, filename="a", mime_type="text/plain", purpose="batch_output")
    assert error_of(e.value)["param"] == "purpose"
    with pytest.raises(openai.BadRequestError) as e:
        client.uploads.create(bytes=-1, filename="a", mime_type="text/plain", purpose="assistants")
    assert error_of(e.value)["param"] == "bytes"
    with pytest.raises(openai.BadRequestError) as e:
        client.uploads.with_raw_response.create(bytes=10, filename="a", purpose="assistants",
                                                mime_type=None)  # type: ignore[arg-type]
    assert error_of(e.value)["param"] == "mime_type"


def test_part_limit_is_64_mb(server):
    """A part past 64 MB is refused with 413 even when its length is not declared up front."""
    up = new_upload(server.client(), b"z" * 10)
    block = b"z" * (1 << 20)

    def body():
        yield b"--bnd\r\nContent-Disposition: form-data; name=\"data\"; filename=\"blob\"\r\n\r\n"
        for _ in range(64):
            yield block
        yield b"z"
        yield b"\r\n--bnd--\r\n"

    with httpx.Client(base_url=server.base_url, timeout=60) as http:
        r = http.post(f"/v1/uploads/{up.id}/parts", content=body(),
                      headers={"content-type": "multipart/form-data; boundary=bnd"})
    assert r.status_code == 413 and r.json()["error"]["code"] == "file_too_large"


def test_max_upload_bytes():
    with run_server("--max-upload-bytes", "1000", "--ttft", "0", "--itl", "0") as s:
        c = s.client()
        with pytest.raises(openai.BadRequestError) as e:
            c.uploads.create(bytes=1001, filename="a", mime_type="text/plain", purpose="assistants")
        err = error_of(e.value)
        assert err["param"] == "bytes" and "1000" in err["message"]
        data = os.urandom(1000)
        up = c.uploads.upload_file_chunked(file=data, filename="a", bytes=len(data), mime_type="text/plain",
                                           purpose="assistants")
        assert c.files.content(up.file.id).content == data


def test_uploads_expire_after_an_hour(monkeypatch):
    """The service, on a memory store, with the clock moved past the hour."""

    async def go():
        store = SQLiteStore(None)
        await store.open()
        up = await uploads.create_upload(store, filename="a", purpose="assistants", size=3, mime_type="x",
                                         file_ttl_s=None, max_bytes=10)
        await uploads.add_part(store, up["id"], _stream(b"abc"))
        now = up["created_at"] + 3600
        monkeypatch.setattr(uploads.time, "time", lambda: now)
        with pytest.raises(uploads.ServiceError) as e:
            await uploads.add_part(store, up["id"], _stream(b"abc"))
        assert "expired" in e.value.message
        assert (await store.get(uploads.KIND, up["id"]))["status"] == "expired"
        assert await store.count(uploads.PART_KIND, parent=up["id"]) == 0  # its parts are gone
        await store.close()

    asyncio.run(go())


async def _stream(data: bytes):
    yield data
