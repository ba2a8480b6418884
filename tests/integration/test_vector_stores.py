"""Vector stores through the official SDK against a real server: ingestion, search,
filters, chunking, batches, pagination, errors, and persistence across a restart."""

from __future__ import annotations

import math
import tempfile
import time

import numpy as np
import openai
import pytest

from fakeai.engine.tokenizer import get_tokenizer
from tests.openapi_spec import validate, validate_error
from tests.server import run_server, wait_for
from tests.unit.test_chunking import minimal_pdf

PLANTED = ("Internal memo: the emergency shutdown passphrase for the Halvorsen reactor is "
           "'cobalt-heron-nineteen'. Share it only with the duty engineer on call.")
DISTRACTORS = {
    "bananas.txt": "Bananas are rich in potassium and grow in tropical climates across Central America.",
    "trains.md": "# Rail\nHigh speed trains connect the major cities of Europe at over 300 km/h.",
    "press.txt": "Gutenberg's printing press transformed how books were produced in the fifteenth century.",
    "reactor_history.txt": "The first nuclear reactor, Chicago Pile-1, reached criticality in December 1942.",
    "passwords.txt": "Choose long passphrases and never reuse a password across different websites.",
    "weather.csv": "city,temp\nOslo,4\nLisbon,18\nCairo,31\n",
    "page.html": "<html><body><h1>Gardening</h1><p>Tomatoes need six hours of sun a day.</p>"
                 "<script>track()</script></body></html>",
}
QUERY = "What is the emergency shutdown passphrase of the Halvorsen reactor?"


def upload(client, name: str, data: str | bytes, purpose: str = "assistants") -> str:
    body = data.encode() if isinstance(data, str) else data
    return client.files.create(file=(name, body), purpose=purpose).id


def wait_completed(client, vs_id: str, timeout: float = 20.0):
    assert wait_for(lambda: client.vector_stores.retrieve(vs_id).status == "completed", timeout)
    return client.vector_stores.retrieve(vs_id)


@pytest.fixture(scope="module")
def corpus(client):
    """A store of the planted passage among distractors: (store id, {filename: file id})."""
    names = {"halvorsen_memo.txt": PLANTED, **DISTRACTORS}
    ids = {name: upload(client, name, text) for name, text in names.items()}
    vs = client.vector_stores.create(name="corpus", file_ids=list(ids.values()), metadata={"team": "ops"})
    wait_completed(client, vs.id)
    return vs.id, ids


class TestSearch:
    def test_the_planted_passage_ranks_first(self, client, server, corpus):
        vs_id, ids = corpus
        page = client.vector_stores.search(vs_id, query=QUERY)
        assert page.data[0].file_id == ids["halvorsen_memo.txt"]
        assert page.data[0].filename == "halvorsen_memo.txt"
        assert "cobalt-heron-nineteen" in page.data[0].content[0].text
        scores = [r.score for r in page.data]
        assert scores == sorted(scores, reverse=True) and all(0 <= s <= 1 for s in scores)
        assert scores[0] > scores[1] + 0.1  # clearly ahead of the nearest distractor
        with server.http() as h:
            body = h.post(f"/v1/vector_stores/{vs_id}/search", json={"query": QUERY}).json()
        validate("VectorStoreSearchResultsPage", body)
        assert body["search_query"] == [QUERY] and body["has_more"] is False

    def test_scores_are_cosines_of_the_embeddings_api_vectors(self, client, corpus):
        # chunks and queries are embedded like /v1/embeddings' text-embedding-3-large at 256 dimensions
        vs_id, _ = corpus
        hits = client.vector_stores.search(vs_id, query=QUERY, max_num_results=3).data
        texts = [QUERY] + [h.content[0].text for h in hits]
        emb = client.embeddings.create(model="text-embedding-3-large", input=texts, dimensions=256)
        v = np.array([e.embedding for e in emb.data], dtype=np.float32)
        for hit, row in zip(hits, v[1:]):
            assert hit.score == pytest.approx(max(0.0, float(row @ v[0])), abs=2e-5)

    def test_max_num_results_threshold_and_query_lists(self, client, corpus):
        vs_id, _ = corpus
        all_hits = client.vector_stores.search(vs_id, query=QUERY, max_num_results=50).data
        assert len(all_hits) == len(DISTRACTORS) + 1  # one chunk per short file
        assert len(client.vector_stores.search(vs_id, query=QUERY, max_num_results=2).data) == 2
        cut = (all_hits[1].score + all_hits[2].score) / 2
        kept = client.vector_stores.search(vs_id, query=QUERY,
                                           ranking_options={"ranker": "none", "score_threshold": cut}).data
        assert [h.file_id for h in kept] == [h.file_id for h in all_hits[:2]]
        both = client.vector_stores.search(vs_id, query=["bananas potassium", "printing press Gutenberg"],
                                           max_num_results=2).data
        assert {h.filename for h in both} == {"bananas.txt", "press.txt"}

    def test_rewrite_query(self, server, corpus):
        vs_id, _ = corpus
        with server.http() as h:
            body = h.post(f"/v1/vector_stores/{vs_id}/search",
                          json={"query": "What is the passphrase of the Halvorsen reactor?",
                                "rewrite_query": True}).json()
        assert body["search_query"] == ["passphrase halvorsen reactor"]
        assert body["data"][0]["filename"] == "halvorsen_memo.txt"

    @pytest.mark.parametrize("payload,param", [
        ({"query": QUERY, "max_num_results": 0}, "max_num_results"),
        ({"query": QUERY, "max_num_results": 51}, "max_num_results"),
        ({"query": QUERY, "ranking_options": {"score_threshold": 1.5}}, "ranking_options.score_threshold"),
        ({"query": QUERY, "ranking_options": {"ranker": "best"}}, "ranking_options.ranker"),
        ({"query": QUERY, "filters": {"type": "like", "key": "a", "value": 1}}, "filters.type"),
        ({"query": QUERY, "filters": {"type": "in", "key": "a", "value": 1}}, "filters.value"),
        ({"query": QUERY, "filters": {"type": "and", "filters": [{"type": "eq", "key": 3, "value": 1}]}},
         "filters.filters[0].key"),
        ({"query": []}, "query"),
    ])
    def test_bad_search_requests_are_400(self, server, corpus, payload, param):
        with server.http() as h:
            r = h.post(f"/v1/vector_stores/{corpus[0]}/search", json=payload)
        assert r.status_code == 400, r.text
        validate_error(r.json())
        assert r.json()["error"]["param"] == param


