"""String generators for ``fakeai.engine.jsonschema_gen``.

* :func:`sample`: a string matching a regular expression (``pattern``);
* :data:`FORMATS`: generators for JSON Schema ``format`` values;
* :func:`by_name`: plausible values suggested by a property name
  (``city`` -> "Paris", ``email`` -> "grace.kim@example.com", ...).

Regex support: literals, escapes (``\\d \\w \\s \\D \\W \\S \\n \\t \\xHH
\\uHHHH``, escaped metacharacters), ``.``, character classes with ranges and
negation (``[a-z0-9_]``, ``[^,]``), groups ``(...)``, ``(?:...)``,
``(?<name>...)``/``(?P<name>...)``, alternation ``|``, quantifiers
``* + ? {n} {n,} {n,m}`` (lazy/possessive suffixes accepted), anchors ``^ $``
and back-references ``\\1``.  Lookarounds and ``\\b``/``\\B`` are parsed but
generate nothing, so results are always checked with :func:`re.search`
(JSON Schema patterns are unanchored).  Anything unparseable falls back to a
list of common candidate strings.
"""

from __future__ import annotations

import datetime as _dt
import random
import re
import string
import uuid
from functools import lru_cache
from typing import Any

from fakeai.engine import wordbank as wb

__all__ = ["FORMATS", "RegexUnsupported", "by_name", "parse", "sample", "words"]

_PRINTABLE = "".join(chr(c) for c in range(32, 127))
_LETTERS = string.ascii_lowercase
_CLASS = {  # escape -> candidate characters (biased towards readable output)
    "d": string.digits,
    "w": string.ascii_letters + string.digits + "_",
    "s": " ",
    "D": string.ascii_letters,
    "W": " -.,!",
    "S": string.ascii_lowercase + string.digits,
}
_CLASS_EXACT = {  # escape -> exact membership (for negated classes)
    "d": string.digits,
    "w": string.ascii_letters + string.digits + "_",
    "s": " \t\n\r\f\v",
}
_SIMPLE_ESC = {"n": "\n", "t": "\t", "r": "\r", "f": "\f", "v": "\v", "0": "\0"}
_FALLBACK = (
    "example", "hello world", "abc", "ABC", "abc123", "123", "42", "0", "a", "A1",
    "user@example.com", "https://example.com", "2024-05-14", "2024-05-14T09:30:00Z",
    "09:30", "550e8400-e29b-41d4-a716-446655440000", "192.168.0.1", "foo_bar", "foo-bar",
    "FooBar", "+1-555-0100", "en-US", "USD", "v1.2.3", "#ff8800", "",
)


class RegexUnsupported(ValueError):
    """The pattern uses syntax this generator does not understand."""


