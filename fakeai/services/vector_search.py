"""Ranking a vector store's chunks for a query: attribute filters, the in-memory
index of each store's vectors, and the scoring itself.

Every chunk was embedded with the embeddings engine as ``text-embedding-3-large``
at 256 dimensions (what OpenAI documents for file search); a query is embedded the
same way, and a chunk's score is the cosine similarity of the two unit vectors
(clipped to [0, 1], the range OpenAI's scores have). A query list scores each chunk
by its best query. The vectors of a store are loaded once into one float32 matrix
and kept in a bounded cache, which the store's ``_version`` (bumped by every change
of its files) invalidates.
"""

from __future__ import annotations

import asyncio
import re
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..engine.errors import EngineError
from ..lazy import lazy_import
from ..store import Store

if TYPE_CHECKING:
    import numpy as np

EMBED_MODEL = "text-embedding-3-large"
EMBED_NATIVE_DIMS = 3072
EMBED_DIMS = 256
VECTOR_BYTES = EMBED_DIMS * 4  # one float32 vector
EMBED_BATCH = 256  # chunks embedded at once
RANKERS = ("none", "auto", "default-2024-11-15")
MAX_RESULTS = 50

_np = lazy_import("numpy")  # loaded on first use: a server that never searches never pays
_vectors = lazy_import("fakeai.engine.embeddings")


def _numeric():
    """(numpy, the embeddings engine)."""
    return _np, _vectors


def embed(texts: list[str]) -> np.ndarray:
    """Unit float32 vectors, the ones ``/v1/embeddings`` gives for ``text-embedding-3-large``
    with ``dimensions=256``."""
    np, vectors = _numeric()
    seed = vectors.model_seed(EMBED_MODEL)
    if len(texts) <= EMBED_BATCH:
        return vectors.embed(texts, EMBED_NATIVE_DIMS, seed, EMBED_DIMS)
    # in slices: the engine works at the native width (3,072 float64 per text) before truncating
    return np.concatenate([vectors.embed(texts[i:i + EMBED_BATCH], EMBED_NATIVE_DIMS, seed, EMBED_DIMS)
                           for i in range(0, len(texts), EMBED_BATCH)])


def blob_keys(vs_id: str, file_id: str, run: str | None) -> tuple[str, str, str]:
    """Where one ingestion run of a file keeps its chunk texts, vectors and extracted text."""
    base = f"vs/{vs_id}/{file_id}/{run}"
    return f"{base}/chunks", f"{base}/vectors", f"{base}/text"


# -- filters -----------------------------------------------------------------------

_COMPARISONS = ("eq", "ne", "gt", "gte", "lt", "lte", "in", "nin")
Predicate = Callable[[dict], bool]


def _bad(param: str, message: str) -> EngineError:
    return EngineError(f"Invalid '{param}': {message}", param=param, code="invalid_value")


def _scalar(v) -> bool:
    return isinstance(v, (str, bool, int, float))


