"""Exact, offline tokenizers.

The BPE engine is OpenAI's ``tiktoken``. Its merge ranks come from the
vocabulary files that the ``quicktok-v1`` package ships (MIT); for
``o200k_base`` and ``cl100k_base`` those files reproduce, byte for byte, the
official ``.tiktoken`` files (``tests/unit/test_tokenizer.py`` checks their
SHA-256 against the hashes tiktoken itself pins). Nothing is downloaded.

Encodings:

* ``o200k_base``    GPT-4o, GPT-4.1, GPT-5, o-series (exact)
* ``cl100k_base``   GPT-4, GPT-3.5, text-embedding-3/ada-002 (exact)
* ``o200k_harmony`` gpt-oss (o200k ranks, harmony specials; exact for text)
* ``llama3``        Llama 3.x (exact, Meta's vocabulary)
* ``qwen3``         Qwen 2.5 / 3 (exact, Qwen's vocabulary)

Families without a packaged vocabulary (Claude, Mistral, DeepSeek, Nemotron)
name one of the above in the catalog as a documented approximation.
"""

from __future__ import annotations

import os
import struct
import threading
from functools import lru_cache

import tiktoken

_CL100K_PAT = (
    r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+|"""
    r""" ?[^\s\p{L}\p{N}]++[\r\n]*+|\s++$|\s*[\r\n]|\s+(?!\S)|\s"""
)
_O200K_PAT = "|".join(
    [
        r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
        r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
        r"""\p{N}{1,3}""",
        r""" ?[^\s\p{L}\p{N}]+[\r\n/]*""",
        r"""\s*[\r\n]+""",
        r"""\s+(?!\S)""",
        r"""\s+""",
    ]
)
_LLAMA3_PAT = (
    r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|"""
    r""" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"""
)
_QWEN_PAT = (
    r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}|"""
    r""" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"""
)

# encoding name -> (vocabulary file, special-token file, pattern)
_SPECS: dict[str, tuple[str, str, str]] = {
    "o200k_base": ("o200k.vocab", "o200k.special", _O200K_PAT),
    "cl100k_base": ("cl100k.vocab", "cl100k.special", _CL100K_PAT),
    "o200k_harmony": ("o200k.vocab", "o200k_harmony.special", _O200K_PAT),
    "llama3": ("llama3.vocab", "llama3.special", _LLAMA3_PAT),
    "qwen3": ("qwen3.vocab", "qwen3.special", _QWEN_PAT),
}

ENCODINGS = tuple(_SPECS)


def _data_dir() -> str:
    import quicktok  # the package only carries the data; its engine is unused

    return os.path.join(os.path.dirname(quicktok.__file__), "data")


def read_ranks(path: str) -> dict[bytes, int]:
    """quicktok's vocabulary format: u32 count, then (u16 len, bytes, u32 rank)."""
    with open(path, "rb") as f:
        buf = f.read()
    (count,) = struct.unpack_from("<I", buf, 0)
    off, ranks = 4, {}
    unpack_h, unpack_i = struct.Struct("<H").unpack_from, struct.Struct("<I").unpack_from
    for _ in range(count):
        (n,) = unpack_h(buf, off)
        off += 2
        tok = buf[off : off + n]
        off += n
        (ranks[tok],) = unpack_i(buf, off)
        off += 4
    if off != len(buf):
        raise ValueError(f"{path}: trailing bytes in vocabulary file")
    return ranks


def read_specials(path: str) -> dict[str, int]:
    """quicktok's special-token format: u32 count, then (u32 id, u16 len, bytes)."""
    with open(path, "rb") as f:
        buf = f.read()
    (count,) = struct.unpack_from("<I", buf, 0)
    off, out = 4, {}
    for _ in range(count):
        tid, n = struct.unpack_from("<IH", buf, off)
        off += 6
        out[buf[off : off + n].decode("utf-8")] = tid
        off += n
    return out


class Tokenizer:
    """A thin, cached wrapper over one ``tiktoken.Encoding``."""

    __slots__ = ("name", "_enc", "_text_cache")

    def __init__(self, name: str, enc: tiktoken.Encoding) -> None:
        self.name = name
        self._enc = enc
        self._text_cache: dict[int, str] = {}

    @property
    def n_vocab(self) -> int:
        return self._enc.n_vocab

    def encode(self, text: str) -> list[int]:
        """Token ids of ordinary text; special-token strings count as text."""
        return self._enc.encode_ordinary(text)

    def count(self, text: str) -> int:
        return len(self._enc.encode_ordinary(text)) if text else 0

    def decode(self, ids: list[int]) -> str:
        return self._enc.decode(ids)

    def is_token(self, token: int) -> bool:
        """Whether ``token`` is an id of this vocabulary (vocabularies have unused gaps)."""
        if token in self._text_cache:
            return True
        try:
            self._enc.decode_single_token_bytes(token)
        except (KeyError, OverflowError, ValueError):
            return False
        return True

    def token_bytes(self, token: int) -> bytes:
        return self._enc.decode_single_token_bytes(token)

    def token_text(self, token: int) -> str:
        """The text of one token (lossy for a token that splits a UTF-8 character)."""
        text = self._text_cache.get(token)
        if text is None:
            text = self._enc.decode_single_token_bytes(token).decode("utf-8", "replace")
            if len(self._text_cache) < 65536:
                self._text_cache[token] = text
        return text


_locks = {name: threading.Lock() for name in _SPECS}


@lru_cache(maxsize=None)
def _load(name: str) -> Tokenizer:
    vocab, special, pat = _SPECS[name]
    d = _data_dir()
    ranks = read_ranks(os.path.join(d, vocab))
    specials = read_specials(os.path.join(d, special))
    enc = tiktoken.Encoding(name, pat_str=pat, mergeable_ranks=ranks, special_tokens=specials)
    return Tokenizer(name, enc)


def get_tokenizer(name: str) -> Tokenizer:
    """The tokenizer for an encoding name (loaded once, thread-safe)."""
    if name not in _SPECS:
        raise KeyError(f"unknown encoding {name!r}; known: {', '.join(_SPECS)}")
    with _locks[name]:  # one loader per encoding; others load in parallel
        return _load(name)