class _Parser:
    def __init__(self, pattern: str) -> None:
        self.p = pattern
        self.i = 0
        self.groups = 0

    def peek(self) -> str | None:
        return self.p[self.i] if self.i < len(self.p) else None

    def take(self) -> str:
        if self.i >= len(self.p):
            raise RegexUnsupported("unexpected end of pattern")
        c = self.p[self.i]
        self.i += 1
        return c

    def parse(self) -> tuple:
        node = self.alt()
        if self.i != len(self.p):
            raise RegexUnsupported(f"unexpected {self.p[self.i]!r} at {self.i}")
        return node

    def alt(self) -> tuple:
        branches = [self.seq()]
        while self.peek() == "|":
            self.i += 1
            branches.append(self.seq())
        return branches[0] if len(branches) == 1 else ("alt", branches)

    def seq(self) -> tuple:
        items = []
        while self.peek() not in (None, "|", ")"):
            atom = self.atom()
            items.append(self.quantified(atom))
        return ("seq", items)

    def quantified(self, atom: tuple) -> tuple:
        c = self.peek()
        if c in ("*", "+", "?"):
            self.i += 1
            lo, hi = {"*": (0, None), "+": (1, None), "?": (0, 1)}[c]
        elif c == "{":
            m = re.match(r"\{(\d+)(,(\d*))?\}", self.p[self.i:])
            if not m:
                return atom  # literal "{" handled by atom() next round
            self.i += m.end()
            lo = int(m.group(1))
            hi = lo if m.group(2) is None else (int(m.group(3)) if m.group(3) else None)
        else:
            return atom
        if self.peek() in ("?", "+"):  # lazy / possessive: same language
            self.i += 1
        return ("rep", atom, lo, hi)

    def atom(self) -> tuple:
        c = self.take()
        if c == "(":
            return self.group()
        if c == "[":
            return ("set", self.char_class())
        if c == ".":
            return ("set", _LETTERS + string.digits)
        if c in "^$":
            return ("empty",)
        if c == "\\":
            return self.escape(in_class=False)
        if c in "*+?":
            raise RegexUnsupported("nothing to repeat")
        return ("lit", c)

    def group(self) -> tuple:
        idx = None
        if self.p.startswith("?:", self.i):
            self.i += 2
        elif self.p.startswith(("?=", "?!"), self.i) or self.p.startswith(("?<=", "?<!"), self.i):
            self.i += 3 if self.p[self.i + 1] == "<" else 2
            self.alt()
            if self.take() != ")":
                raise RegexUnsupported("unbalanced lookaround")
            return ("empty",)
        elif self.p.startswith(("?<", "?P<"), self.i):
            self.i = self.p.index(">", self.i) + 1
            self.groups += 1
            idx = self.groups
        elif self.peek() == "?":
            raise RegexUnsupported("inline flags / extensions")
        else:
            self.groups += 1
            idx = self.groups
        inner = self.alt()
        if self.take() != ")":
            raise RegexUnsupported("unbalanced parenthesis")
        return ("group", idx, inner)

    def escape(self, in_class: bool) -> tuple:
        c = self.take()
        if c in _CLASS:
            return ("set", _CLASS[c], c)
        if c in _SIMPLE_ESC:
            return ("lit", _SIMPLE_ESC[c])
        if c in "xu":
            n = 2 if c == "x" else 4
            code = self.p[self.i:self.i + n]
            if len(code) != n or not all(h in string.hexdigits for h in code):
                raise RegexUnsupported(f"bad \\{c} escape")
            self.i += n
            return ("lit", chr(int(code, 16)))
        if c == "b" and in_class:
            return ("lit", "\b")
        if c in "bBAZ":
            return ("empty",)
        if c.isdigit():
            num = c
            while (self.peek() or "").isdigit():
                num += self.take()
            return ("ref", int(num))
        if c.isalnum():
            raise RegexUnsupported(f"unsupported escape \\{c}")
        return ("lit", c)

    def char_class(self) -> str:
        negate = self.peek() == "^"
        if negate:
            self.i += 1
        members: list[str] = []
        first = True
        while True:
            c = self.take()
            if c == "]" and not first:
                break
            first = False
            if c == "\\":
                node = self.escape(in_class=True)
                if node[0] == "set":
                    members.append(_CLASS_EXACT.get(node[2], "") if negate else node[1])
                    if negate and node[2] in "DWS":
                        raise RegexUnsupported("negated class escape inside negated class")
                    continue
                if node[0] != "lit":
                    raise RegexUnsupported("unsupported escape in class")
                c = node[1]
            if self.peek() == "-" and self.p[self.i + 1:self.i + 2] not in ("]", ""):
                self.i += 1
                hi = self.take()
                if hi == "\\":
                    node = self.escape(in_class=True)
                    if node[0] != "lit":
                        raise RegexUnsupported("bad class range")
                    hi = node[1]
                if ord(hi) < ord(c):
                    raise RegexUnsupported("bad class range")
                members.append("".join(chr(x) for x in range(ord(c), min(ord(hi), ord(c) + 2000) + 1)))
            else:
                members.append(c)
        chars = "".join(members)
        if negate:
            pool = "".join(ch for ch in _PRINTABLE if ch not in chars)
            if not pool:
                pool = "".join(chr(x) for x in range(161, 256) if chr(x) not in chars)
            chars = pool
        if not chars:
            raise RegexUnsupported("empty character class")
        return "".join(dict.fromkeys(chars))