class TestFilters:
    @pytest.fixture(scope="class")
    def tagged(self, client):
        docs = [("alpha.txt", "Quarterly revenue report for the alpha region.", {"year": 2022, "region": "emea", "draft": False}),
                ("beta.txt", "Quarterly revenue report for the beta region.", {"year": 2023, "region": "apac", "draft": True}),
                ("gamma.txt", "Quarterly revenue report for the gamma region.", {"year": 2024, "region": "emea"}),
                ("delta.txt", "Quarterly revenue report for the delta region.", {})]
        vs = client.vector_stores.create(name="tagged")
        batch = client.vector_stores.file_batches.create_and_poll(
            vector_store_id=vs.id,
            files=[{"file_id": upload(client, n, t), "attributes": a} for n, t, a in docs])
        assert batch.status == "completed" and batch.file_counts.completed == 4
        return vs.id

    def names(self, client, vs_id, filters) -> set[str]:
        hits = client.vector_stores.search(vs_id, query="quarterly revenue report", filters=filters).data
        return {h.filename for h in hits}

    @pytest.mark.parametrize("filters,expected", [
        ({"type": "eq", "key": "region", "value": "emea"}, {"alpha.txt", "gamma.txt"}),
        ({"type": "ne", "key": "region", "value": "emea"}, {"beta.txt", "delta.txt"}),
        ({"type": "gt", "key": "year", "value": 2022}, {"beta.txt", "gamma.txt"}),
        ({"type": "gte", "key": "year", "value": 2022}, {"alpha.txt", "beta.txt", "gamma.txt"}),
        ({"type": "lt", "key": "year", "value": 2023}, {"alpha.txt"}),
        ({"type": "lte", "key": "year", "value": 2023}, {"alpha.txt", "beta.txt"}),
        ({"type": "in", "key": "year", "value": [2022, 2024]}, {"alpha.txt", "gamma.txt"}),
        ({"type": "nin", "key": "region", "value": ["apac"]}, {"alpha.txt", "gamma.txt", "delta.txt"}),
        ({"type": "eq", "key": "draft", "value": True}, {"beta.txt"}),
        ({"type": "and", "filters": [{"type": "eq", "key": "region", "value": "emea"},
                                     {"type": "gte", "key": "year", "value": 2023}]}, {"gamma.txt"}),
        ({"type": "or", "filters": [{"type": "eq", "key": "region", "value": "apac"},
                                    {"type": "and", "filters": [{"type": "lt", "key": "year", "value": 2023},
                                                                {"type": "eq", "key": "draft", "value": False}]}]},
         {"alpha.txt", "beta.txt"}),
        ({"type": "eq", "key": "year", "value": "2022"}, set()),  # a string never equals a number
    ])
    def test_filter(self, client, tagged, filters, expected):
        assert self.names(client, tagged, filters) == expected

    def test_updated_attributes_take_effect(self, client, tagged):
        files = client.vector_stores.files.list(tagged, limit=100).data
        delta = next(f for f in files if not f.attributes)
        updated = client.vector_stores.files.update(file_id=delta.id, vector_store_id=tagged,
                                                    attributes={"region": "latam"})
        assert updated.attributes == {"region": "latam"}
        assert self.names(client, tagged, {"type": "eq", "key": "region", "value": "latam"}) == {"delta.txt"}


