"""The offline tokenizers are exact: same vocabularies as tiktoken's, same ids."""

from __future__ import annotations

import base64
import hashlib
import inspect
import os
import re

import pytest

from fakeai.engine import tokenizer as T
from fakeai.engine.prompt import count_chat


def _official_hashes() -> dict[str, str]:
    """The SHA-256 tiktoken pins for its own downloads of each vocabulary."""
    import tiktoken_ext.openai_public as op

    out = {}
    for name in ("cl100k_base", "o200k_base"):
        src = inspect.getsource(getattr(op, name))
        out[name] = re.search(r'expected_hash="([0-9a-f]{64})"', src).group(1)
    return out


@pytest.mark.parametrize("encoding,vocab", [("o200k_base", "o200k.vocab"), ("cl100k_base", "cl100k.vocab")])
def test_vocabulary_is_byte_identical_to_tiktokens(encoding, vocab):
    ranks = T.read_ranks(os.path.join(T._data_dir(), vocab))
    as_tiktoken_file = b"".join(base64.b64encode(tok) + b" " + str(rank).encode() + b"\n"
                                for tok, rank in sorted(ranks.items(), key=lambda kv: kv[1]))
    assert hashlib.sha256(as_tiktoken_file).hexdigest() == _official_hashes()[encoding]


# Known ids from OpenAI's published tokenizations.
@pytest.mark.parametrize("encoding,text,ids", [
    ("cl100k_base", "hello world", [15339, 1917]),
    ("cl100k_base", "tiktoken is great!", [83, 1609, 5963, 374, 2294, 0]),
    ("o200k_base", "hello world", [24912, 2375]),
    ("o200k_base", "Hello, world!", [13225, 11, 2375, 0]),
])
def test_known_token_ids(encoding, text, ids):
    tok = T.get_tokenizer(encoding)
    assert tok.encode(text) == ids
    assert tok.decode(ids) == text
    assert tok.count(text) == len(ids)


def test_every_encoding_round_trips_and_counts():
    text = "Le café coûte 3,50 €; naïve façade — 東京 🚀 ok?\n\n  done."
    for name in T.ENCODINGS:
        tok = T.get_tokenizer(name)
        ids = tok.encode(text)
        assert tok.decode(ids) == text
        assert tok.count(text) == len(ids) and tok.count("") == 0
        assert "".join(tok.token_bytes(i).decode("latin-1") for i in ids).encode("latin-1") == text.encode()


def test_special_token_text_counts_as_text():
    tok = T.get_tokenizer("o200k_base")
    assert len(tok.encode("<|endoftext|>")) > 1  # not the single special id


def test_vocabulary_gaps_are_not_tokens():
    tok = T.get_tokenizer("cl100k_base")
    assert tok.is_token(100) and not tok.is_token(100256) and not tok.is_token(10**9)


def test_unknown_encoding():
    with pytest.raises(KeyError):
        T.get_tokenizer("p50k_edit")


def test_chat_overhead_rule():
    # OpenAI's rule: 3 tokens per message + role + content (+1 + name), +3 to prime the reply
    tok = T.get_tokenizer("o200k_base")
    msgs = [{"role": "system", "content": "You are helpful."},
            {"role": "user", "content": "Hi there", "name": "bob"}]
    expected = 3 + sum(3 + tok.count(m["role"]) + tok.count(m["content"]) for m in msgs) + 1 + tok.count("bob")
    assert count_chat(tok, msgs) == expected
