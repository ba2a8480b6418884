"""Readable, deterministic, token-exact fake English, generated as token ids.

Text is assembled from *pieces* that are exactly the units of the encodings'
regex pre-tokenization: the first word of the text without a leading space
("The"), every later word with one (" system", " The"), punctuation on its
own (",", "."), and a sentence end plus paragraph break as one piece
(".\\n\\n"; the regexes glue trailing newlines to punctuation). tiktoken
encodes each pre-token independently, so the ids of the whole text are the
concatenation of the pieces' cached ids: ``tok.encode(tok.decode(ids)) ==
ids``. Words are ASCII letters only, so each token decodes cleanly alone.

A cut at ``max_tokens`` may split a multi-token word; construction keeps
only words whose every token prefix re-encodes to itself, so cut output is
token-exact too. The hot path is ``rng.random()``, tuple indexing and
``list.extend`` of cached id tuples: no tokenizer call per request.
"""

from __future__ import annotations

import random
from functools import lru_cache

from fakeai.engine import wordbank as wb
from fakeai.engine.tokenizer import Tokenizer, get_tokenizer

ADJ_P = 0.45  # chance a noun phrase gets an adjective
TOPIC_P = 0.12  # chance a noun phrase uses one of the caller's topic words
TOPIC_CACHE_MAX = 4096

# template opcodes
_NP, _PP, _V, _LIT, _A, _B, _M, _C, _J, _E = range(10)
_CODES = {"S": _NP, "O": _NP, "P": _PP, "V": _V, "A": _A, "B": _B, "M": _M, "C": _C, "J": _J, "E": _E}

Ids = tuple[int, ...]
Forms = tuple[Ids, Ids, Ids]  # (" word", "Word", " Word"), indexed by `form`


