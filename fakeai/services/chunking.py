"""Splitting a file's text into overlapping token windows, as OpenAI's vector stores do.

A strategy is ``static`` (``max_chunk_size_tokens`` between 100 and 4096, and
``chunk_overlap_tokens`` at most half of it) or ``auto``, which OpenAI documents as
the static strategy with 800 and 400 (and reports back as such). Sizes are counted
with the embedding model's real tokenizer: every chunk but the last holds exactly
``max_chunk_size_tokens`` tokens, and each chunk starts ``max - overlap`` tokens after
the one before it, so consecutive chunks share exactly ``overlap`` tokens.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..engine.errors import EngineError
from ..engine.tokenizer import Tokenizer

AUTO_MAX_TOKENS = 800
AUTO_OVERLAP_TOKENS = 400
MIN_CHUNK_TOKENS = 100
MAX_CHUNK_TOKENS = 4096


@dataclass(frozen=True, slots=True)
class Strategy:
    max_tokens: int
    overlap: int

    def as_dict(self) -> dict:
        """The wire form a vector store file reports (``auto`` reads back as static)."""
        return {"type": "static", "static": {"max_chunk_size_tokens": self.max_tokens,
                                             "chunk_overlap_tokens": self.overlap}}


AUTO = Strategy(AUTO_MAX_TOKENS, AUTO_OVERLAP_TOKENS)


def strategy(raw: dict | None, param: str = "chunking_strategy") -> Strategy:
    """The strategy a request's ``chunking_strategy`` names (already shape-checked),
    with OpenAI's bounds: a 400 naming the field otherwise."""
    if raw is None or raw.get("type") == "auto":
        return AUTO
    static = raw.get("static") or {}
    size, overlap = static.get("max_chunk_size_tokens"), static.get("chunk_overlap_tokens")
    if not isinstance(size, int) or not MIN_CHUNK_TOKENS <= size <= MAX_CHUNK_TOKENS:
        raise EngineError(f"Invalid '{param}.static.max_chunk_size_tokens': must be between "
                          f"{MIN_CHUNK_TOKENS} and {MAX_CHUNK_TOKENS}, got {size!r}.",
                          param=f"{param}.static.max_chunk_size_tokens", code="invalid_value")
    if not isinstance(overlap, int) or overlap < 0 or overlap > size // 2:
        raise EngineError(f"Invalid '{param}.static.chunk_overlap_tokens': must be between 0 and half "
                          f"of max_chunk_size_tokens ({size // 2}), got {overlap!r}.",
                          param=f"{param}.static.chunk_overlap_tokens", code="invalid_value")
    return Strategy(size, overlap)


def spans(n_tokens: int, s: Strategy) -> list[tuple[int, int]]:
    """Token ranges ``[start, end)`` of the chunks of a text of ``n_tokens`` tokens."""
    if n_tokens <= 0:
        return []
    step = s.max_tokens - s.overlap
    out, start = [], 0
    while True:
        end = min(start + s.max_tokens, n_tokens)
        out.append((start, end))
        if end >= n_tokens:
            return out
        start += step


def chunk(tok: Tokenizer, text: str, s: Strategy, ids: list[int] | None = None) -> tuple[list[str], list[int]]:
    """The chunks of ``text`` (whose token ids are ``ids``, if already known) and their
    token counts.

    A chunk's text is the UTF-8 of its tokens. When a multi-byte character is split
    between two tokens at a chunk's edge, the whole character goes to the chunk in
    which it starts, so no character is lost or garbled.
    """
    ids = tok.encode(text) if ids is None else ids
    data = text.encode("utf-8")
    offsets, at = [0], 0
    for t in ids:
        at += len(tok.token_bytes(t))
        offsets.append(at)
    texts, counts = [], []
    for start, end in spans(len(ids), s):
        lo, hi = _char_edge(data, offsets[start]), _char_edge(data, offsets[end])
        texts.append(data[lo:hi].decode("utf-8", "replace"))
        counts.append(end - start)
    return texts, counts


def _char_edge(data: bytes, pos: int) -> int:
    """``pos`` moved forward past UTF-8 continuation bytes, to a character boundary."""
    while pos < len(data) and data[pos] & 0xC0 == 0x80:
        pos += 1
    return pos
