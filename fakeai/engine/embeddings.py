"""Deterministic text embeddings and rerank scores from hashed lexical features.

No model runs. A text becomes a bag of features: its lowercased words (runs of
letters and digits, or of punctuation) and word bigrams, weighted by a sublinear
term frequency ``w * (1 + ln tf)`` (stopwords and punctuation count less), and
each distinct word's character 3- to 5-grams, framed by the word's neighbours
(fastText style), carrying that word's weight. The features are hashed with a
signed 64-bit mixer, once into each *Matryoshka block* ``[0, 64)``, ``[64, 256)``,
``[256, 1024)``, ... of the vector, so every prefix still carries every feature.
A fixed orthogonal map per block (a real orthonormal DFT, then a permutation)
makes the vector dense like a real embedding without changing any inner product,
and a small model-specific direction is mixed in (the "anisotropy" of real
embedding spaces: unrelated texts sit at a cosine near 0.1, not 0). Everything is
seeded by the model id: a text gets the same vector on every call and every server
run, different models give different vectors, and texts sharing words and
spellings are closer than texts that do not.

Big batches are vectorized with numpy; small ones (the common single short input) take
a scalar path with a word cache (``embed_fast``) that gives bit-identical vectors.
See docs/embeddings.md.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from ..registry import ModelDef
from .errors import EngineError
from .tokenizer import Tokenizer

#: Embedding models whose ``dimensions`` parameter shortens the vector (Matryoshka-trained).
#: The catalog has no flag for this; OpenAI's text-embedding-3 family and NVIDIA's
#: llama-3.2-nv-embedqa-1b-v2 (384..2048) support it.
_MATRYOSHKA_PREFIXES = ("text-embedding-3-", "nvidia/llama-3.2-nv-embedqa-1b-v2")

_U64 = np.uint64
_M1, _M2 = _U64(0xBF58476D1CE4E5B9), _U64(0x94D049BB133111EB)
_GOLDEN = _U64(0x9E3779B97F4A7C15)
_S30, _S27, _S31 = _U64(30), _U64(27), _U64(31)
_MASK64 = (1 << 64) - 1

# feature families: distinct tags keep e.g. the word "cat" apart from the 3-gram "cat"
_TAG_WORD, _TAG_BIGRAM, _TAG_CHAR = _U64(0x1), _U64(0x2), _U64(0x3)
_W_WORD, _W_BIGRAM, _W_CHAR = 1.0, 0.5, 0.4  # base weights per occurrence
_W_STOP = 0.2  # multiplier for stopwords
_NGRAMS = (3, 4, 5)
_FIRST_BLOCK, _BLOCK_GROWTH = 64, 4
_ANISOTROPY = 1 / 3  # weight of the model direction: unrelated texts' cosine ~ 0.1
_RERANK_DIM = 4096  # hashing width used for rerank relevance (cosine only, no spin)

_STOPWORDS = (
    "a an and are as at be but by for from has have he her his i if in into is it its me my no not "
    "of on or our she so that the their them then there these they this to was we were what when "
    "where which who will with you your"
)


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64 finalizer over a uint64 array (wrapping arithmetic)."""
    x = (x ^ (x >> _S30)) * _M1
    x = (x ^ (x >> _S27)) * _M2
    return x ^ (x >> _S31)


def model_seed(model_id: str) -> int:
    return int.from_bytes(hashlib.blake2b(model_id.encode(), digest_size=8).digest(), "little")


def supports_dimensions(model: ModelDef) -> bool:
    """Whether the model accepts ``dimensions`` (a shortened, re-normalized vector)."""
    return any((mid or "").startswith(p) for mid in (model.id, model.parent) for p in _MATRYOSHKA_PREFIXES)


# -- features -------------------------------------------------------------------

_SPACE, _ALNUM, _PUNCT = 0, 1, 2


def _ascii_classes() -> np.ndarray:
    lut = np.full(128, _PUNCT, dtype=np.int8)
    for ch in "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_":
        lut[ord(ch)] = _ALNUM
    for ch in " \t\n\r\x0b\x0c\x00":
        lut[ord(ch)] = _SPACE
    return lut


