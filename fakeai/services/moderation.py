"""Simulated content moderation: deterministic, phrase-driven category scores.

No model runs. ``data/moderation.toml`` lists plain harmful phrases per category;
a text that contains one (case-insensitively, on word boundaries, after
``normalize``) gets a high score in the rule's categories and their parents,
everything else scores low. Every score is a pure function of the model id, the
category and the input, drawn from a hash, so the same request always gets the
same answer. Image parts are never fetched or decoded: an http(s) image is
scored by the words of its URL path and query (``image_text``), so a file named
``i-will-kill-you.png`` is violent and ``cat.png`` is not; a data: URL is benign.
docs/moderation.md documents the rules.
"""

from __future__ import annotations

import hashlib
import math
import re
import tomllib
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any
from urllib.parse import unquote_plus, urlsplit

from ..registry import ModelDef

#: Every category of CreateModerationResponse, in the spec's order.
CATEGORIES: tuple[str, ...] = (
    "hate", "hate/threatening", "harassment", "harassment/threatening", "illicit", "illicit/violent",
    "self-harm", "self-harm/intent", "self-harm/instructions", "sexual", "sexual/minors",
    "violence", "violence/graphic",
)
#: Categories that omni-moderation also scores on images (the others are text-only).
IMAGE_CATEGORIES = frozenset({"self-harm", "self-harm/intent", "self-harm/instructions", "sexual",
                              "violence", "violence/graphic"})
#: Added with omni-moderation: the legacy text-moderation models do not score them.
OMNI_ONLY = frozenset({"illicit", "illicit/violent"})
#: Sub-category -> category: a sub-category's score never exceeds its parent's.
PARENTS = {c: c.split("/")[0] for c in CATEGORIES if "/" in c}

_LEET = str.maketrans("013457@$", "oieastas")
_TOKEN = re.compile(r"[\w@$']+")
_SEP = re.compile(r"[\W_]+")
_ITEM = re.compile(r"\(([^()]*)\)|[^\s()]+")


def normalize(text: str) -> str:
    """Lower-case words separated by single spaces: NFKC, case-folded, apostrophes dropped
    ("I'm" -> "im"), leetspeak undone inside words that hold a letter ("k1ll" -> "kill"),
    and every other run of punctuation, symbols, underscores or spaces made one space."""
    text = unicodedata.normalize("NFKC", text).casefold().replace("\u2019", "'").replace("\u2018", "'")
    words = []
    for tok in _TOKEN.findall(text):
        tok = tok.replace("'", "")
        if not tok.isalpha() and any(c.isalpha() for c in tok):
            tok = tok.translate(_LEET)
        if tok.isalnum():
            words.append(tok)
        else:                                   # "_", and "@" or "$" outside words
            words.extend(w for w in _SEP.split(tok) if w)
    return " ".join(words)


def compile_phrase(phrase: str) -> str:
    """Regex source of one catalogue phrase (see the syntax in moderation.toml).

    Words match literally; ``(a|b c)`` is a group of alternatives and an empty
    alternative makes the group optional. The result runs against ``normalize``-d
    text inside ``_bounded`` (word boundaries).
    """
    parts: list[tuple[str, bool]] = []  # (regex, optional)
    for m in _ITEM.finditer(phrase):
        if m.group(1) is None:
            words = normalize(m.group(0))
            if words:
                parts.append((re.escape(words), False))
            continue
        alts = [normalize(a) for a in m.group(1).split("|")]
        body = "|".join(re.escape(a) for a in dict.fromkeys(alts) if a)
        if not body:
            raise ValueError(f"phrase {phrase!r}: empty group")
        parts.append((f"(?:{body})", "" in alts))
    first = next((i for i, (_, optional) in enumerate(parts) if not optional), None)
    if first is None:
        raise ValueError(f"phrase {phrase!r}: needs at least one required word")
    out = ""
    for i, (regex, optional) in enumerate(parts):
        if i < first:                       # optional lead-in: its space follows it
            out += f"(?:{regex} )?"
        elif i == first:
            out += regex
        else:
            out += f"(?: {regex})?" if optional else f" {regex}"
    return out


def _bounded(sources: Sequence[str]) -> re.Pattern[str]:
    """One pattern matching any of ``sources`` on word boundaries (factored out: one
    lookbehind per position instead of one per phrase keeps long texts fast)."""
    return re.compile(rf"(?<!\w)(?:{'|'.join(sources)})(?!\w)")


@dataclass(frozen=True, slots=True)
class Rule:
    categories: frozenset[str]  # the listed categories and their parents
    pattern: re.Pattern[str]


@dataclass(frozen=True, slots=True)
class Catalogue:
    rules: tuple[Rule, ...]
    thresholds: dict[str, float]  # per category
    hit: tuple[float, float]
    related: tuple[float, float]
    benign: tuple[float, float]
    child_ratio: tuple[float, float]

    def matches(self, normalized: str) -> frozenset[str]:
        """The categories (parents included) the rules find in ``normalize``-d text."""
        found: set[str] = set()
        for rule in self.rules:
            if not rule.categories <= found and rule.pattern.search(normalized):
                found |= rule.categories
        return frozenset(found)


def _range(scoring: dict[str, Any], key: str) -> tuple[float, float]:
    lo, hi = scoring[key]
    if not 0 < lo <= hi <= 1:
        raise ValueError(f"moderation.toml: scoring.{key} must satisfy 0 < low <= high <= 1")
    return float(lo), float(hi)


