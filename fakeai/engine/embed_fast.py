"""Scalar feature extraction for small embedding batches (see ``embeddings.features``).

The vectorized numpy pipeline in :mod:`fakeai.engine.embeddings` issues dozens of
small numpy calls per batch; for one short text that fixed cost dominates. This
module computes the *same* features (same hashes, same weights, and per text the
same order, so the float sums in the hashing step round identically) with plain
Python ints, which reproduce the wrapping uint64 arithmetic of ``_mix`` exactly when
masked to 64 bits.

The expensive part of a word, its hash and its framed character n-grams, depends
only on the word and its two neighbouring characters, so it is kept in a bounded
cache (cleared when full); term frequencies and weights are applied per text. A new
word of moderate length is hashed in one numpy pass (:func:`_word_numpy`) instead.
"""

from __future__ import annotations

import math
import re
from functools import lru_cache
from itertools import pairwise

import numpy as np

from . import embeddings as _E

_MASK = (1 << 64) - 1
_M1, _M2, _G = int(_E._M1), int(_E._M2), int(_E._GOLDEN)
_G2 = (_G * _G) & _MASK
_TAG_WORD, _TAG_BIGRAM, _TAG_CHAR = int(_E._TAG_WORD), int(_E._TAG_BIGRAM), int(_E._TAG_CHAR)
#: what the n-gram hash adds before mixing, for n = 3, 4, 5
_GRAM_ADD = tuple(((n * _M1) & _MASK) + _TAG_CHAR for n in (3, 4, 5))
assert _E._NGRAMS == (3, 4, 5)


def mix(x: int) -> int:
    """``embeddings._mix`` (splitmix64 finalizer) on one int in ``[0, 2**64)``."""
    x ^= x >> 30
    x = (x * _M1) & _MASK
    x ^= x >> 27
    x = (x * _M2) & _MASK
    return x ^ (x >> 31)


# -- character classes, as regular expressions equal to ``embeddings._classes`` ----------

def _char_class(ranges) -> str:
    return "".join(f"\\U{lo:08x}" if lo == hi else f"\\U{lo:08x}-\\U{hi:08x}" for lo, hi in ranges)


def _class_regexes() -> tuple[str, str]:
    space = [(c, c) for c in range(128) if _E._ASCII_CLASS[c] == _E._SPACE] + list(_E._SPACE_RANGES)
    spaces = {c for lo, hi in space for c in range(lo, hi + 1)}
    punct_cps = [c for c in range(128) if _E._ASCII_CLASS[c] == _E._PUNCT]
    punct_cps += sorted({c for lo, hi in _E._PUNCT_RANGES for c in range(lo, hi + 1)} - spaces)
    punct, start = [], punct_cps[0]
    for a, b in zip(punct_cps, punct_cps[1:] + [-1]):
        if b != a + 1:
            punct.append((start, a))
            start = b
    return _char_class(space), _char_class(punct)


_SPACE_CLS, _PUNCT_CLS = _class_regexes()
_SPACE_RUN = re.compile(f"[{_SPACE_CLS}]+")
_IS_PUNCT = re.compile(f"[{_PUNCT_CLS}]")
#: every word with its neighbouring characters: (before, word, after)
_FRAMED_WORD = re.compile(f"(?<=(.))([^{_SPACE_CLS}{_PUNCT_CLS}]+|[{_PUNCT_CLS}]+)(?=(.))", re.DOTALL)


# -- words ------------------------------------------------------------------------------

def word_hash(word: str) -> int:
    h = 0
    for off, ch in enumerate(word):
        h += mix((ord(ch) * _G + off * _M2 + _TAG_WORD) & _MASK)
    return mix(h & _MASK)


def _grams(framed: str) -> tuple[tuple[int, ...], ...]:
    """Hashes of the 3-, 4- and 5-grams of a framed word, one tuple per n."""
    c = [ord(ch) for ch in framed]
    h3 = [(c[p] * _G2 + c[p + 1] * _G + c[p + 2]) & _MASK for p in range(len(c) - 2)]
    h4 = [(h3[p] * _G + c[p + 3]) & _MASK for p in range(len(c) - 3)]
    h5 = [(h4[p] * _G + c[p + 4]) & _MASK for p in range(len(c) - 4)]
    return tuple(tuple(mix((h + add) & _MASK) for h in hs) for hs, add in zip((h3, h4, h5), _GRAM_ADD))


#: From this framed length on, a new word's hashes are cheaper as one numpy pass
#: (a fixed ~10 µs) than as Python ints (~0.4 µs per mix); the per-length matrices
#: stay small up to ``_NUMPY_WORD_MAX``.
_NUMPY_WORD, _NUMPY_WORD_MAX = 11, 40


@lru_cache(maxsize=None)
def _word_terms(n: int) -> tuple[np.ndarray, np.ndarray]:
    """For a framed word of ``n`` characters: the matrix and offsets that turn its code
    points into every term ``mix`` is applied to (the word's per-character terms, then
    its 3-, 4- and 5-grams, in that order), as uint64 (wrapping like the masked ints)."""
    rows: list[list[int]] = []
    add: list[int] = []
    for off in range(n - 2):  # word character off sits at framed position off + 1
        rows.append([_G if j == off + 1 else 0 for j in range(n)])
        add.append((off * _M2 + _TAG_WORD) & _MASK)
    for k, gram_add in zip((3, 4, 5), _GRAM_ADD):
        for p in range(n - k + 1):  # sum of c[p + i] * G ** (k - 1 - i)
            rows.append([pow(_G, k - 1 - (j - p), 1 << 64) if p <= j < p + k else 0 for j in range(n)])
            add.append(gram_add & _MASK)
    return np.array(rows, dtype=np.uint64), np.array(add, dtype=np.uint64)


