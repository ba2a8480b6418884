"""fakeai.engine.embeddings: hashed-feature vectors and rerank scores, without a server."""

from __future__ import annotations

import numpy as np
import pytest

from fakeai.engine import embeddings as E
from fakeai.engine.tokenizer import get_tokenizer
from fakeai.registry import ModelRegistry

SEED = E.model_seed("text-embedding-3-small")
CAT, CAT2, MONEY = "the cat sat on the mat", "a cat sat on a mat", "quarterly revenue grew"
REGISTRY = ModelRegistry.load()


def cos(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


@pytest.mark.parametrize("dim", [1536, 3072, 1024, 384, 100, 7])
def test_rows_are_unit_float32_of_the_requested_width(dim):
    v = E.embed([CAT, MONEY, "x", "   ", "!!!", "日本語のテキスト", "emoji 🚀🚀"], dim, SEED)
    assert v.dtype == np.float32 and v.shape == (7, dim)
    assert np.all(np.isfinite(v))
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)


def test_vectors_are_dense_like_real_embeddings():
    v = E.embed([CAT], 1536, SEED)[0]
    assert np.count_nonzero(v) > 1500
    assert abs(float(v.mean())) < 0.01 and 0.015 < float(v.std()) < 0.04  # ~1/sqrt(1536)


def test_same_text_same_vector_whatever_the_batch():
    alone = E.embed([CAT], 1536, SEED)[0]
    again = E.embed([MONEY, "other words", CAT], 1536, SEED)[2]
    np.testing.assert_array_equal(alone, again)


def test_models_give_different_vectors():
    a = E.embed([CAT], 1536, SEED)[0]
    b = E.embed([CAT], 1536, E.model_seed("text-embedding-ada-002"))[0]
    assert abs(cos(a, b)) < 0.2


def test_lexical_overlap_orders_similarity():
    v = E.embed([CAT, CAT2, MONEY, "revenue grew this quarter", "cats sitting on mats"], 1536, SEED)
    assert cos(v[0], v[1]) > cos(v[0], v[4]) > cos(v[0], v[2])
    assert cos(v[2], v[3]) > cos(v[2], v[0])
    assert cos(v[0], v[1]) > 0.8
    assert abs(cos(v[0], v[2])) < 0.3  # unrelated: the model's small common direction only


def test_case_and_spacing_do_not_matter():
    v = E.embed(["The  CAT sat\non the mat", CAT], 1536, SEED)
    np.testing.assert_allclose(v[0], v[1], atol=1e-6)


def test_non_latin_text_has_features():
    v = E.embed(["東京は日本の首都です", "東京は日本の大都市です", "Paris est la capitale"], 1024, SEED)
    assert cos(v[0], v[1]) > cos(v[0], v[2]) + 0.2


@pytest.mark.parametrize("dimensions", [1, 64, 100, 256, 1024, 1535])
def test_shortened_vector_is_the_renormalized_prefix(dimensions):
    full = E.embed([CAT, MONEY], 1536, SEED)
    short = E.embed([CAT, MONEY], 1536, SEED, dimensions)
    assert short.shape == (2, dimensions)
    prefix = full[:, :dimensions] / np.linalg.norm(full[:, :dimensions], axis=1, keepdims=True)
    np.testing.assert_allclose(short, prefix, atol=1e-5)


def test_shortened_vectors_keep_the_similarity_order():
    v = E.embed([CAT, CAT2, MONEY], 3072, SEED, 256)
    assert cos(v[0], v[1]) > cos(v[0], v[2]) + 0.4


def test_matryoshka_blocks_cover_the_vector():
    assert E.blocks(1536) == [(0, 64), (64, 256), (256, 1024), (1024, 1536)]
    assert E.blocks(3072)[-1] == (1024, 3072)
    assert E.blocks(100) == [(0, 64), (64, 100)]
    assert E.blocks(10) == [(0, 10)]


def test_dimensions_support_follows_the_model_family():
    assert E.supports_dimensions(REGISTRY.get("text-embedding-3-small"))
    assert E.supports_dimensions(REGISTRY.get("text-embedding-3-large"))
    assert E.supports_dimensions(REGISTRY.get("nvidia/llama-3.2-nv-embedqa-1b-v2"))
    assert not E.supports_dimensions(REGISTRY.get("text-embedding-ada-002"))
    assert not E.supports_dimensions(REGISTRY.get("nvidia/nv-embedqa-e5-v5"))


def test_tf_is_sublinear():
    """Repeating a word ten times moves the vector less than ten copies' worth."""
    v = E.embed(["cat dog", "cat cat dog", "cat " * 10 + "dog"], 1536, SEED)
    assert cos(v[0], v[1]) > cos(v[0], v[2]) > 0.5