def _same_kind(a, b) -> bool:
    """Values compare only within a kind: strings, booleans, or numbers."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool)
    if isinstance(a, str) or isinstance(b, str):
        return isinstance(a, str) and isinstance(b, str)
    return True


def compile_filter(raw, param: str = "filters") -> Predicate:
    """A predicate over a file's attributes from a ``ComparisonFilter`` or a
    ``CompoundFilter`` (nested to any depth); a 400 naming the bad field otherwise.

    A comparison on a key the file does not have is false, except ``ne`` and ``nin``,
    which are true; values of different kinds (a string and a number) are never equal
    and never ordered.
    """
    if not isinstance(raw, dict):
        raise _bad(param, "expected an object.")
    kind = raw.get("type")
    if kind in ("and", "or"):
        subs = raw.get("filters")
        if not isinstance(subs, list) or not subs:
            raise _bad(f"{param}.filters", "expected a non-empty array of filters.")
        preds = [compile_filter(f, f"{param}.filters[{i}]") for i, f in enumerate(subs)]
        if kind == "and":
            return lambda attrs: all(p(attrs) for p in preds)
        return lambda attrs: any(p(attrs) for p in preds)
    if kind not in _COMPARISONS:
        raise _bad(f"{param}.type", f"expected one of {', '.join(_COMPARISONS + ('and', 'or'))}, "
                   f"got {kind!r}.")
    key, value = raw.get("key"), raw.get("value")
    if not isinstance(key, str):
        raise _bad(f"{param}.key", "expected a string.")
    if kind in ("in", "nin"):
        if not isinstance(value, list) or not all(_scalar(v) and not isinstance(v, bool) for v in value):
            raise _bad(f"{param}.value", f"'{kind}' expects an array of strings or numbers.")
        return _membership(key, value, kind == "in")
    if not _scalar(value):
        raise _bad(f"{param}.value", f"'{kind}' expects a string, number or boolean.")
    if kind in ("eq", "ne"):
        want = kind == "eq"
        return lambda attrs: (key in attrs and _same_kind(attrs[key], value)
                              and attrs[key] == value) == want
    if isinstance(value, bool):
        raise _bad(f"{param}.value", f"'{kind}' compares numbers or strings, not booleans.")
    op = {"gt": lambda a: a > value, "gte": lambda a: a >= value,
          "lt": lambda a: a < value, "lte": lambda a: a <= value}[kind]
    return lambda attrs: key in attrs and _same_kind(attrs[key], value) and op(attrs[key])


def _membership(key: str, values: list, inside: bool) -> Predicate:
    def pred(attrs: dict) -> bool:
        if key not in attrs:
            return not inside
        a = attrs[key]
        found = any(_same_kind(a, v) and a == v for v in values)
        return found == inside

    return pred


# -- query rewriting -----------------------------------------------------------------

_WORDS = re.compile(r"[\w'-]+")
_FILLER = frozenset([
    "a", "an", "and", "are", "as", "at", "be", "but", "by", "can", "could", "did", "do", "does",
    "for", "from", "had", "has", "have", "how", "i", "if", "in", "into", "is", "it", "its", "me",
    "my", "of", "on", "or", "our", "please", "show", "should", "so", "tell", "than", "that", "the",
    "their", "them", "then", "there", "these", "they", "this", "to", "us", "was", "we", "were",
    "what", "when", "where", "which", "who", "whom", "whose", "why", "will", "with", "would", "you",
    "your", "about", "find", "give", "know", "list", "explain", "describe", "any", "some",
])


def rewrite(query: str) -> str:
    """A keyword query for vector search, as ``rewrite_query`` asks: the content words
    in order, lowercased, without question words, filler and repeats."""
    seen, out = set(), []
    for w in _WORDS.findall(query.lower()):
        w = w.strip("'-")
        if w and w not in _FILLER and w not in seen:
            seen.add(w)
            out.append(w)
    return " ".join(out) or query.strip()


# -- the per-store index -------------------------------------------------------------

@dataclass(slots=True)
class Index:
    version: int
    matrix: np.ndarray  # (chunks, EMBED_DIMS) float32, unit rows
    texts: list[str]
    owner: np.ndarray  # per chunk, the index of its file in ``files``
    files: list[dict]  # {"file_id", "filename", "attributes"}

    @property
    def nbytes(self) -> int:
        return self.matrix.nbytes + sum(len(t) for t in self.texts)


class IndexCache:
    """Loaded indexes, least recently used evicted past ``max_bytes``."""

    def __init__(self, max_bytes: int = 256 << 20) -> None:
        self.max_bytes = max_bytes
        self._items: OrderedDict[str, Index] = OrderedDict()
        self._lock = asyncio.Lock()

    def drop(self, vs_id: str) -> None:
        self._items.pop(vs_id, None)

    async def get(self, store: Store, vs_doc: dict) -> Index:
        vs_id, version = vs_doc["id"], vs_doc.get("_version", 0)
        hit = self._items.get(vs_id)
        if hit is not None and hit.version == version:
            self._items.move_to_end(vs_id)
            return hit
        async with self._lock:
            hit = self._items.get(vs_id)
            if hit is not None and hit.version == version:
                return hit
            index = await _load(store, vs_id, version)
            self._items[vs_id] = index
            total = sum(i.nbytes for i in self._items.values())
            while total > self.max_bytes and len(self._items) > 1:
                _, old = self._items.popitem(last=False)
                total -= old.nbytes
            return index


async def _load(store: Store, vs_id: str, version: int) -> Index:
    import orjson

    np, _ = _numeric()

    mats, texts, owner, files = [], [], [], []
    async for doc in store.scan("vector_store.file", parent=vs_id,
                                match=lambda d: d.get("status") == "completed"):
        fid = doc["file_id"]
        try:
            chunks, vecs, _ = blob_keys(vs_id, fid, doc.get("_run"))
            chunk_texts = orjson.loads(await store.read_blob_bytes(chunks))
            raw = await store.read_blob_bytes(vecs)
        except KeyError:  # deleted meanwhile
            continue
        m = np.frombuffer(raw, dtype="<f4").reshape(-1, EMBED_DIMS)
        if len(m) != len(chunk_texts):
            continue
        owner.extend([len(files)] * len(m))
        files.append({"file_id": fid, "filename": doc.get("_filename", ""),
                      "attributes": doc.get("attributes") or {}})
        mats.append(m)
        texts.extend(chunk_texts)
    matrix = np.concatenate(mats) if mats else np.empty((0, EMBED_DIMS), np.float32)
    return Index(version, np.ascontiguousarray(matrix, dtype=np.float32), texts,
                 np.asarray(owner, dtype=np.int32), files)


def rank(index: Index, queries: list[str], limit: int, threshold: float,
         allowed: Predicate | None) -> list[dict]:
    """The best ``limit`` chunks of the index for the queries, as search result items."""
    np, _ = _numeric()
    if not len(index.texts):
        return []
    q = embed(queries)
    scores = np.clip((index.matrix @ q.T).max(axis=1), 0.0, 1.0)
    keep = scores >= threshold
    if allowed is not None:
        ok = np.array([allowed(f["attributes"]) for f in index.files], dtype=bool)
        keep &= ok[index.owner]
    candidates = np.flatnonzero(keep)
    if len(candidates) > limit:
        top = np.argpartition(-scores[candidates], limit - 1)[:limit]
        candidates = candidates[top]
    order = candidates[np.lexsort((candidates, -scores[candidates]))]
    out = []
    for i in order:
        f = index.files[index.owner[i]]
        out.append({"file_id": f["file_id"], "filename": f["filename"], "score": float(scores[i]),
                    "attributes": f["attributes"], "content": [{"type": "text", "text": index.texts[i]}]})
    return out
