"""Properties of the fake-English generator (fakeai.engine.text)."""

from __future__ import annotations

import random
import re

import pytest

from fakeai.engine import wordbank as wb
from fakeai.engine.text import TOPIC_CACHE_MAX, TextGenerator, get_text_generator
from fakeai.engine.tokenizer import ENCODINGS, get_tokenizer

VOCAB = wb.vocabulary()
TOPIC = ("kubernetes", "Python", "latency", "sourdough")
WORD = re.compile(r"[A-Za-z]+")


def cases(n: int = 200, seed: int = 0):
    """(seed, max_tokens, target_tokens, topic_words), varied and reproducible."""
    meta = random.Random(seed)
    for i in range(n):
        max_tokens = meta.choice((1, 2, 3, 5, 8, 16, 40, 128, 300, 1000))
        target = meta.choice((-3, 0, 1, 7, 20, 64, 128, 250, max_tokens, max_tokens + 5))
        topic = TOPIC if i % 3 == 0 else ()
        yield i * 7919 + 13, max_tokens, target, topic


def sentences(text: str) -> list[str]:
    return [s for s in re.split(r"\.(?: |\n\n)", text.rstrip(".")) if s]


@pytest.fixture(scope="module", params=ENCODINGS)
def gen(request) -> TextGenerator:
    return get_text_generator(request.param)


def test_vocabulary_is_large_and_plain():
    assert len(VOCAB) >= 400
    assert all(w.isascii() and w.isalpha() and w.islower() for w in VOCAB)


def test_token_exact_bounded_and_well_ended(gen):
    tok = gen.tok
    naturals = cuts = 0
    for seed, max_tokens, target, topic in cases():
        ids, natural = gen.generate(random.Random(seed), max_tokens, target, topic)
        case = (seed, max_tokens, target)
        assert ids, case
        assert tok.encode(tok.decode(ids)) == ids, case
        assert tok.decode(ids) == gen.text(ids), case
        assert len(ids) <= max_tokens, case
        text = gen.text(ids)
        assert text.isascii(), case
        if natural:
            naturals += 1
            assert text.endswith(".") and not text.endswith("\n"), case
            assert max(target, 1) < max_tokens, case
        else:
            cuts += 1
            assert len(ids) == max(max_tokens, 1), case
        if max(target, 1) >= max_tokens:
            assert not natural, case
    assert naturals > 40 and cuts > 40


def test_deterministic_and_seed_dependent(gen):
    a = gen.generate(random.Random(42), 500, 200, TOPIC)
    b = gen.generate(random.Random(42), 500, 200, TOPIC)
    assert a == b
    outputs = {tuple(gen.generate(random.Random(s), 500, 200)[0]) for s in range(50)}
    assert len(outputs) == 50


def test_rng_state_continues_deterministically(gen):
    r1, r2 = random.Random(3), random.Random(3)
    seq1 = [gen.generate(r1, 64, 30)[0] for _ in range(5)]
    seq2 = [gen.generate(r2, 64, 30)[0] for _ in range(5)]
    assert seq1 == seq2
    assert len({tuple(s) for s in seq1}) == 5


def test_words_grammar_and_capitals(gen):
    for seed, max_tokens, target, topic in cases(150, seed=1):
        ids, natural = gen.generate(random.Random(seed), max_tokens, target, topic)
        text = gen.text(ids)
        words = WORD.findall(text)
        if not natural and not text.endswith((".", ",")):
            words = words[:-1]  # the cut may split the last word
        for w in words:
            assert w.lower() in VOCAB or w in topic, (seed, w, text)
        sents = sentences(text)
        complete = sents if natural else sents[:-1]
        for s in sents:
            assert s[0].isupper(), (seed, text)
            assert not s.startswith((" ", "\n")), (seed, text)
        for s in complete:
            assert 6 <= len(WORD.findall(s)) <= 24, (seed, s)
        # indefinite articles agree with the next word (bank words only)
        for art, nxt in re.findall(r"\b(an?|An?) ([a-z]+)", text):
            if nxt in VOCAB:
                assert (art.lower() == "an") == wb.starts_with_vowel_sound(nxt), (art, nxt)