def parse_catalogue(doc: dict[str, Any]) -> Catalogue:
    """Validate and compile a parsed catalogue document."""
    scoring = doc["scoring"]
    default = float(scoring["threshold"])
    thresholds = {c: default for c in CATEGORIES}
    for cat, value in doc.get("thresholds", {}).items():
        if cat not in thresholds:
            raise ValueError(f"moderation.toml: unknown category {cat!r} in [thresholds]")
        thresholds[cat] = float(value)
    rules = []
    for i, raw in enumerate(doc["rules"]):
        cats = set(raw["categories"])
        unknown = cats - set(CATEGORIES)
        if unknown or not cats:
            raise ValueError(f"moderation.toml: rules[{i}]: unknown or no categories {sorted(unknown)}")
        cats |= {PARENTS[c] for c in cats if c in PARENTS}
        if not raw["phrases"]:
            raise ValueError(f"moderation.toml: rules[{i}] has no phrases")
        pattern = _bounded([compile_phrase(p) for p in raw["phrases"]])
        rules.append(Rule(frozenset(cats), pattern))
    hit, related, benign = _range(scoring, "hit"), _range(scoring, "related"), _range(scoring, "benign")
    if not max(related[1], benign[1]) < min(thresholds.values()) <= max(thresholds.values()) < hit[0]:
        raise ValueError("moderation.toml: every threshold must lie between the unmatched and the hit scores")
    return Catalogue(tuple(rules), thresholds, hit, related, benign, _range(scoring, "child_ratio"))


@lru_cache(maxsize=1)
def load_catalogue() -> Catalogue:
    """The packaged catalogue, read and compiled once."""
    text = resources.files(__package__).joinpath("data/moderation.toml").read_text("utf-8")
    return parse_catalogue(tomllib.loads(text))


def image_text(url: str) -> str:
    """The words an image exposes without being fetched: an http(s) URL's path and query,
    URL-decoded ("/img/I%20will%20kill%20you.png" -> "img i will kill you png"); a data:
    URL exposes nothing (its payload is pixels, not words)."""
    if url.startswith("data:"):
        return ""
    parts = urlsplit(url)
    return normalize(unquote_plus(f"{parts.path} {parts.query}"))


def _unit(*key: str) -> float:
    """A uniform number in [0, 1) determined by ``key``."""
    digest = hashlib.blake2b("\x00".join(key).encode("utf-8", "surrogatepass"), digest_size=8).digest()
    return int.from_bytes(digest, "little") / 2.0**64


def _log_uniform(span: tuple[float, float], u: float) -> float:
    lo, hi = span
    return math.exp(math.log(lo) + u * (math.log(hi) - math.log(lo)))


def _scores(cat: Catalogue, hits: frozenset[str], categories: Sequence[str], *key: str) -> dict[str, float]:
    """Scores of ``categories`` (in CATEGORIES order, so parents come first) for one
    input whose matched categories are ``hits``. A sub-category never outscores its parent:
    a matched one lifts the parent above itself, an unmatched one is a fraction of it."""
    out: dict[str, float] = {}
    for c in categories:
        u, parent = _unit(*key, c), PARENTS.get(c)
        if c in hits:
            lo, hi = cat.hit
            s = lo + (hi - lo) * u
            if parent is not None and out[parent] <= s:
                out[parent] = s + (1 - s) * _unit(*key, parent, c) / 2
        elif parent in hits:
            s = _log_uniform(cat.related, u)
        elif parent is not None:
            s = out[parent] * _log_uniform(cat.child_ratio, u)
        else:
            s = _log_uniform(cat.benign, u)
        out[c] = s
    return out


def scored_categories(model: ModelDef) -> tuple[str, ...]:
    """The categories a moderation model scores: a model without image input is the
    legacy text-moderation generation, which predates the illicit categories."""
    return CATEGORIES if model.capabilities.vision else tuple(c for c in CATEGORIES if c not in OMNI_ONLY)


def moderate(model: ModelDef, texts: Sequence[str], images: Sequence[str]) -> dict[str, Any]:
    """One moderation result (the wire dict) for one input: its text parts (joined by
    newlines and read as one text) and the URLs of its image parts.

    A category is scored on the input types it applies to (text always; images only for
    IMAGE_CATEGORIES) and takes the highest of those scores; a category applied to
    nothing scores 0. Categories the model does not score are ``null``.
    """
    cat = load_catalogue()
    scored = scored_categories(model)
    applied = {c: [] for c in CATEGORIES}
    best = dict.fromkeys(CATEGORIES, 0.0)
    if texts:
        text = "\n".join(texts)
        for c, s in _scores(cat, cat.matches(normalize(text)), scored, model.id, "text", text).items():
            applied[c].append("text")
            best[c] = s
    image_cats = [c for c in scored if c in IMAGE_CATEGORIES]
    for url in images:
        hits = cat.matches(image_text(url))
        for c, s in _scores(cat, hits, image_cats, model.id, "image", url).items():
            best[c] = max(best[c], s)
    if images:
        for c in image_cats:
            applied[c].append("image")
    flags = {c: (best[c] > cat.thresholds[c] if c in scored else None) for c in CATEGORIES}
    return {"flagged": any(flags.values()), "categories": flags, "category_scores": best,
            "category_applied_input_types": applied}