def test_large_batch_runs():
    """Speed sanity (no timing assertion): the largest batch OpenAI allows."""
    texts = [f"document {i} about topic {i % 17} with some shared words" for i in range(2048)]
    v = E.embed(texts, 3072, SEED)
    assert v.shape == (2048, 3072)
    np.testing.assert_allclose(np.linalg.norm(v[::97], axis=1), 1.0, atol=1e-5)



# -- the scalar path for small batches ----------------------------------------------------

def _varied_texts(n: int = 520) -> list[str]:
    import random

    rng = random.Random(1234)
    alphabet = list("abcdefgh xyz  \t\n.,!?;:'\"()-_0123456789") + [
        "é", "日", "本", "🚀", "\u00a0", "\u2003", "\u3000", "，", "。", "ß", "İ", "\x00", "\x7f",
        "\u200b", "«", "×", "\u0085", "\uff01", "\u2e80"]
    vocab = ["the", "cat", "of", "hello", "world", "x", "!!", "abc.def", "naïve", "Σίσυφος", "a" * 30,
             "don't", "e-mail", "3.14", "...", "THE", "Cat"]
    texts = ["r12x3f9a8b7c Say hello in one short sentence.", "", " ", "\t\n", "!!!", "the the the cat",
             "a" * 200, "İstanbul ΣΑΣ", "x", "ab", "cat cat cat cat cat cat cat cat cat cat dog"]
    while len(texts) < n:
        size = rng.choice([1, 3, 10, 30, 80, 200])
        if rng.random() < 0.5:
            texts.append("".join(rng.choice(alphabet) for _ in range(size)))
        else:
            texts.append(" ".join(rng.choice(vocab) for _ in range(size // 3 + 1)))
    return texts


def _per_text(rows, keys, weights, n):
    return [(keys[rows == i].tolist(), weights[rows == i].tolist()) for i in range(n)]


def test_scalar_features_equal_the_vectorized_ones():
    """Same hashes and weights, in the same order within each text (the sums depend on it)."""
    from fakeai.engine import embed_fast

    texts = _varied_texts()
    for size in (1, 2, 3, 7, 16):
        for i in range(0, len(texts), size):
            batch = texts[i:i + size]
            assert (_per_text(*embed_fast.features(batch), len(batch))
                    == _per_text(*E.features_vectorized(batch), len(batch))), batch


@pytest.mark.parametrize("dim,dimensions", [(1536, None), (3072, 256), (384, 100), (100, None),
                                            (8192, None)])
def test_small_batch_vectors_are_bit_identical_to_the_vectorized_path(monkeypatch, dim, dimensions):
    texts = _varied_texts(200)
    batches = [texts[i:i + size] for size in (1, 2, 5, 13) for i in range(0, len(texts), 4 * size)]
    fast = [E.embed(b, dim, SEED, dimensions) for b in batches]
    monkeypatch.setattr(E, "_SMALL_CHARS", -1)  # everything through the vectorized path
    monkeypatch.setattr(E, "_SMALL_TEXTS", -1)
    for b, v in zip(batches, fast):
        np.testing.assert_array_equal(v, E.embed(b, dim, SEED, dimensions))


def test_word_cache_overflow_is_harmless(monkeypatch):
    from fakeai.engine import embed_fast

    before = E.embed([CAT, MONEY], 1536, SEED)
    embed_fast._cache.clear()
    monkeypatch.setattr(embed_fast, "_CACHE_SIZE", 3)
    np.testing.assert_array_equal(E.embed([CAT, MONEY], 1536, SEED), before)
    assert len(embed_fast._cache) <= 3


def test_numpy_word_hashes_equal_the_scalar_ones():
    """New words of 11..40 framed characters are hashed in one numpy pass."""
    import random

    from fakeai.engine import embed_fast

    rng = random.Random(7)
    chars = "abcxyz0189_.!é日🚀\x00İ"
    for n in range(3, embed_fast._NUMPY_WORD_MAX + 1):
        framed = " " + "".join(rng.choice(chars) for _ in range(n - 2)) + rng.choice(" .")
        assert embed_fast._word_numpy(framed) == (embed_fast.word_hash(framed[1:-1]),
                                                  embed_fast._grams(framed)), framed


def test_long_new_words_are_bit_identical_to_the_vectorized_path(monkeypatch):
    import random

    rng = random.Random(11)
    texts = [f"r{i}x{rng.getrandbits(32):08x} Say hello, {'w' * (i % 45)}{i}! 日本{i}語テキスト"
             for i in range(60)]
    fast = [E.embed([t], 1536, SEED) for t in texts]
    monkeypatch.setattr(E, "_SMALL_CHARS", -1)
    for t, v in zip(texts, fast):
        np.testing.assert_array_equal(v, E.embed([t], 1536, SEED))


@pytest.mark.parametrize("m", [1, 2, 3, 7, 64, 100, 192, 193, 512, 768])
def test_rfft_kernel_equals_numpy(m):
    x = np.random.default_rng(m).standard_normal((3, m + 5))[:, 2: 2 + m]  # a strided view
    out = np.empty((3, m // 2 + 1), np.complex128)
    E._rfft(x, out)
    np.testing.assert_array_equal(out, np.fft.rfft(x, axis=1))


@pytest.mark.parametrize("dim,dimensions,digest", [
    (1536, None, "508b234096feee04"), (3072, 256, "f8410fa466825375"), (4096, None, "a8a57a1d749b5e1f")])
def test_vectors_are_pinned(dim, dimensions, digest):
    """The determinism contract: these vectors must not change across releases."""
    import hashlib

    texts = ["r12x3f9a8b7c Say hello in one short sentence.", "the cat sat on the mat", "",
             "日本語のテキスト 🚀!!", "a b a b a b"]
    for batch in (texts, texts * 20):  # the scalar path and the vectorized one
        v = E.embed(batch, dim, SEED, dimensions)[: len(texts)]
        assert hashlib.sha256(v.tobytes()).hexdigest()[:16] == digest


# -- rerank -----------------------------------------------------------------------------

RERANKER = REGISTRY.get("nvidia/llama-3.2-nv-rerankqa-1b-v2")
SHORT = REGISTRY.get("nvidia/nv-rerankqa-mistral-4b-v3")  # 512-token window
TOK = get_tokenizer(RERANKER.tokenizer)
QUERY = "What is the memory bandwidth of the H100 GPU?"
PASSAGES = [
    "Bananas are rich in potassium and easy to digest.",
    "The H100 GPU delivers 3 terabytes per second of memory bandwidth.",
    "A100 provides up to 20X higher performance over the prior generation.",
]


def test_relevant_passage_scores_highest():
    r = E.rank(TOK, RERANKER, QUERY, PASSAGES, None)
    assert int(np.argmax(r.logits)) == 1
    assert r.logits[1] > r.logits[2] > r.logits[0]
    assert -10 < r.logits.min() and r.logits.max() < 10  # cross-encoder-like range


def test_rank_bills_every_query_passage_pair():
    r = E.rank(TOK, RERANKER, QUERY, PASSAGES, None)
    assert r.prompt_tokens == sum(TOK.count(QUERY) + TOK.count(p) for p in PASSAGES)
    assert r.passages == PASSAGES


def test_rank_is_deterministic():
    a = E.rank(TOK, RERANKER, QUERY, PASSAGES, None).logits
    b = E.rank(TOK, RERANKER, QUERY, list(reversed(PASSAGES)), None).logits
    np.testing.assert_array_equal(a, b[::-1])


def test_over_long_pair_raises_without_truncation():
    long = "memory bandwidth " * 400
    with pytest.raises(E.InputTooLong) as e:
        E.rank(TOK, SHORT, QUERY, ["short", long], None)
    assert e.value.index == 1 and e.value.limit == 512
    assert e.value.tokens == TOK.count(QUERY) + TOK.count(long)
    assert "exceeds maximum allowed token size 512" in e.value.message


@pytest.mark.parametrize("side", ["END", "START"])
def test_truncation_cuts_the_passage_to_the_window(side):
    long = "alpha " * 600 + "omega " * 600
    r = E.rank(TOK, SHORT, QUERY, [long], side)
    assert r.prompt_tokens == 512
    kept = r.passages[0]
    assert ("alpha" in kept) == (side == "END") and ("omega" in kept) == (side == "START")


def test_max_passage_tokens_caps_each_passage():
    short = "word " * 10
    r = E.rank(TOK, RERANKER, QUERY, ["word " * 100, short], "END", max_passage_tokens=20)
    q = TOK.count(QUERY)
    assert TOK.count(short) < 20
    assert r.prompt_tokens == (q + 20) + (q + TOK.count(short))
    assert r.passages[1] == short


def test_sigmoid_maps_logits_to_probabilities():
    s = E.sigmoid(np.array([-30.0, 0.0, 30.0]))
    np.testing.assert_allclose(s, [0.0, 0.5, 1.0], atol=1e-12)


def test_the_word_cache_stays_bounded_under_unique_words():
    from fakeai.engine import embed_fast as F

    F._cache.clear()
    keys: list[int] = []
    weights: list[float] = []
    for i in range(3 * F._CACHE_SIZE // 100):
        words = " ".join(f"w{i}x{j}" for j in range(100))  # short unique words: cached, then cleared
        F.text_features(words + f" {'id' * 20}{i}", keys, weights)  # a long one: never cached
        assert len(F._cache) <= F._CACHE_SIZE
    assert F._cache and all(len(k) <= F._CACHE_WORD_MAX for k in F._cache)