@lru_cache(maxsize=512)
def parse(pattern: str) -> tuple:
    """Parse ``pattern`` into a small tuple tree; raises :class:`RegexUnsupported`."""
    return _Parser(pattern).parse()


def _emit(node: tuple, rng: random.Random, out: list[str], groups: dict, extra: int) -> None:
    kind = node[0]
    if kind == "lit":
        out.append(node[1])
    elif kind == "set":
        out.append(rng.choice(node[1]))
    elif kind == "seq":
        for child in node[1]:
            _emit(child, rng, out, groups, extra)
    elif kind == "alt":
        _emit(rng.choice(node[1]), rng, out, groups, extra)
    elif kind == "rep":
        _, child, lo, hi = node
        top = lo + extra if hi is None else min(hi, lo + max(extra, 8))
        for _ in range(rng.randint(lo, max(lo, top))):
            _emit(child, rng, out, groups, extra)
    elif kind == "group":
        start = len(out)
        _emit(node[2], rng, out, groups, extra)
        if node[1] is not None:
            groups[node[1]] = "".join(out[start:])
    elif kind == "ref":
        out.append(groups.get(node[1], ""))
    # "empty": anchors, lookarounds, word boundaries generate nothing


def sample(
    pattern: str,
    rng: random.Random,
    min_len: int = 0,
    max_len: int | None = None,
    tries: int = 40,
) -> str | None:
    """A string ``s`` with ``re.search(pattern, s)`` and ``min_len <= len(s) <= max_len``.

    Deterministic for the rng state; returns None when nothing was found.
    """
    try:
        compiled = re.compile(pattern)
    except (re.error, TypeError):
        return None
    hi = float("inf") if max_len is None else max_len

    def ok(s: str) -> bool:
        return min_len <= len(s) <= hi and compiled.search(s) is not None

    try:
        tree = parse(pattern)
    except (RegexUnsupported, ValueError, IndexError):
        tree = None
    if tree is not None:
        for attempt in range(tries):
            extra = 3 if attempt < tries // 2 else 3 + attempt + min_len
            out: list[str] = []
            _emit(tree, rng, out, {}, extra)
            s = "".join(out)
            if ok(s):
                return s
            if len(s) < min_len and not pattern.endswith("$"):
                padded = s + "".join(rng.choice(_LETTERS) for _ in range(min_len - len(s)))
                if ok(padded):
                    return padded
    words = [w for w in _FALLBACK if ok(w)]
    if words:
        return rng.choice(words)
    for _ in range(tries):
        s = "".join(rng.choice(_LETTERS) for _ in range(max(min_len, rng.randint(1, 8))))
        if ok(s):
            return s
    return None


# ------------------------------------------------------------------- formats
FIRST_NAMES = ("Alice", "Bob", "Carla", "David", "Elena", "Farid", "Grace", "Hiro", "Ines", "James", "Kofi", "Lena",
               "Maya", "Noah", "Olga", "Priya", "Samuel", "Yuki")
LAST_NAMES = ("Smith", "Garcia", "Chen", "Tanaka", "Johnson", "Rossi", "Kim", "Nguyen", "Okafor", "Silva", "Novak",
              "Patel", "Brown", "Schmidt")


def _when(rng: random.Random) -> _dt.datetime:
    return _dt.datetime(2024, 1, 1) + _dt.timedelta(days=rng.randrange(730), minutes=15 * rng.randrange(96))


def _email(rng: random.Random) -> str:
    return f"{rng.choice(FIRST_NAMES)}.{rng.choice(LAST_NAMES)}@example.com".lower()


def _uri(rng: random.Random) -> str:
    return f"https://www.example.com/{rng.choice(wb.NOUNS)}/{rng.randint(1, 999)}"