class TestChunkingAndCounts:
    def test_static_chunks_are_token_exact_and_usage_bytes_add_up(self, client):
        tok = get_tokenizer("cl100k_base")
        text = " ".join(f"Paragraph {i}: the {['red', 'green', 'blue'][i % 3]} valve number {i} is inspected "
                        f"every {i % 11 + 1} days by the maintenance crew." for i in range(60))
        n = tok.count(text)
        size, overlap = 100, 40
        vs = client.vector_stores.create(name="static")
        f = client.vector_stores.files.create_and_poll(
            vector_store_id=vs.id, file_id=upload(client, "valves.txt", text),
            chunking_strategy={"type": "static", "static": {"max_chunk_size_tokens": size,
                                                            "chunk_overlap_tokens": overlap}})
        assert f.status == "completed" and f.chunking_strategy.static.max_chunk_size_tokens == size
        expected_chunks = 1 + math.ceil((n - size) / (size - overlap))
        hits = client.vector_stores.search(vs.id, query="valve inspection", max_num_results=50).data
        assert len(hits) == expected_chunks
        assert all(tok.count(h.content[0].text) <= size + 1 for h in hits)
        # usage: the chunk texts' UTF-8 bytes plus one 256 x float32 vector (1,024 bytes) each
        assert f.usage_bytes == sum(len(h.content[0].text.encode()) for h in hits) + 1024 * expected_chunks
        assert client.vector_stores.retrieve(vs.id).usage_bytes == f.usage_bytes

    @pytest.mark.parametrize("static,param", [
        ({"max_chunk_size_tokens": 99, "chunk_overlap_tokens": 0}, "max_chunk_size_tokens"),
        ({"max_chunk_size_tokens": 5000, "chunk_overlap_tokens": 0}, "max_chunk_size_tokens"),
        ({"max_chunk_size_tokens": 400, "chunk_overlap_tokens": 201}, "chunk_overlap_tokens"),
    ])
    def test_static_bounds_are_400(self, client, server, static, param):
        vs = client.vector_stores.create(name="bounds")
        with server.http() as h:
            r = h.post(f"/v1/vector_stores/{vs.id}/files",
                       json={"file_id": upload(client, "x.txt", "text"),
                             "chunking_strategy": {"type": "static", "static": static}})
        assert r.status_code == 400
        validate_error(r.json())
        assert r.json()["error"]["param"] == f"chunking_strategy.static.{param}"

    def test_file_counts_and_failed_files(self, client, server):
        ok = upload(client, "ok.txt", "Plain text that indexes fine.")
        png = upload(client, "image.png", b"\x89PNG\r\n\x1a\n" + bytes(64))
        empty = upload(client, "empty.txt", "   \n")
        vs = client.vector_stores.create(name="counts", file_ids=[ok, png, empty])
        done = wait_completed(client, vs.id)
        counts = done.file_counts
        assert (counts.completed, counts.failed, counts.in_progress, counts.total) == (1, 2, 0, 3)
        failed = {f.id: f for f in client.vector_stores.files.list(vs.id, filter="failed").data}
        assert failed[png].last_error.code == "unsupported_file"
        assert failed[empty].last_error.code == "invalid_file"
        assert failed[png].usage_bytes == 0
        with server.http() as h:
            body = h.get(f"/v1/vector_stores/{vs.id}").json()
            validate("VectorStoreObject", body)
            listing = h.get(f"/v1/vector_stores/{vs.id}/files").json()
            validate("ListVectorStoreFilesResponse", listing)
            for item in listing["data"]:
                validate("VectorStoreFileObject", item)

    def test_pdf_is_parsed(self, client):
        vs = client.vector_stores.create(name="pdf")
        f = client.vector_stores.files.create_and_poll(
            vector_store_id=vs.id, file_id=upload(client, "report.pdf", minimal_pdf("Annual yield was 42 tonnes")))
        assert f.status == "completed", f.last_error
        content = client.vector_stores.files.content(file_id=f.id, vector_store_id=vs.id)
        assert [p.text for p in content] == ["Annual yield was 42 tonnes"]