class TextGenerator:
    """Fake English for one tokenizer; see ``generate``."""

    def __init__(self, tok: Tokenizer) -> None:
        self.tok = tok
        self._piece_cache: dict[str, Ids] = {}
        self._topic_cache: dict[str, Ids | None] = {}
        self.dot = self._ids(".")
        self.para = self._ids(".\n\n")
        self._dot_len = len(self.dot)
        self._a, self._an = self._forms("a"), self._forms("an")
        self._the = self._forms("the")
        self._dets = tuple(None if d == "a" else self._forms(d) for d in wb.DETERMINERS)
        self._preps = tuple(self._forms(p) for p in wb.PREPOSITIONS)
        self._subs = tuple(self._forms(s) for s in wb.SUBORDINATORS)
        self._conns = tuple(self._forms(c) for c in wb.CONNECTORS)
        self._modals = tuple(self._ids(" " + m) for m in wb.MODALS)
        self._evals = tuple(self._ids(" " + e) for e in wb.EVALUATIVE)
        self._advs = self._words(wb.ADVERBS)
        self._templates = tuple(self._compile(t) for t in wb.TEMPLATES)
        general = (wb.NOUNS, wb.ADJECTIVES, wb.VERBS)
        # per topic: general words plus the topic's words (twice, for flavour)
        self._pools = tuple(
            self._pool(*(g + t + t for g, t in zip(general, topic))) for topic in wb.TOPICS.values()
        )

    # ------------------------------------------------------------ construction
    def _ids(self, piece: str) -> Ids:
        ids = self._piece_cache.get(piece)
        if ids is None:
            ids = self._piece_cache[piece] = tuple(self.tok.encode(piece))
        return ids

    def _forms(self, word: str) -> Forms:
        cap = word[0].upper() + word[1:]
        if word[0].isupper():  # connectors are stored capitalised: "However,"
            word = word[0].lower() + word[1:]
        return tuple(self._pieces(text) for text in (" " + word, cap, " " + cap))  # type: ignore[return-value]

    def _pieces(self, text: str) -> Ids:
        """Ids of a multi-word text, built piece by piece (as the hot path does)."""
        out: list[int] = []
        first = True
        for word in text.split(" "):
            if not word:
                continue
            lead = "" if first and not text.startswith(" ") else " "
            first = False
            if word.endswith(","):
                out += self._ids(lead + word[:-1]) + self._ids(",")
            else:
                out += self._ids(lead + word)
        return tuple(out)

    def _prefix_safe(self, ids: Ids) -> bool:
        """Every token prefix re-encodes to itself (so a cut stays exact)."""
        enc, dec = self.tok.encode, self.tok.decode
        return all(enc(dec(list(ids[:k]))) == list(ids[:k]) for k in range(1, len(ids)))

    def _words(self, words: tuple[str, ...]) -> tuple[Ids, ...]:
        out = (self._ids(" " + w) for w in words)
        return tuple(ids for ids in out if self._prefix_safe(ids))

    def _pool(self, nouns, adjs, verbs):
        def entries(words):
            out = []
            for w in words:
                ids = self._ids(" " + w)
                if self._prefix_safe(ids):
                    out.append((ids, wb.starts_with_vowel_sound(w)))
            return tuple(out)

        pairs = [(self._ids(" " + wb.third_person(v)), self._ids(" " + v)) for v in verbs]
        pairs = [p for p in pairs if self._prefix_safe(p[0]) and self._prefix_safe(p[1])]
        return (entries(nouns), entries(adjs), tuple(p[0] for p in pairs), tuple(p[1] for p in pairs))

    def _compile(self, template: str) -> tuple:
        ops = []
        for code in template.split():
            if code in _CODES:
                ops.append((_CODES[code], None))
            elif code == ",":
                ops.append((_LIT, (self._ids(","),) * 3))
            else:
                ops.append((_LIT, self._forms(code)))
        return tuple(ops)

    def _topic_ids(self, word: str) -> Ids | None:
        cache = self._topic_cache
        if word in cache:
            return cache[word]
        ids: Ids | None = None
        if word.isascii() and word.isalpha():
            ids = tuple(self.tok.encode(" " + word))
            if not self._prefix_safe(ids):
                ids = None
        if len(cache) >= TOPIC_CACHE_MAX:
            cache.clear()
        cache[word] = ids
        return ids

    # ---------------------------------------------------------------- hot path
    def generate(
        self,
        rng: random.Random,
        max_tokens: int,
        target_tokens: int,
        topic_words: tuple[str, ...] = (),
    ) -> tuple[list[int], bool]:
        """Token ids of fake text and whether it ended naturally (at a ".").

        Ends at the first sentence boundary at or after ``target_tokens``, or
        the one before if that would pass ``max_tokens``; when no boundary
        fits, or ``target_tokens >= max_tokens``, fills exactly ``max_tokens``
        and returns ``natural_end=False``. Never empty; deterministic in
        ``rng``'s state.
        """
        rnd = rng.random
        max_tokens = max(max_tokens, 1)
        target = max(target_tokens, 1)
        fill = target >= max_tokens
        nouns, adjs, verbs, bases = self._pools[int(rnd() * len(self._pools))]
        nn, na, nv = len(nouns), len(adjs), len(verbs)
        tw: tuple[Ids, ...] = ()
        if topic_words:
            tw = tuple(t for t in map(self._topic_ids, topic_words) if t is not None)
        ntw = len(tw)
        dets, nd, a, an, the = self._dets, len(self._dets), self._a, self._an, self._the
        preps, subs, conns = self._preps, self._subs, self._conns
        advs, modals, evals = self._advs, self._modals, self._evals
        templates, nt = self._templates, len(self._templates)
        dot, para, dot_len = self.dot, self.para, self._dot_len

        ids: list[int] = []
        ext = ids.extend
        form = 1  # 0: " word", 1: "Word" (text/paragraph start), 2: " Word"
        prev = -1
        left = 3 + int(rnd() * 4)  # sentences left in this paragraph
        while True:
            for op, arg in templates[int(rnd() * nt)]:
                if op <= _PP:  # noun phrase, maybe after a preposition
                    if op == _PP:
                        ext(preps[int(rnd() * len(preps))][form])
                        form = 0
                    if ntw and rnd() < TOPIC_P:
                        ext(the[form])
                        ext(tw[int(rnd() * ntw)])
                    else:
                        noun, vowel = nouns[int(rnd() * nn)]
                        adj = None
                        if rnd() < ADJ_P:
                            adj, vowel = adjs[int(rnd() * na)]
                        det = dets[int(rnd() * nd)]
                        if det is None:
                            det = an if vowel else a
                        ext(det[form])
                        if adj is not None:
                            ext(adj)
                        ext(noun)
                elif op == _V:
                    ext(verbs[int(rnd() * nv)])
                elif op == _LIT:
                    ext(arg[form])
                elif op == _A:
                    ext(advs[int(rnd() * len(advs))])
                elif op == _B:
                    ext(bases[int(rnd() * nv)])
                elif op == _M:
                    ext(modals[int(rnd() * len(modals))])
                elif op == _C:
                    ext(conns[int(rnd() * len(conns))][form])
                elif op == _J:
                    ext(subs[int(rnd() * len(subs))][form])
                else:  # _E
                    ext(evals[int(rnd() * len(evals))])
                form = 0
            b = len(ids)  # end of the sentence's words
            left -= 1
            if left:
                ext(dot)
                form = 2
            else:
                ext(para)
                form = 1
                left = 3 + int(rnd() * 4)
            if fill:
                if len(ids) >= max_tokens:
                    del ids[max_tokens:]
                    return ids, False
                continue
            end = b + dot_len
            if end >= target:
                if end > max_tokens:
                    if prev < 0:  # not even one sentence fits: cut
                        del ids[max_tokens:]
                        return ids, False
                    b = prev
                del ids[b:]
                ext(dot)
                return ids, True
            prev = b

    def text(self, ids) -> str:
        """The text of ``ids`` (each token decodes on its own: ASCII only)."""
        tt = self.tok.token_text
        return "".join([tt(i) for i in ids])


@lru_cache(maxsize=None)
def get_text_generator(encoding: str) -> TextGenerator:
    """The shared generator for an encoding name (built once)."""
    return TextGenerator(get_tokenizer(encoding))