FORMATS = {  # JSON Schema format -> generator of a conforming string
    "date-time": lambda r: _when(r).strftime("%Y-%m-%dT%H:%M:%SZ"),
    "date": lambda r: _when(r).strftime("%Y-%m-%d"),
    "time": lambda r: _when(r).strftime("%H:%M:%SZ"),
    "duration": lambda r: r.choice(("P1D", "PT15M", "PT1H30M", "P2W", "P1Y2M", "PT45S")),
    "email": _email, "idn-email": _email, "uri": _uri, "url": _uri, "iri": _uri,
    "uri-reference": lambda r: f"/{r.choice(wb.NOUNS)}/{r.randint(1, 999)}",
    "iri-reference": lambda r: f"/{r.choice(wb.NOUNS)}/{r.randint(1, 999)}",
    "uri-template": lambda r: f"https://api.example.com/{r.choice(wb.NOUNS)}/{{id}}",
    "uuid": lambda r: str(uuid.UUID(int=r.getrandbits(128), version=4)),
    "ipv4": lambda r: f"{r.choice((10, 172, 192))}.{r.randint(0, 255)}.{r.randint(0, 255)}.{r.randint(1, 254)}",
    "ipv6": lambda r: "2001:db8:" + ":".join(f"{r.getrandbits(16):x}" for _ in range(6)),
    "hostname": lambda r: f"{r.choice(('api', 'www', 'mail', 'app'))}.{r.choice(wb.NOUNS)}.com",
    "idn-hostname": lambda r: f"{r.choice(wb.NOUNS)}.example.com",
    "json-pointer": lambda r: f"/{r.choice(wb.NOUNS)}/{r.randint(0, 9)}",
    "relative-json-pointer": lambda r: f"{r.randint(0, 2)}/{r.choice(wb.NOUNS)}",
    "regex": lambda r: r.choice(("^[a-z]+$", "\\d{3}", "[A-Z][a-z]*")),
}


# -------------------------------------------------- plausible values by name
_PLACES = (("Paris", "France", "FR", "Europe/Paris"), ("London", "United Kingdom", "GB", "Europe/London"),
           ("Tokyo", "Japan", "JP", "Asia/Tokyo"), ("Berlin", "Germany", "DE", "Europe/Berlin"),
           ("New York", "United States", "US", "America/New_York"), ("Toronto", "Canada", "CA", "America/Toronto"),
           ("Sydney", "Australia", "AU", "Australia/Sydney"), ("Madrid", "Spain", "ES", "Europe/Madrid"),
           ("Rome", "Italy", "IT", "Europe/Rome"), ("Amsterdam", "Netherlands", "NL", "Europe/Amsterdam"),
           ("Seoul", "South Korea", "KR", "Asia/Seoul"), ("Mumbai", "India", "IN", "Asia/Kolkata"),
           ("Lisbon", "Portugal", "PT", "Europe/Lisbon"), ("Nairobi", "Kenya", "KE", "Africa/Nairobi"),
           ("Mexico City", "Mexico", "MX", "America/Mexico_City"),
           ("San Francisco", "United States", "US", "America/Los_Angeles"))
_COMPANIES = ("Acme Corp", "Globex", "Initech", "Northwind Traders", "Contoso", "Umbrella Labs", "Hooli")


def words(rng: random.Random, n: int) -> str:
    """n words: adjectives or nouns, ending with a noun."""
    return " ".join(rng.choice(wb.NOUNS if i == n - 1 or rng.random() < 0.5 else wb.ADJECTIVES) for i in range(n))


def _sentence(rng: random.Random) -> str:
    c = rng.choice
    s = (f"{c(wb.DETERMINERS)} {c(wb.ADJECTIVES)} {c(wb.NOUNS)} {c(wb.MODALS)} {c(wb.VERBS)} "
         f"the {c(wb.NOUNS)} {c(wb.PREPOSITIONS)} the {c(wb.NOUNS)}.")
    return s[0].upper() + s[1:]


def _pick(*values: str):
    return lambda r: r.choice(values)


def _place(i: int):
    return lambda r: r.choice(_PLACES)[i]