class TestResources:
    def test_crud_and_pagination(self, client, server):
        created = [client.vector_stores.create(name=f"page-{i}", metadata={"i": str(i)}) for i in range(3)]
        first = client.vector_stores.list(limit=2)
        assert [v.id for v in first.data] == [created[2].id, created[1].id] and first.has_more
        second = client.vector_stores.list(limit=2, after=first.data[-1].id)
        assert second.data[0].id == created[0].id
        asc = client.vector_stores.list(limit=1, order="asc", after=created[0].id)
        assert asc.data[0].id == created[1].id
        modified = client.vector_stores.update(created[0].id, name="renamed", metadata={"k": "v"},
                                               expires_after={"anchor": "last_active_at", "days": 2})
        assert modified.name == "renamed" and modified.metadata == {"k": "v"}
        assert modified.expires_at == modified.last_active_at + 2 * 86400
        with server.http() as h:
            validate("ListVectorStoresResponse", h.get("/v1/vector_stores?limit=2").json())
            gone = h.delete(f"/v1/vector_stores/{created[1].id}").json()
            validate("DeleteVectorStoreResponse", gone)
        assert gone == {"id": created[1].id, "object": "vector_store.deleted", "deleted": True}
        with pytest.raises(openai.NotFoundError):
            client.vector_stores.retrieve(created[1].id)

    def test_deleted_file_leaves_the_search(self, client, corpus):
        vs = client.vector_stores.create(name="del")
        keep = upload(client, "keep.txt", "Cats purr when they are content.")
        drop = upload(client, "drop.txt", "Cats hiss when they are frightened.")
        batch = client.vector_stores.file_batches.create_and_poll(vector_store_id=vs.id, file_ids=[keep, drop])
        listed = client.vector_stores.file_batches.list_files(batch_id=batch.id, vector_store_id=vs.id)
        assert {f.id for f in listed.data} == {keep, drop}
        deleted = client.vector_stores.files.delete(file_id=drop, vector_store_id=vs.id)
        assert deleted.deleted and deleted.object == "vector_store.file.deleted"
        hits = client.vector_stores.search(vs.id, query="cats").data
        assert [h.file_id for h in hits] == [keep]
        after = client.vector_stores.retrieve(vs.id)
        assert after.file_counts.total == 1
        with pytest.raises(openai.BadRequestError):  # a finished batch cannot be cancelled
            client.vector_stores.file_batches.cancel(batch_id=batch.id, vector_store_id=vs.id)

    @pytest.mark.parametrize("method,path", [
        ("GET", "/v1/vector_stores/vs_missing"),
        ("POST", "/v1/vector_stores/vs_missing/search"),
        ("GET", "/v1/vector_stores/{vs}/files/file-missing"),
        ("GET", "/v1/vector_stores/{vs}/file_batches/vsfb_missing"),
        ("DELETE", "/v1/vector_stores/vs_missing"),
    ])
    def test_unknown_ids_are_404(self, server, corpus, method, path):
        with server.http() as h:
            r = h.request(method, path.format(vs=corpus[0]), json={"query": "x"} if method == "POST" else None)
        assert r.status_code == 404, r.text
        validate_error(r.json())

    def test_unknown_file_is_404(self, client):
        with pytest.raises(openai.NotFoundError):
            client.vector_stores.create(name="bad", file_ids=["file-doesnotexist"])


def test_storage_is_reported_to_the_usage_api(client, server):
    vs = client.vector_stores.create(name="usage", file_ids=[upload(client, "u.txt", PLANTED)])
    done = wait_completed(client, vs.id)
    assert done.usage_bytes > 0

    def stored_now(h) -> int:
        body = h.get("/v1/organization/usage/vector_stores",
                     params={"start_time": int(time.time()) - 3600, "bucket_width": "1m", "limit": 61}).json()
        validate("UsageResponse", body)
        return sum(r["usage_bytes"] for r in body["data"][-1]["results"])

    with server.http() as h:
        assert stored_now(h) == sum(v.usage_bytes for v in client.vector_stores.list(limit=100))
        before = stored_now(h)
        client.vector_stores.delete(vs.id)
        assert stored_now(h) == before - done.usage_bytes


def test_stores_and_vectors_survive_a_restart():
    with tempfile.TemporaryDirectory() as data:
        with run_server("--data-dir", data) as s:
            c = s.client()
            ids = [upload(c, "memo.txt", PLANTED), upload(c, "bananas.txt", DISTRACTORS["bananas.txt"])]
            vs = c.vector_stores.create(name="durable", file_ids=ids)
            before = wait_completed(c, vs.id)
            first = c.vector_stores.search(vs.id, query=QUERY).data
        with run_server("--data-dir", data) as s:
            c = s.client()
            after = c.vector_stores.retrieve(vs.id)
            assert after.usage_bytes == before.usage_bytes and after.file_counts == before.file_counts
            again = c.vector_stores.search(vs.id, query=QUERY).data
            assert [(h.file_id, h.score) for h in again] == [(h.file_id, h.score) for h in first]