_ASCII_CLASS = _ascii_classes()
# non-ASCII code points that are spacing or punctuation rather than letters
_SPACE_RANGES = ((0x85, 0x85), (0xA0, 0xA0), (0x1680, 0x1680), (0x2000, 0x200B), (0x2028, 0x2029),
                 (0x202F, 0x202F), (0x205F, 0x205F), (0x3000, 0x3000), (0xFEFF, 0xFEFF))
_PUNCT_RANGES = ((0x80, 0xBF), (0xD7, 0xD7), (0xF7, 0xF7), (0x2000, 0x206F), (0x2E00, 0x2E7F),
                 (0x3000, 0x303F), (0xFE30, 0xFE4F), (0xFF00, 0xFF0F), (0xFF1A, 0xFF20),
                 (0xFF3B, 0xFF40), (0xFF5B, 0xFF65))


def _classes(c: np.ndarray) -> np.ndarray:
    """Space, letter/digit or punctuation, per code point."""
    out = _ASCII_CLASS[np.minimum(c, 127)]
    high = np.flatnonzero(c >= 128)
    if high.size:
        h = c[high]
        cls = np.full(h.shape, _ALNUM, dtype=np.int8)
        for ranges, value in ((_PUNCT_RANGES, _PUNCT), (_SPACE_RANGES, _SPACE)):
            for lo, hi in ranges:
                cls[(h >= lo) & (h <= hi)] = value
        out[high] = cls
    return out