def test_paragraphs(gen):
    ids, natural = gen.generate(random.Random(9), 5000, 2000)
    text = gen.text(ids)
    assert natural
    paras = text.split("\n\n")
    assert len(paras) >= 5
    for p in paras[:-1]:
        assert p.endswith(".") and not p.startswith(" ")
        assert 3 <= len(sentences(p)) <= 6, p
    assert "\n" not in "".join(paras) and "  " not in text


def test_length_close_to_target(gen):
    tok = gen.tok
    for seed in range(200):
        target = random.Random(seed).randint(1, 400)
        ids, natural = gen.generate(random.Random(seed), 100_000, target)
        assert natural
        assert len(ids) >= target
        text = gen.text(ids)
        # dropping the last sentence would fall short: the first boundary >= target
        cut = max(text.rfind(". "), text.rfind(".\n\n"))
        if cut >= 0:
            assert len(tok.encode(text[: cut + 1])) < target, (seed, target, text)
        assert len(ids) - target <= 60


def test_falls_back_to_earlier_boundary_below_max(gen):
    checked = 0
    for seed in range(300):
        ids, natural = gen.generate(random.Random(seed), 60, 55)
        assert len(ids) <= 60
        if natural and len(ids) < 55:
            checked += 1
            assert gen.text(ids).endswith(".")
    assert checked > 0


def test_target_at_or_above_max_fills_exactly(gen):
    for seed in range(50):
        for max_tokens in (1, 2, 17, 128):
            for target in (max_tokens, max_tokens + 1, 10**6):
                ids, natural = gen.generate(random.Random(seed), max_tokens, target)
                assert len(ids) == max_tokens and not natural
                assert gen.tok.encode(gen.tok.decode(ids)) == ids


def test_nonpositive_target_behaves_as_one(gen):
    for seed in range(20):
        one = gen.generate(random.Random(seed), 200, 1)
        assert gen.generate(random.Random(seed), 200, 0) == one
        assert gen.generate(random.Random(seed), 200, -5) == one
        assert one[1] and len(sentences(gen.text(one[0]))) == 1
    ids, natural = gen.generate(random.Random(0), 0, 0)
    assert len(ids) == 1 and not natural


def test_topic_words_appear_sometimes(gen):
    hits = 0
    for seed in range(40):
        text = gen.text(gen.generate(random.Random(seed), 400, 200, TOPIC)[0])
        hits += any(re.search(rf"\b{w}\b", text) for w in TOPIC)
    assert 10 <= hits <= 40
    plain = " ".join(gen.text(gen.generate(random.Random(s), 400, 200)[0]) for s in range(40))
    assert not any(re.search(rf"\b{w}\b", plain) for w in TOPIC)


def test_bad_topic_words_are_ignored_and_cache_bounded():
    gen = TextGenerator(get_tokenizer("o200k_base"))
    bad = ("naïve", "foo-bar", "x y", "")
    assert gen.generate(random.Random(1), 300, 150, bad) == gen.generate(random.Random(1), 300, 150)
    for i in range(TOPIC_CACHE_MAX + 100):
        gen.generate(random.Random(i), 8, 4, ("zq" + "".join(chr(97 + int(d)) for d in str(i)),))
        assert len(gen._topic_cache) <= TOPIC_CACHE_MAX
    assert len(gen._piece_cache) < 3 * len(VOCAB)  # only the bank is cached


def test_cut_is_token_exact_at_every_length(gen):
    tok = gen.tok
    for max_tokens in range(1, 160):
        ids, natural = gen.generate(random.Random(max_tokens), max_tokens, max_tokens, TOPIC)
        assert len(ids) == max_tokens and not natural
        assert tok.encode(tok.decode(ids)) == ids, max_tokens


def test_prefix_safety_check_and_unsafe_topic_words_dropped():
    tok = get_tokenizer("cl100k_base")
    gen = TextGenerator(tok)
    # " th" + "ing" + "s": the prefix " thing" re-encodes as one token
    split = tuple(tok.encode(" th") + tok.encode("ing") + tok.encode("s"))
    assert len(split) == 3 and not gen._prefix_safe(split)
    assert gen._prefix_safe(tuple(tok.encode(" things")))
    gen._prefix_safe = lambda ids: False  # every new topic word now "unsafe"
    assert gen.generate(random.Random(4), 400, 300, TOPIC) == gen.generate(random.Random(4), 400, 300)