def _word_numpy(framed: str) -> tuple[int, tuple[tuple[int, ...], ...]]:
    """(word hash, n-gram hashes) of a framed word (``before + word + after``, at most
    ``_NUMPY_WORD_MAX`` characters) in one numpy pass: :func:`word_hash` and
    :func:`_grams` with every ``mix`` done by one ``embeddings._mix`` call."""
    n = len(framed)
    matrix, add = _word_terms(n)
    c = np.frombuffer(framed.encode("utf-32-le"), dtype=np.uint32).astype(np.uint64)
    m = _E._mix(matrix @ c + add).tolist()
    w, g3, g4 = n - 2, 2 * n - 4, 3 * n - 7
    return mix(sum(m[:w]) & _MASK), (tuple(m[w:g3]), tuple(m[g3:g4]), tuple(m[g4:]))


_STOP_HASHES = frozenset(word_hash(w) for w in _E._STOPWORDS.split())

# An entry holds every n-gram hash of its word as Python ints: ~1.5 KB for a common word,
# ~4 KB for a 32-character one. Bounded in entries and by not keeping long words (ids, hashes:
# rarely seen twice), the cache stays under ~25 MB whatever the traffic.
_CACHE_SIZE = 8192
_CACHE_WORD_MAX = 24  # framed characters
#: framed word -> (word hash, stopword factor, n-gram hashes per n)
_cache: dict[str, tuple[int, float, tuple[tuple[int, ...], ...]]] = {}


def _entry(before: str, word: str, after: str):
    framed = before + word + after
    e = _cache.get(framed)
    if e is None:
        if _NUMPY_WORD <= len(framed) <= _NUMPY_WORD_MAX:
            h, grams = _word_numpy(framed)
        else:
            h, grams = word_hash(word), _grams(framed)
        stop = _E._W_STOP if (_IS_PUNCT.match(word) or h in _STOP_HASHES) else 1.0
        e = (h, stop, grams)
        if len(framed) <= _CACHE_WORD_MAX:
            if len(_cache) >= _CACHE_SIZE:
                _cache.clear()
            _cache[framed] = e
    return e


# -- texts ------------------------------------------------------------------------------

#: ``1 + ln(tf)`` as numpy computes it (numpy's log may differ from libm's by an ulp)
_LOG_N = 4096
_ONE_PLUS_LOG = [math.nan] + (1.0 + np.log(np.arange(1, _LOG_N + 1, dtype=np.int64))).tolist()
_BIGRAM_W = {}  # (stop, stop) -> bigram base weight
for _a in (1.0, _E._W_STOP):
    for _b in (1.0, _E._W_STOP):
        _BIGRAM_W[_a, _b] = _E._W_BIGRAM * float(np.sqrt(np.array([_a * _b]))[0])


def _one_plus_log(count: int) -> float:
    if count <= _LOG_N:
        return _ONE_PLUS_LOG[count]
    return float((1.0 + np.log(np.array([count], dtype=np.int64)))[0])


def text_features(text: str, keys: list[int], weights: list[float]) -> None:
    """Append one text's features to ``keys``/``weights`` in the order
    ``embeddings.features`` gives them: first occurrences of words, of bigrams, then
    the 3-grams, 4-grams and 5-grams of the distinct words."""
    s = _SPACE_RUN.sub(" ", " " + text.lower() + " ")
    if not s.isascii():
        s.encode("utf-32-le")  # lone surrogates fail here as they do in the numpy path
    ents = [_entry(b, w, a) for b, w, a in _FRAMED_WORD.findall(s)]
    if not ents:
        return
    hs = [e[0] for e in ents]
    bigrams = [mix((h1 * _G + h2 + _TAG_BIGRAM) & _MASK) for h1, h2 in pairwise(hs)]
    # term frequency over the top 48 bits of the hash, words before bigrams
    counts: dict[int, int] = {}
    firsts = []
    for i, h in enumerate(hs + bigrams):
        k = h >> 16
        c = counts.get(k)
        if c is None:
            counts[k] = 1
            firsts.append(i)
        else:
            counts[k] = c + 1
    nw = len(hs)
    words, char_w = [], []
    for i in firsts:
        if i < nw:
            e = ents[i]
            w = e[1] * _one_plus_log(counts[e[0] >> 16])
            keys.append(e[0])
            weights.append(w)
            words.append(e[2])
            char_w.append(w * _E._W_CHAR)
        else:
            h = bigrams[i - nw]
            keys.append(h)
            weights.append(_BIGRAM_W[ents[i - nw][1], ents[i - nw + 1][1]] * _one_plus_log(counts[h >> 16]))
    for n in range(3):
        for g, w in zip(words, char_w):
            keys.extend(g[n])
            weights.extend([w] * len(g[n]))


def features(texts: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``embeddings.features`` for a small batch: same (text index, hash, weight)
    entries, in the same order within each text."""
    keys: list[int] = []
    weights: list[float] = []
    if len(texts) == 1:
        text_features(texts[0], keys, weights)
        rows = np.zeros(len(keys), dtype=np.int64)
    else:
        sizes = []
        for t in texts:
            before = len(keys)
            text_features(t, keys, weights)
            sizes.append(len(keys) - before)
        rows = np.repeat(np.arange(len(texts), dtype=np.int64), sizes)
    return rows, np.array(keys, dtype=np.uint64), np.array(weights, dtype=np.float64)