def _stream(texts: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The batch as one code-point stream: each text lowercased, every run of spacing
    turned into one space, and framed by spaces. Returns (codes, text id, class)."""
    framed = [" " + t.lower() + " " for t in texts]
    codes = np.frombuffer("".join(framed).encode("utf-32-le"), dtype=np.uint32)
    tid = np.repeat(np.arange(len(texts), dtype=np.int64), [len(f) for f in framed])
    cls = _classes(codes)
    # keep a space only where it is the first of a run (the frames of two texts both stay)
    keep = cls != _SPACE
    keep[0] = True
    keep[1:] |= (cls[:-1] != _SPACE) | (tid[1:] != tid[:-1])
    cls = cls[keep]
    codes = np.where(cls != _SPACE, codes[keep], 32).astype(np.uint64)
    return codes, tid[keep], cls


def _words(codes: np.ndarray, tid: np.ndarray, cls: np.ndarray):
    """Every word (a run of letters and digits, or of punctuation), in order:
    (hash, text id, first position, end position, is punctuation)."""
    pos = np.flatnonzero(cls != _SPACE)
    if not pos.size:
        empty = np.empty(0, np.int64)
        return np.empty(0, _U64), empty, empty, empty, np.empty(0, dtype=bool)
    start = np.ones(pos.size, dtype=bool)
    start[1:] = (pos[1:] != pos[:-1] + 1) | (cls[pos[1:]] != cls[pos[:-1]])
    starts = np.flatnonzero(start)
    wid = np.cumsum(start) - 1
    offset = (np.arange(pos.size) - starts[wid]).astype(_U64)
    contrib = _mix(codes[pos] * _GOLDEN + offset * _M2 + _TAG_WORD)
    hashes = _mix(np.add.reduceat(contrib, starts))
    first = pos[starts]
    return hashes, tid[first], first, first + np.diff(np.append(starts, pos.size)), cls[first] == _PUNCT


def _tf(rows: np.ndarray, hashes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per entry: how often its (text, hash) occurs, and whether it is the first occurrence."""
    keys = (rows.astype(_U64) << _U64(48)) | (hashes >> _U64(16))
    order = np.argsort(keys, kind="stable")
    sk = keys[order]
    new = np.ones(sk.size, dtype=bool)
    new[1:] = sk[1:] != sk[:-1]
    group = np.cumsum(new) - 1
    counts = np.bincount(group)
    count, first = np.empty(sk.size, np.int64), np.zeros(sk.size, dtype=bool)
    count[order] = counts[group]
    first[order] = new
    return count, first


def _char_ngrams(codes: np.ndarray, starts: np.ndarray, ends: np.ndarray, weights: np.ndarray):
    """Character n-grams of the given words, each framed by its surrounding spaces
    (fastText style: "cat" gives " ca", "cat", "at ", " cat", "cat ", " cat ").
    Returns (word index, hash, weight)."""
    lo, hi = starts - 1, ends + 1  # the framed word is codes[lo:hi]
    lens = hi - lo
    out_w, out_h = [], []
    for n in _NGRAMS:
        count = np.maximum(lens - n + 1, 0)
        w = np.repeat(np.arange(starts.size), count)
        if not w.size:
            continue
        p = np.arange(w.size) - np.repeat(np.cumsum(count) - count, count) + lo[w]
        h = np.zeros(w.size, dtype=_U64)
        for k in range(n):
            h = h * _GOLDEN + codes[p + k]
        out_w.append(w)
        out_h.append(_mix(h + _U64((n * int(_M1)) & _MASK64) + _TAG_CHAR))
    if not out_w:
        return np.empty(0, np.int64), np.empty(0, _U64), np.empty(0)
    w = np.concatenate(out_w)
    return w, np.concatenate(out_h), weights[w]


@lru_cache(maxsize=1)
def _stop_hashes() -> np.ndarray:
    return np.unique(_words(*_stream(_STOPWORDS.split()))[0])


#: Batches up to this many characters take the scalar path (``embed_fast``): the same
#: features without the fixed cost of ~50 small numpy calls.
_SMALL_CHARS = 2048
_SMALL_TEXTS = 64


def features(texts: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Weighted features of a batch: (text index, feature hash, weight) per entry.

    Words and bigrams are weighted ``base * (1 + ln tf)`` once per distinct word of a
    text; a word's character n-grams carry the word's weight times ``_W_CHAR``. Within
    a text the entries always come in the same order (the hashing sums them in order).
    """
    if len(texts) <= _SMALL_TEXTS and sum(map(len, texts)) <= _SMALL_CHARS:
        return _fast.features(texts)
    return features_vectorized(texts)


def features_vectorized(texts: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`features` vectorized over the whole batch (the reference implementation)."""
    if len(texts) >= 1 << 16:
        raise ValueError("at most 65535 texts per batch")
    codes, tid, cls = _stream(texts)
    wh, wt, ws, we, punct = _words(codes, tid, cls)
    stop = np.where(punct | np.isin(wh, _stop_hashes()), _W_STOP, 1.0)
    pair = wt[:-1] == wt[1:]
    bh = _mix(wh[:-1][pair] * _GOLDEN + wh[1:][pair] + _TAG_BIGRAM)
    bt = wt[:-1][pair]
    bw = _W_BIGRAM * np.sqrt(stop[:-1][pair] * stop[1:][pair])
    rows, hashes = np.concatenate([wt, bt]), np.concatenate([wh, bh])
    count, first = _tf(rows, hashes)
    weight = np.concatenate([_W_WORD * stop, bw]) * (1.0 + np.log(count))
    keep = np.flatnonzero(first)
    words = keep[keep < wh.size]
    cw, ch, cwt = _char_ngrams(codes, ws[words], we[words], weight[words] * _W_CHAR)
    return (np.concatenate([rows[keep], wt[words][cw]]), np.concatenate([hashes[keep], ch]),
            np.concatenate([weight[keep], cwt]))


# -- projection -------------------------------------------------------------------

def blocks(dim: int) -> list[tuple[int, int]]:
    """Matryoshka blocks ``(start, stop)``: 0-64, 64-256, 256-1024, ... up to ``dim``."""
    out, start, stop = [], 0, _FIRST_BLOCK
    while start < dim:
        stop = min(stop, dim)
        out.append((start, stop))
        start, stop = stop, stop * _BLOCK_GROWTH
    return out


@dataclass(frozen=True, slots=True)
class _Layout:
    """Per (seed, blocks): what the hashing needs, as ``(blocks, 1)`` columns."""

    seeds: tuple[np.uint64, ...]  # the hash salt of each group of four blocks
    group: tuple[int, ...]  # per block, its group
    shift: np.ndarray  # per block, where its 16 bits start
    lo: np.ndarray
    size: np.ndarray
    plus: np.ndarray  # +sqrt(block size)
    minus: np.ndarray  # -sqrt(block size)


@lru_cache(maxsize=64)
def _layout(spans: tuple[tuple[int, int], ...], seed: int) -> _Layout:
    col = lambda xs, dt: np.array(xs, dtype=dt).reshape(-1, 1)
    sq = [math.sqrt(hi - lo) for lo, hi in spans]
    return _Layout(
        seeds=tuple(_U64(seed ^ b) for b in range(0, len(spans), 4)),
        group=tuple(b // 4 for b in range(len(spans))),
        shift=col([16 * (b % 4) for b in range(len(spans))], _U64),
        lo=col([lo for lo, _ in spans], np.int64), size=col([hi - lo for lo, hi in spans], np.int64),
        plus=col(sq, np.float64), minus=col([-x for x in sq], np.float64))


def _hash_into(rows: np.ndarray, keys: np.ndarray, weight: np.ndarray, n: int,
               spans: list[tuple[int, int]], seed: int, dim: int) -> np.ndarray:
    """Signed feature hashing into an ``(n, dim)`` float64 matrix: each feature adds
    ``±weight * sqrt(block size)`` at one position of every block (so every block has
    the same energy per dimension). A block takes 16 bits of the feature's hash: one
    for the sign, 15 for the position. (Entries are summed block by block, in input
    order: the float rounding depends on that order.)"""
    lay = _layout(tuple(spans), seed)
    groups = [_mix(keys ^ s) for s in lay.seeds]
    h = groups[0][None, :] if len(groups) == 1 else np.stack([groups[g] for g in lay.group])
    bits = ((h >> lay.shift) & _U64(0xFFFF)).view(np.int64)
    flat = (((bits >> 1) * lay.size) >> 15) + lay.lo
    if n > 1:
        flat += rows * dim
    vals = np.where(bits & 1, lay.minus, lay.plus) * weight
    out = np.bincount(flat.ravel(), weights=vals.ravel(), minlength=n * dim)
    return out.astype(np.float64, copy=False).reshape(n, dim)  # (bincount of nothing is int)


@lru_cache(maxsize=64)
def _spin(seed: int, dim: int) -> tuple[np.ndarray, np.ndarray]:
    """The model's fixed output permutation (within each block) and the position in each
    block of its direction's input-side spike. (The hashing is already seeded by the
    model, so the map needs no sign flips of its own.)"""
    r = _mix(np.arange(dim, dtype=_U64) ^ _U64(seed) ^ _U64(0x5EED))
    spans = blocks(dim)
    perm = np.concatenate([lo + np.argsort(r[lo:hi], kind="stable") for lo, hi in spans])
    spikes = np.array([lo + int(r[lo] % _U64(hi - lo)) for lo, hi in spans])
    return perm, spikes


@dataclass(frozen=True, slots=True)
class _Map:
    """The fixed map of :func:`embed` for one (seed, dim, dimensions).

    Each block's orthonormal real DFT is an ``rfft`` into its own slice of one complex
    buffer, whose float64 view is then gathered (real parts, imaginary parts, already
    in the model's permuted output order) and scaled: bin 0 and an even block's
    Nyquist bin by ``1/sqrt(m)``, the others by ``sqrt(2/m)``.
    """

    spans: list[tuple[int, int]]
    bins: list[tuple[int, int]]  # per block, its slice of the complex buffer
    width: int  # complex bins in all
    spikes: np.ndarray  # per block, the position of the model direction's spike
    lift: np.ndarray  # per block, the spike's share: sqrt(block size / dim)
    gather: np.ndarray  # output position -> float64 index into the buffer
    scale: np.ndarray  # output position -> its DFT scale
    perm: np.ndarray  # output position -> DFT output position (for big batches)


@lru_cache(maxsize=64)
def _map(seed: int, dim: int, dimensions: int) -> _Map:
    spans = blocks(dim)
    perm, spikes = _spin(seed, dim)
    gather, scale, bins, at = np.empty(dim, np.int64), np.empty(dim), [], 0
    for lo, hi in spans:
        m = hi - lo
        half = (m - 1) // 2  # bins with both a real and an imaginary part
        j = np.arange(1, half + 1)
        gather[lo], gather[lo + j], gather[hi - half - 1 + j] = 2 * at, 2 * (at + j), 2 * (at + j) + 1
        scale[lo: hi], scale[lo] = math.sqrt(2.0 / m), 1.0 / math.sqrt(m)
        if m % 2 == 0:
            gather[lo + half + 1], scale[lo + half + 1] = 2 * (at + half + 1), 1.0 / math.sqrt(m)
        bins.append((at, at + m // 2 + 1))
        at += m // 2 + 1
    lift = np.array([math.sqrt((hi - lo) / dim) for lo, hi in spans])
    keep = perm[:dimensions]
    return _Map(spans, bins, at, spikes, lift, gather[keep], scale[keep], keep)


def _numpy_rfft(x: np.ndarray, out: np.ndarray) -> None:
    np.fft.rfft(x, axis=1, out=out)


def _rfft_kernel():
    """``np.fft.rfft(x, axis=1, out=out)`` without its Python wrapper (a third of the
    cost of a short transform): numpy 2's pocketfft ufuncs, which that wrapper calls
    with these same arguments. Checked once against the public function; any other
    numpy gets the public function."""
    try:
        from numpy.fft import _pocketfft_umath as pfu

        def rfft(x: np.ndarray, out: np.ndarray) -> None:
            ufunc = pfu.rfft_n_even if x.shape[1] % 2 == 0 else pfu.rfft_n_odd
            ufunc(x, 1, axes=[(1,), (), (1,)], out=out)

        x = np.cos(np.arange(2 * 63, dtype=np.float64) * 1.7).reshape(2, 63)
        for m in (63, 62):
            mine, ref = np.empty((2, m // 2 + 1), np.complex128), np.fft.rfft(x[:, :m], axis=1)
            rfft(x[:, :m], mine)
            if not np.array_equal(mine, ref):
                return _numpy_rfft
        return rfft
    except Exception:  # (a numpy without these internals)
        return _numpy_rfft


_rfft = _rfft_kernel()


def _real_dft(x: np.ndarray, out: np.ndarray) -> None:
    """Orthonormal real DFT of ``x`` along axis 1 into ``out``: dense, inner products kept."""
    m = x.shape[1]
    f = np.fft.rfft(x, axis=1)
    half = (m - 1) // 2  # bins with both a real and an imaginary part
    scale, edge = math.sqrt(2.0 / m), 1.0 / math.sqrt(m)
    np.multiply(f[:, 0].real, edge, out=out[:, 0], casting="same_kind")
    np.multiply(f[:, 1: half + 1].real, scale, out=out[:, 1: half + 1], casting="same_kind")
    np.multiply(f[:, 1: half + 1].imag, scale, out=out[:, m - half:], casting="same_kind")
    if m % 2 == 0:
        np.multiply(f[:, half + 1].real, edge, out=out[:, half + 1], casting="same_kind")


def _norms(v: np.ndarray) -> np.ndarray:
    n = np.sqrt(np.einsum("ij,ij->i", v, v))
    return np.where(n > 0, n, 1.0)


def _normalize(v: np.ndarray) -> np.ndarray:
    return np.divide(v, _norms(v)[:, None], out=v, casting="same_kind")


def embed(texts: list[str], dim: int, seed: int, dimensions: int | None = None) -> np.ndarray:
    """Unit-length float32 vectors, one row per text, ``dim`` wide (the model's native
    size) or, with ``dimensions``, the first ``dimensions`` values re-normalized.

    Few large temporaries on purpose: fresh pages are what a big batch costs most.
    """
    rows, keys, weight = features(texts)
    fmap = _map(seed, dim, dimensions or dim)
    hashed = _hash_into(rows, keys, weight, len(texts), fmap.spans, seed, dim)
    # The model direction, added on the input side as one spike per block (so that every
    # block keeps the same energy per dimension); the map spreads it over the block.
    hashed[:, fmap.spikes] += (_ANISOTROPY * _norms(hashed))[:, None] * fmap.lift
    if len(texts) <= _SMALL_TEXTS:  # few numpy calls
        spectrum = np.empty((len(texts), fmap.width), dtype=np.complex128)
        for (lo, hi), (a, b) in zip(fmap.spans, fmap.bins):
            _rfft(hashed[:, lo:hi], spectrum[:, a:b])
        v = np.multiply(np.take(spectrum.view(np.float64), fmap.gather, axis=1), fmap.scale)
        return _normalize(v.astype(np.float32, order="C"))  # (the norms' sums follow the layout)
    spun = np.empty(hashed.shape, dtype=np.float32)  # less memory traffic than a gather
    for lo, hi in fmap.spans:
        _real_dft(hashed[:, lo:hi], spun[:, lo:hi])
    return _normalize(np.take(spun, fmap.perm, axis=1))


# -- reranking ----------------------------------------------------------------------

#: logit = _LOGIT_SCALE * cosine + _LOGIT_BIAS: an unrelated passage scores about -6, a
#: passage sharing a third of its weighted features with the query about 0, a copy +8.
_LOGIT_SCALE, _LOGIT_BIAS = 14.0, -6.0


class InputTooLong(EngineError):
    """A query-passage pair is longer than the model reads and truncation is off."""

    def __init__(self, index: int, tokens: int, limit: int) -> None:
        super().__init__(f"Input length {tokens} exceeds maximum allowed token size {limit}")
        self.index, self.tokens, self.limit = index, tokens, limit


@dataclass(frozen=True, slots=True)
class Ranking:
    logits: np.ndarray  # one raw score per passage, in input order
    prompt_tokens: int  # what the cross-encoder reads: query + passage, for every pair
    passages: list[str]  # the passages as scored (truncated ones shortened)


def relevance(query: str, passages: list[str], seed: int) -> np.ndarray:
    """Cosine similarity of the query's feature vector to each passage's."""
    rows, keys, weight = features([query, *passages])
    v = _normalize(_hash_into(rows, keys, weight, len(passages) + 1, [(0, _RERANK_DIM)], seed,
                              _RERANK_DIM))
    return v[1:] @ v[0]


def rank(tok: Tokenizer, model: ModelDef, query: str, passages: list[str], truncate: str | None,
         max_passage_tokens: int | None = None) -> Ranking:
    """Score each passage against the query like a cross-encoder reading the pair.

    A pair longer than ``model.context_window`` raises :class:`InputTooLong` unless
    ``truncate`` is "END" (drop the passage's tail) or "START" (drop its head);
    ``max_passage_tokens`` caps every passage first (Cohere's ``max_tokens_per_doc``).
    """
    limit = model.context_window
    q_tokens = tok.count(query)
    if q_tokens > limit and truncate:
        query, q_tokens = tok.decode(tok.encode(query)[:limit]), limit
    room = limit - q_tokens
    scored, prompt_tokens = [], 0
    for i, text in enumerate(passages):
        n = tok.count(text)
        cap = room if max_passage_tokens is None else min(room, max_passage_tokens)
        if n > cap:
            if not truncate and n > room:
                raise InputTooLong(i, q_tokens + n, limit)
            ids = tok.encode(text)
            keep = max(cap, 0)
            text = tok.decode(ids[len(ids) - keep:] if truncate == "START" else ids[:keep])
            n = keep
        scored.append(text)
        prompt_tokens += q_tokens + n
    logits = _LOGIT_SCALE * relevance(query, scored, model_seed(model.id)) + _LOGIT_BIAS
    return Ranking(logits, prompt_tokens, scored)


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


from . import embed_fast as _fast  # (at the end: it builds on this module)