# (name tokens, generator): the first rule with a key among the property name's tokens wins
_NAME_RULES: tuple[tuple[tuple[str, ...], Any], ...] = (
    (("email", "mail"), FORMATS["email"]),
    (("url", "uri", "link", "website", "homepage", "href"), FORMATS["uri"]),
    (("timezone", "tz"), _place(3)),
    (("country_code",), _place(2)),
    (("city", "cities", "town"), _place(0)),
    (("country", "countries", "nation"), _place(1)),
    (("location", "place", "destination", "origin"), lambda r: ", ".join(r.choice(_PLACES)[:2])),
    (("address", "street"), lambda r: f"{r.randint(1, 250)} {r.choice(wb.NOUNS).title()} Street"),
    (("zip", "postal", "postcode"), lambda r: f"{r.randint(10000, 99999)}"),
    (("phone", "mobile", "tel"), lambda r: f"+1-555-{r.randint(100, 999):04d}"),
    (("first_name", "firstname", "given_name"), lambda r: r.choice(FIRST_NAMES)),
    (("last_name", "lastname", "surname", "family_name"), lambda r: r.choice(LAST_NAMES)),
    (("username", "user", "login", "handle"), lambda r: f"{r.choice(FIRST_NAMES).lower()}{r.randint(1, 99)}"),
    (("company", "organization", "organisation", "employer", "brand"), _pick(*_COMPANIES)),
    (("name", "author", "person", "customer", "owner", "assignee", "contact"),
     lambda r: f"{r.choice(FIRST_NAMES)} {r.choice(LAST_NAMES)}"),
    (("unit", "units"), _pick("celsius", "fahrenheit")),
    (("currency",), _pick("USD", "EUR", "GBP", "JPY")),
    (("language", "lang"), _pick("English", "French", "Spanish", "German", "Japanese")),
    (("locale",), _pick("en-US", "fr-FR", "de-DE", "ja-JP")),
    (("color", "colour"), _pick("red", "blue", "green", "black", "white", "orange")),
    (("datetime", "timestamp", "at", "created", "updated", "deadline"), FORMATS["date-time"]),
    (("date", "day", "birthday", "dob"), FORMATS["date"]),
    (("time",), lambda r: FORMATS["time"](r)[:5]),
    (("uuid", "guid"), FORMATS["uuid"]),
    (("id", "identifier"), lambda r: f"{r.choice(wb.NOUNS)[:3]}_{r.getrandbits(32):08x}"),
    (("query", "search", "q", "keyword", "keywords", "prompt", "term"), lambda r: words(r, r.randint(2, 4))),
    (("description", "summary", "text", "content", "message", "body", "comment", "reason", "explanation",
      "note", "notes", "details", "answer", "response", "instructions", "bio"), _sentence),
    (("title", "subject", "topic", "headline", "label"), lambda r: words(r, r.randint(2, 4)).title()),
    (("status", "state"), _pick("active", "pending", "completed", "cancelled")),
    (("category", "type", "kind", "tag", "tags", "genre"), lambda r: r.choice(wb.NOUNS)),
)
_NUMBER_NAMES = (  # name token -> nice default range
    (("latitude", "lat"), (-90, 90)), (("longitude", "lon", "lng"), (-180, 180)),
    (("year",), (1990, 2025)), (("age",), (18, 80)), (("rating", "stars"), (1, 5)),
    (("price", "amount", "cost", "total", "salary"), (5, 500)),
    (("percent", "percentage", "score"), (0, 100)), (("count", "quantity", "qty", "limit", "num", "n"), (1, 10)),
)


@lru_cache(maxsize=4096)
def by_name(name: str | None, numeric: bool = False) -> Any:
    """String generator (or, with ``numeric``, a nice (lo, hi) range) suggested by a property name."""
    if not name:
        return None
    toks = "_" + "_".join(re.findall(r"[a-z0-9]+", re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name).lower())) + "_"
    for keys, value in _NUMBER_NAMES if numeric else _NAME_RULES:
        if any(f"_{k}_" in toks for k in keys):
            return value
    return None
