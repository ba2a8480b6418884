"""/v1/files through the official SDK against a real server: every purpose, JSONL
checks with line numbers, pagination, 404s, the size limit, streaming, and the
store options (data dir, memory, Redis shared by replicas)."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time

import httpx
import openai
import pytest

from tests.openapi_spec import validate, validate_error
from tests.redis_server import run_redis
from tests.server import run_server

PURPOSES = ("assistants", "batch", "fine-tune", "vision", "user_data", "evals")


def batch_jsonl(n: int = 3, model: str = "gpt-4o-mini") -> bytes:
    return "\n".join(json.dumps({
        "custom_id": f"req-{i}", "method": "POST", "url": "/v1/chat/completions",
        "body": {"model": model, "messages": [{"role": "user", "content": f"Say {i}"}]}}) for i in range(n)
    ).encode() + b"\n"


def fine_tune_jsonl(n: int = 3) -> bytes:
    return "\n".join(json.dumps({"messages": [
        {"role": "system", "content": "You are terse."}, {"role": "user", "content": f"Q{i}"},
        {"role": "assistant", "content": f"A{i}"}]}) for i in range(n)).encode()


def content_for(purpose: str) -> bytes:
    return {"batch": batch_jsonl(), "fine-tune": fine_tune_jsonl()}.get(purpose, os.urandom(5000))


def error_of(exc: openai.APIStatusError) -> dict:
    body = exc.response.json()
    validate_error(body)
    return body["error"]


class TestFiles:
    def test_upload_retrieve_content_list_delete(self, client):
        data = os.urandom(300_000) + b"\x00\r\n\xff" * 1000
        f = client.files.create(file=("blob.bin", data), purpose="user_data")
        raw = client.files.with_raw_response.retrieve(f.id).http_response.json()
        validate("OpenAIFile", raw)
        assert (f.bytes, f.filename, f.purpose, f.status, f.object) == (len(data), "blob.bin", "user_data",
                                                                        "processed", "file")
        assert f.id.startswith("file-") and abs(f.created_at - time.time()) < 60
        assert f.expires_at is None  # only batch files expire by default
        assert client.files.retrieve(f.id) == f
        got = client.files.content(f.id)
        assert got.content == data
        assert got.response.headers["content-length"] == str(len(data))
        listed = client.files.with_raw_response.list(purpose="user_data").http_response.json()
        validate("ListFilesResponse", listed)
        assert f.id in [x["id"] for x in listed["data"]]
        deleted = client.files.with_raw_response.delete(f.id).http_response.json()
        validate("DeleteFileResponse", deleted)
        assert deleted == {"id": f.id, "object": "file", "deleted": True}
        for call in (client.files.retrieve, client.files.content, client.files.delete):
            with pytest.raises(openai.NotFoundError) as e:
                call(f.id)
            assert f.id in error_of(e.value)["message"]
        assert f.id not in [x.id for x in client.files.list()]

    @pytest.mark.parametrize("purpose", PURPOSES)
    def test_every_purpose(self, client, purpose):
        data = content_for(purpose)
        f = client.files.create(file=(f"x-{purpose}.dat", data), purpose=purpose)
        raw = client.files.with_raw_response.retrieve(f.id).http_response.json()
        # the spec's CreateFileRequest accepts 'evals' but its OpenAIFile enum omits it
        validate("OpenAIFile", {**raw, "purpose": "user_data"} if purpose == "evals" else raw)
        assert f.purpose == purpose and f.bytes == len(data)
        assert client.files.content(f.id).content == data
        if purpose == "batch":  # OpenAI: batch input files expire after 30 days by default
            assert f.expires_at == f.created_at + 30 * 86400
        else:
            assert f.expires_at is None

    @pytest.mark.parametrize("purpose", ["batch_output", "fine-tune-results", "nonsense"])
    def test_purposes_not_for_upload_are_refused(self, client, purpose):
        with pytest.raises(openai.BadRequestError) as e:
            client.files.create(file=("a.txt", b"hello"), purpose=purpose)
        err = error_of(e.value)
        assert err["param"] == "purpose" and purpose in err["message"]

    def test_expires_after(self, client):
        f = client.files.create(file=("a.txt", b"hi"), purpose="user_data",
                                expires_after={"anchor": "created_at", "seconds": 7200})
        assert f.expires_at == f.created_at + 7200
        for bad in ({"anchor": "created_at", "seconds": 60}, {"anchor": "last_active_at", "seconds": 7200}):
            with pytest.raises(openai.BadRequestError) as e:
                client.files.create(file=("a.txt", b"hi"), purpose="user_data", expires_after=bad)
            assert error_of(e.value)["param"].startswith("expires_after")

    def test_missing_parts(self, server):
        with server.http() as http:
            r = http.post("/v1/files", data={"purpose": "user_data"}, files={"other": ("a", b"x")})
            assert r.status_code == 400 and r.json()["error"]["param"] == "file"
            r = http.post("/v1/files", files={"file": ("a", b"x")})
            assert r.status_code == 400 and r.json()["error"]["param"] == "purpose"
            r = http.post("/v1/files", json={"purpose": "user_data"})
            assert r.status_code == 400
            validate_error(r.json())

    def test_purpose_after_the_file_part_still_checks_jsonl(self, server):
        """A form may put the file before the purpose: the JSONL check runs afterwards."""
        boundary = "xyzzy"
        body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"b.jsonl\"\r\n\r\n"
                "{\"custom_id\": \"a\"}\n\r\n"
                f"--{boundary}\r\nContent-Disposition: form-data; name=\"purpose\"\r\n\r\nbatch\r\n"
                f"--{boundary}--\r\n").encode()
        with server.http() as http:
            r = http.post("/v1/files", content=body,
                          headers={"content-type": f"multipart/form-data; boundary={boundary}"})
        assert r.status_code == 400 and "line 1" in r.json()["error"]["message"]
        good = body.replace(b'{"custom_id": "a"}', batch_jsonl(1).strip())
        with server.http() as http:
            r = http.post("/v1/files", content=good,
                          headers={"content-type": f"multipart/form-data; boundary={boundary}"})
        assert r.status_code == 200 and r.json()["purpose"] == "batch"

    @pytest.mark.parametrize("purpose,content,line,words", [
        ("batch", batch_jsonl(2) + b"{not json}\n", 3, "not valid JSON"),
        ("batch", batch_jsonl(1) + b'{"custom_id": "x", "method": "POST", "url": "/v1/chat/completions"}\n',
         2, "'body'"),
        ("batch", b'{"custom_id": "x", "method": "GET", "url": "/v1/chat/completions", "body": {}}', 1, "POST"),
        ("batch", b'{"custom_id": "x", "method": "POST", "url": "/v1/images/edits", "body": {}}', 1, "url"),
        ("batch", b"[1, 2]\n", 1, "JSON object"),
        ("batch", b"\n\n", None, "no requests"),
        ("fine-tune", fine_tune_jsonl(3) + b'\n{"text": "free text"}', 4, "training example"),
        ("fine-tune", b'{"messages": [{"role": "robot", "content": "x"}]}', 1, "role"),
    ])
    def test_malformed_jsonl_names_the_line(self, client, purpose, content, line, words):
        before = {f.id for f in client.files.list(purpose=purpose)}
        with pytest.raises(openai.BadRequestError) as e:
            client.files.create(file=("bad.jsonl", content), purpose=purpose)
        err = error_of(e.value)
        if line is not None:
            assert f"line {line} " in err["message"]
        assert words in err["message"] and err["param"] == "file"
        assert {f.id for f in client.files.list(purpose=purpose)} == before  # nothing was kept

    def test_pagination_and_order(self, client):
        ids = [client.files.create(file=(f"p{i}.txt", b"x"), purpose="vision").id for i in range(5)]
        page = client.files.with_raw_response.list(purpose="vision", limit=2, order="asc").http_response.json()
        validate("ListFilesResponse", page)
        assert len(page["data"]) == 2 and page["has_more"] is True
        everything_asc = [f.id for f in client.files.list(purpose="vision", limit=2, order="asc")]  # auto-paging
        assert [i for i in everything_asc if i in ids] == ids
        everything_desc = [f.id for f in client.files.list(purpose="vision", limit=3)]
        assert [i for i in everything_desc if i in ids] == ids[::-1]
        after = client.files.list(purpose="vision", after=ids[2], order="asc", limit=100)
        assert [f.id for f in after.data if f.id in ids] == ids[3:]
        with pytest.raises(openai.BadRequestError):
            client.files.list(limit=0)

    def test_unknown_ids_are_404(self, server):
        with server.http() as http:
            for method, path in (("GET", "/v1/files/file-nope"), ("GET", "/v1/files/file-nope/content"),
                                 ("DELETE", "/v1/files/file-nope")):
                r = http.request(method, path)
                assert r.status_code == 404, path
                validate_error(r.json())
                assert "file-nope" in r.json()["error"]["message"]


class TestSizeLimit:
    def test_max_file_bytes_and_no_global_body_limit(self):
        """max_file_bytes gives 413 past it; the (smaller) global body limit does not apply."""
        with run_server("--max-file-bytes", "1500000", "--max-request-bytes", "65536",
                        "--ttft", "0", "--itl", "0") as s:
            c = s.client()
            data = os.urandom(1_500_000)
            f = c.files.create(file=("big.bin", data), purpose="user_data")
            assert c.files.content(f.id).content == data
            with pytest.raises(openai.APIStatusError) as e:
                c.files.create(file=("big.bin", data + b"!"), purpose="user_data")
            assert e.value.status_code == 413
            assert error_of(e.value)["code"] == "file_too_large"
            # a streamed (chunked) body past the limit is cut off too, leaving nothing behind
            chunks = (os.urandom(100_000) for _ in range(20))
            with httpx.Client(base_url=s.base_url, timeout=30) as http:
                boundary = b"bnd"
                def body():
                    yield (b"--bnd\r\nContent-Disposition: form-data; name=\"purpose\"\r\n\r\nuser_data\r\n"
                           b"--bnd\r\nContent-Disposition: form-data; name=\"file\"; filename=\"s.bin\"\r\n\r\n")
                    yield from chunks
                    yield b"\r\n--bnd--\r\n"
                r = http.post("/v1/files", content=body(),
                              headers={"content-type": f"multipart/form-data; boundary={boundary.decode()}"})
            assert r.status_code == 413
            assert [x.id for x in c.files.list()] == [f.id]
            # the global limit still holds elsewhere
            with pytest.raises(openai.APIStatusError) as e:
                c.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "x" * 70000}])
            assert e.value.status_code == 413

    def test_large_file_streams_without_being_held_in_memory(self, server):
        size = 96 * 1024 * 1024
        block = os.urandom(1 << 20)
        peak_before = _peak_rss(server.proc.pid)

        def body():
            yield (b"--bnd\r\nContent-Disposition: form-data; name=\"purpose\"\r\n\r\nassistants\r\n"
                   b"--bnd\r\nContent-Disposition: form-data; name=\"file\"; filename=\"big.bin\"\r\n\r\n")
            for _ in range(size // len(block)):
                yield block
            yield b"\r\n--bnd--\r\n"

        with httpx.Client(base_url=server.base_url, timeout=60) as http:
            r = http.post("/v1/files", content=body(), headers={"content-type": "multipart/form-data; boundary=bnd"})
            assert r.status_code == 200, r.text
            fid = r.json()["id"]
            assert r.json()["bytes"] == size
            digest, n = hashlib.sha256(), 0
            with http.stream("GET", f"/v1/files/{fid}/content") as resp:
                for chunk in resp.iter_bytes():
                    digest.update(chunk)
                    n += len(chunk)
        expected = hashlib.sha256()
        for _ in range(size // len(block)):
            expected.update(block)
        assert n == size and digest.hexdigest() == expected.hexdigest()
        grown = _peak_rss(server.proc.pid) - peak_before
        assert grown < size // 3, f"peak RSS grew by {grown >> 20} MiB for a {size >> 20} MiB file"
        server.client().files.delete(fid)


def _peak_rss(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM")


class TestStoreOptions:
    def test_files_survive_a_restart_in_data_dir(self):
        with tempfile.TemporaryDirectory() as d:
            data = os.urandom(50_000)
            with run_server("--data-dir", d) as s:  # the flag
                f = s.client().files.create(file=("keep.bin", data), purpose="user_data")
            assert os.path.exists(os.path.join(d, "fakeai.sqlite3"))
            with run_server(env={"FAKEAI_DATA_DIR": d}) as s:  # the environment
                c = s.client()
                assert c.files.retrieve(f.id) == f
                assert c.files.content(f.id).content == data

    def test_memory_store_forgets_on_restart(self):
        with tempfile.TemporaryDirectory() as d:
            with run_server("--store", "memory", "--data-dir", d) as s:
                c = s.client()
                f = c.files.create(file=("gone.bin", b"abc"), purpose="user_data")
                assert c.files.content(f.id).content == b"abc"
            assert os.listdir(d) == []  # nothing written to disk
            with run_server("--store", "memory", "--data-dir", d) as s, pytest.raises(openai.NotFoundError):
                s.client().files.retrieve(f.id)

    def test_redis_store_is_shared_by_replicas(self):
        with run_redis() as url:
            env = {"FAKEAI_STORE": "redis", "FAKEAI_REDIS_URL": url}
            with run_server(env=env) as a, run_server("--store", "redis", "--redis-url", url) as b:
                data = os.urandom(3_000_000)
                f = a.client().files.create(file=("shared.bin", data), purpose="user_data")
                cb = b.client()
                assert cb.files.retrieve(f.id) == f
                assert cb.files.content(f.id).content == data
                assert f.id in [x.id for x in cb.files.list()]
                cb.files.delete(f.id)
                with pytest.raises(openai.NotFoundError):
                    a.client().files.retrieve(f.id)
