"""Log-probabilities that match the emitted tokens exactly.

Each emitted token gets a logprob and, when asked, ``top_n`` alternatives:
distinct real tokens of the same vocabulary, sorted by logprob, with the
emitted token among them (it is the most likely one most of the time, as with
sampling at a moderate temperature). Values are deterministic for the rng.
"""

from __future__ import annotations

import random

from .tokenizer import Tokenizer

# Common single-token pieces used as alternatives (real tokens in every vocabulary).
_ALTERNATIVES = (
    " the", " a", " of", " and", " to", " in", " is", " that", " for", " it", " as", " with",
    " on", " this", " be", " are", " by", " or", " an", " can", " more", " also", " its",
    ".", ",", " system", " data", " model", " process", " new", " first", " each", " which",
    " not", " from", " at", " all", " but", " one", " was", " will", " has", " their", " these",
)


_ALT_CACHE: dict[str, tuple[int, ...]] = {}


def alternatives_for(tok: Tokenizer) -> tuple[int, ...]:
    """Token ids of the alternative pool in ``tok``'s vocabulary (computed once)."""
    cached = _ALT_CACHE.get(tok.name)
    if cached is None:
        ids: list[int] = []
        for piece in _ALTERNATIVES:
            enc = tok.encode(piece)
            if len(enc) == 1 and enc[0] not in ids:
                ids.append(enc[0])
        cached = _ALT_CACHE[tok.name] = tuple(ids)
    return cached


def token_entry(tok: Tokenizer, token: int, text: str, rng: random.Random, top_n: int) -> dict:
    """One OpenAI ``ChatCompletionTokenLogprob``: token, logprob, bytes, top_logprobs."""
    raw = tok.token_bytes(token) if text == tok.token_text(token) else text.encode()  # cut by a stop
    chosen = -abs(rng.gauss(0.0, 0.6)) - 0.0005
    entry = {"token": text, "logprob": round(chosen, 6), "bytes": list(raw), "top_logprobs": []}
    if top_n <= 0:
        return entry
    pool = alternatives_for(tok)
    picks: list[int] = []
    for _ in range(top_n * 3):
        if len(picks) >= top_n - 1:
            break
        cand = pool[int(rng.random() * len(pool))]
        if cand != token and cand not in picks:
            picks.append(cand)
    # the emitted token leads unless sampling picked a less likely one (10%)
    top = [(token, chosen)]
    lp = chosen
    for i, cand in enumerate(picks):
        lp = lp - 0.3 - rng.random() * 1.5 if i or rng.random() > 0.1 else min(chosen + 0.2, -0.0001)
        top.append((cand, lp))
    top.sort(key=lambda x: -x[1])
    entry["top_logprobs"] = [
        {"token": tok.token_text(t), "logprob": round(v, 6), "bytes": list(tok.token_bytes(t))}
        for t, v in top[:top_n]
    ]
    return entry


def chat_logprobs(tok: Tokenizer, ids: list[int], texts: list[str], rng: random.Random,
                  top_n: int) -> list[dict]:
    return [token_entry(tok, t, x, rng, top_n) for t, x in zip(ids, texts)]


def completion_logprobs(entries: list[dict], offset: int = 0) -> dict:
    """The legacy completions ``logprobs`` object built from chat-style entries."""
    tokens, lps, tops, offsets = [], [], [], []
    pos = offset
    for e in entries:
        tokens.append(e["token"])
        lps.append(e["logprob"])
        tops.append({t["token"]: t["logprob"] for t in e["top_logprobs"]} if e["top_logprobs"] else None)
        offsets.append(pos)
        pos += len(e["token"])
    return {"tokens": tokens, "token_logprobs": lps, "top_logprobs": tops, "text_offset": offsets}
