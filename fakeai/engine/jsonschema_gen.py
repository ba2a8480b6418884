"""Deterministic JSON-Schema instance generator and OpenAI strict-mode checker.

``generate(schema, rng)`` returns an instance that validates against ``schema``
(jsonschema, Draft 2020-12 unless ``$schema`` says otherwise, formats asserted
where jsonschema has a checker), with plausible content: property names such as
``city``/``email``/``date`` get realistic strings and ``hints`` injects values
taken from the conversation.  Every result is validated; failed attempts are
retried with fresh sub-rngs and, as a last resort, ``SchemaError`` is raised.

``check_schema(schema, strict=...)`` rejects invalid schemas and, in strict
mode, schemas OpenAI's Structured Outputs would refuse.  Strict mode rejects:
a root that is not ``type: "object"``; objects without
``additionalProperties: false`` or whose ``required`` misses a property;
subschemas with none of ``type``/``$ref``/``anyOf``/``enum``/``const``; and
the keywords in ``STRICT_UNSUPPORTED``.  Size limits (nesting depth, property
and enum counts) are not checked.
"""

from __future__ import annotations

import copy
import datetime as _dt
import json
import math
import random
import re
import threading
import uuid
from collections import OrderedDict
from fractions import Fraction
from functools import lru_cache
from typing import Any

import orjson
from jsonschema import Draft202012Validator, exceptions as _jexc
from jsonschema.validators import validator_for

from fakeai.engine import regexgen
from fakeai.engine import wordbank as wb

__all__ = ["STRICT_UNSUPPORTED", "SchemaError", "check_schema", "generate"]

STRICT_UNSUPPORTED = (
    "allOf", "not", "if", "then", "else", "dependentRequired", "dependentSchemas",
    "patternProperties", "unevaluatedProperties", "propertyNames", "minProperties",
    "maxProperties", "unevaluatedItems", "contains", "minContains", "maxContains", "uniqueItems",
)
MAX_ATTEMPTS = 20
CACHE_SIZE = 256
OPTIONAL_P = 0.6
NODE_BUDGET = 20000


class SchemaError(ValueError):
    """Invalid or unsupported schema; ``path`` is a JSON pointer into the schema."""

    def __init__(self, message: str, path: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.path = path


class _Fail(Exception):
    """One generation attempt failed (retry with another rng)."""


# ----------------------------------------------------------------- validators
_CACHE: OrderedDict[bytes, Any] = OrderedDict()
_LOCK = threading.Lock()


def _key(schema: Any) -> bytes:
    try:
        return orjson.dumps(schema, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS)
    except TypeError:
        return json.dumps(schema, sort_keys=True, default=repr).encode()


def _validator(schema: Any) -> Any:
    """Cached format-asserting validator; raises SchemaError for invalid schemas."""
    key = _key(schema)
    with _LOCK:
        v = _CACHE.get(key)
        if v is not None:
            _CACHE.move_to_end(key)
            return v
    check_schema(schema)
    cls = validator_for(schema, default=Draft202012Validator)
    v = cls(schema, format_checker=cls.FORMAT_CHECKER)
    with _LOCK:
        _CACHE[key] = v
        while len(_CACHE) > CACHE_SIZE:
            _CACHE.popitem(last=False)
    return v


# --------------------------------------------------------------- check_schema
def _ctx_str(path: tuple) -> str:
    return repr(tuple(str(p) for p in path))


def _pointer(path: tuple) -> str:
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in path)


def check_schema(schema: Any, strict: bool = False, name: str | None = None,
                 kind: str = "response_format") -> None:
    """Raise SchemaError if ``schema`` is invalid (or not strict-mode compatible).

    ``kind``/``name`` build OpenAI-style messages: "Invalid schema for
    response_format 'X': In context=(...), ..." (use kind="function" for tools).
    """
    prefix = f"Invalid schema for {kind} '{name}': " if name else "Invalid schema: "

    def fail(path: tuple, msg: str) -> SchemaError:
        return SchemaError(f"{prefix}In context={_ctx_str(path)}, {msg}", _pointer(path))

    if not isinstance(schema, (dict, bool)):
        raise SchemaError(f"{prefix}schema must be a JSON object or boolean, got {type(schema).__name__}.")
    cls = validator_for(schema, default=Draft202012Validator) if isinstance(schema, dict) else Draft202012Validator
    try:
        cls.check_schema(schema)
    except _jexc.SchemaError as exc:
        path = tuple(exc.absolute_path)
        raise fail(path[:-1], exc.message + ".") from None
    _check_refs(schema, schema, (), fail)
    if not strict:
        return
    if not isinstance(schema, dict) or schema.get("type") != "object" or "anyOf" in schema:
        got = schema.get("type") if isinstance(schema, dict) else None
        raise SchemaError(f"{prefix}schema must be a JSON Schema of 'type: \"object\"', got 'type: \"{got}\"'.")
    _check_strict(schema, (), fail)


def _walk(schema: Any, path: tuple):
    """Yield (subschema, path) for every subschema dict (pre-order)."""
    if not isinstance(schema, dict):
        return
    yield schema, path
    for k, v in schema.items():
        if k in ("properties", "patternProperties", "$defs", "definitions", "dependentSchemas") and isinstance(v, dict):
            for name, sub in v.items():
                yield from _walk(sub, (*path, k, name))
        elif k in ("items", "prefixItems", "anyOf", "oneOf", "allOf") and isinstance(v, list):
            for i, sub in enumerate(v):
                yield from _walk(sub, (*path, k, i))
        elif k in ("items", "additionalProperties", "additionalItems", "contains", "not", "if", "then",
                   "else", "propertyNames", "unevaluatedItems", "unevaluatedProperties") and isinstance(v, dict):
            yield from _walk(v, (*path, k))


def _check_refs(root: Any, schema: Any, path: tuple, fail) -> None:
    for sub, p in _walk(schema, path):
        ref = sub.get("$ref")
        if isinstance(ref, str):
            try:
                _resolve(root, ref)
            except _Fail as exc:
                raise fail(p, str(exc)) from None


def _check_strict(root: dict, path: tuple, fail) -> None:
    for sub, p in _walk(root, path):
        for kw in STRICT_UNSUPPORTED:
            if kw in sub:
                raise fail(p, f"'{kw}' is not permitted.")
        if not any(k in sub for k in ("type", "$ref", "anyOf", "enum", "const")):
            raise fail(p, "schema must have a 'type' key.")
        types = sub.get("type")
        if types == "object" or (isinstance(types, list) and "object" in types) or "properties" in sub:
            if sub.get("additionalProperties", True) is not False:
                raise fail(p, "'additionalProperties' is required to be supplied and to be false.")
            props = list(sub.get("properties", {}))
            missing = [k for k in props if k not in sub.get("required", [])]
            if missing or "required" not in sub:
                what = f" Missing '{missing[0]}'." if missing else ""
                raise fail(p, "'required' is required to be supplied and to be an array including every "
                              f"key in properties.{what}")


def _resolve(root: Any, ref: str) -> Any:
    if ref in ("#", "") or (isinstance(root, dict) and ref == root.get("$id")):
        return root
    if isinstance(root, dict) and isinstance(root.get("$id"), str) and ref.startswith(root["$id"] + "#"):
        ref = ref[len(root["$id"]):]
    if ref.startswith("#/"):
        node = root
        for part in ref[2:].split("/"):
            part = part.replace("%25", "%").replace("~1", "/").replace("~0", "~")
            try:
                node = node[int(part)] if isinstance(node, list) else node[part]
            except (KeyError, IndexError, ValueError, TypeError):
                raise _Fail(f"unresolvable reference {ref!r}.") from None
        return node
    if ref.startswith("#"):
        for sub, _ in _walk(root, ()):
            if sub.get("$anchor") == ref[1:]:
                return sub
    raise _Fail(f"unsupported or unresolvable reference {ref!r} (only local references are supported).")


# ------------------------------------------------------------- plausible text
_PLACES = (("Paris", "France", "FR", "Europe/Paris"), ("London", "United Kingdom", "GB", "Europe/London"),
           ("Tokyo", "Japan", "JP", "Asia/Tokyo"), ("Berlin", "Germany", "DE", "Europe/Berlin"),
           ("New York", "United States", "US", "America/New_York"), ("Toronto", "Canada", "CA", "America/Toronto"),
           ("Sydney", "Australia", "AU", "Australia/Sydney"), ("Madrid", "Spain", "ES", "Europe/Madrid"),
           ("Rome", "Italy", "IT", "Europe/Rome"), ("Amsterdam", "Netherlands", "NL", "Europe/Amsterdam"),
           ("Seoul", "South Korea", "KR", "Asia/Seoul"), ("Mumbai", "India", "IN", "Asia/Kolkata"),
           ("Mexico City", "Mexico", "MX", "America/Mexico_City"), ("Lisbon", "Portugal", "PT", "Europe/Lisbon"),
           ("Nairobi", "Kenya", "KE", "Africa/Nairobi"), ("San Francisco", "United States", "US", "America/Los_Angeles"))
_FIRST = ("Alice", "Bob", "Carla", "David", "Elena", "Farid", "Grace", "Hiro", "Ines", "James", "Kofi", "Lena",
          "Maya", "Noah", "Olga", "Priya", "Samuel", "Yuki")
_LAST = ("Smith", "Garcia", "Chen", "Tanaka", "Johnson", "Rossi", "Kim", "Nguyen", "Okafor", "Silva", "Novak",
         "Patel", "Brown", "Schmidt")
_COMPANIES = ("Acme Corp", "Globex", "Initech", "Northwind Traders", "Contoso", "Umbrella Labs", "Hooli")


def _words(rng: random.Random, n: int) -> str:
    pools = (wb.ADJECTIVES, wb.NOUNS)
    return " ".join(rng.choice(pools[i == n - 1 or rng.random() < 0.5]) for i in range(n))


def _sentence(rng: random.Random) -> str:
    s = (f"{rng.choice(wb.DETERMINERS)} {rng.choice(wb.ADJECTIVES)} {rng.choice(wb.NOUNS)} "
         f"{rng.choice(wb.MODALS)} {rng.choice(wb.VERBS)} the {rng.choice(wb.NOUNS)} "
         f"{rng.choice(wb.PREPOSITIONS)} the {rng.choice(wb.NOUNS)}.")
    return s[0].upper() + s[1:]


def _place(rng: random.Random, i: int) -> str:
    return rng.choice(_PLACES)[i]


def _datetime(rng: random.Random) -> _dt.datetime:
    return _dt.datetime(2024, 1, 1) + _dt.timedelta(days=rng.randrange(730), minutes=15 * rng.randrange(96))


def _person(rng: random.Random) -> tuple[str, str]:
    return rng.choice(_FIRST), rng.choice(_LAST)


def _email(rng: random.Random) -> str:
    first, last = _person(rng)
    return f"{first}.{last}@example.com".lower()


_FORMATS = {
    "date-time": lambda r: _datetime(r).strftime("%Y-%m-%dT%H:%M:%SZ"),
    "date": lambda r: _datetime(r).strftime("%Y-%m-%d"),
    "time": lambda r: _datetime(r).strftime("%H:%M:%SZ"),
    "duration": lambda r: r.choice(("P1D", "PT15M", "PT1H30M", "P2W", "P1Y2M", "PT45S")),
    "email": _email, "idn-email": _email,
    "uri": lambda r: f"https://www.example.com/{r.choice(wb.NOUNS)}s/{r.randint(1, 999)}",
    "uri-reference": lambda r: f"/{r.choice(wb.NOUNS)}s/{r.randint(1, 999)}",
    "iri": lambda r: f"https://example.org/{r.choice(wb.NOUNS)}",
    "iri-reference": lambda r: f"/{r.choice(wb.NOUNS)}",
    "uri-template": lambda r: f"https://api.example.com/{r.choice(wb.NOUNS)}s/{{id}}",
    "uuid": lambda r: str(uuid.UUID(int=r.getrandbits(128), version=4)),
    "ipv4": lambda r: f"{r.choice((10, 172, 192))}.{r.randint(0, 255)}.{r.randint(0, 255)}.{r.randint(1, 254)}",
    "ipv6": lambda r: "2001:db8:" + ":".join(f"{r.getrandbits(16):x}" for _ in range(6)),
    "hostname": lambda r: f"{r.choice(('api', 'www', 'mail', 'app'))}.{r.choice(wb.NOUNS)}.com",
    "idn-hostname": lambda r: f"{r.choice(wb.NOUNS)}.example.com",
    "json-pointer": lambda r: f"/{r.choice(wb.NOUNS)}/{r.randint(0, 9)}",
    "relative-json-pointer": lambda r: f"{r.randint(0, 2)}/{r.choice(wb.NOUNS)}",
    "regex": lambda r: r.choice(("^[a-z]+$", "\\d{3}", "[A-Z][a-z]*")),
}
_FORMATS["url"] = _FORMATS["uri"]

# (name tokens, generator); the first rule whose tokens occur in the property name wins
_NAME_RULES: tuple[tuple[tuple[str, ...], Any], ...] = (
    (("email", "mail"), _email),
    (("url", "uri", "link", "website", "homepage", "href"), _FORMATS["uri"]),
    (("timezone", "tz"), lambda r: _place(r, 3)),
    (("country_code",), lambda r: _place(r, 2)),
    (("city", "cities", "town"), lambda r: _place(r, 0)),
    (("country", "countries", "nation"), lambda r: _place(r, 1)),
    (("location", "place", "destination", "origin"), lambda r: ", ".join(r.choice(_PLACES)[:2])),
    (("address", "street"), lambda r: f"{r.randint(1, 250)} {r.choice(wb.NOUNS).title()} Street"),
    (("zip", "postal", "postcode"), lambda r: f"{r.randint(10000, 99999)}"),
    (("phone", "mobile", "tel"), lambda r: f"+1-555-{r.randint(100, 999):04d}"),
    (("first_name", "firstname", "given_name"), lambda r: _person(r)[0]),
    (("last_name", "lastname", "surname", "family_name"), lambda r: _person(r)[1]),
    (("username", "user", "login", "handle"), lambda r: f"{_person(r)[0].lower()}{r.randint(1, 99)}"),
    (("company", "organization", "organisation", "employer", "brand"), lambda r: r.choice(_COMPANIES)),
    (("name", "author", "person", "customer", "owner", "assignee", "contact"), lambda r: " ".join(_person(r))),
    (("unit", "units"), lambda r: r.choice(("celsius", "fahrenheit"))),
    (("currency",), lambda r: r.choice(("USD", "EUR", "GBP", "JPY"))),
    (("language", "lang"), lambda r: r.choice(("English", "French", "Spanish", "German", "Japanese"))),
    (("locale",), lambda r: r.choice(("en-US", "fr-FR", "de-DE", "ja-JP"))),
    (("color", "colour"), lambda r: r.choice(("red", "blue", "green", "black", "white", "orange"))),
    (("datetime", "timestamp", "at", "created", "updated", "deadline"), _FORMATS["date-time"]),
    (("date", "day", "birthday", "dob"), _FORMATS["date"]),
    (("time",), lambda r: _datetime(r).strftime("%H:%M")),
    (("uuid", "guid"), _FORMATS["uuid"]),
    (("id", "identifier"), lambda r: f"{r.choice(wb.NOUNS)[:3]}_{r.getrandbits(32):08x}"),
    (("query", "search", "q", "keyword", "keywords", "prompt", "term"), lambda r: _words(r, r.randint(2, 4))),
    (("description", "summary", "text", "content", "message", "body", "comment", "reason", "explanation",
      "note", "notes", "details", "answer", "response", "instructions", "bio"), _sentence),
    (("title", "subject", "topic", "headline", "label"), lambda r: _words(r, r.randint(2, 4)).title()),
    (("status", "state"), lambda r: r.choice(("active", "pending", "completed", "cancelled"))),
    (("category", "type", "kind", "tag", "tags", "genre"), lambda r: r.choice(wb.NOUNS)),
)
_NUMBER_NAMES = (  # name token -> nice default range
    (("latitude", "lat"), (-90, 90)), (("longitude", "lon", "lng"), (-180, 180)),
    (("year",), (1990, 2025)), (("age",), (18, 80)), (("rating", "stars"), (1, 5)),
    (("price", "amount", "cost", "total", "salary"), (5, 500)),
    (("percent", "percentage", "score"), (0, 100)), (("count", "quantity", "qty", "limit", "num", "n"), (1, 10)),
)


@lru_cache(maxsize=4096)
def _match(table: str, name: str | None) -> Any:
    """First rule of ``_NAME_RULES``/``_NUMBER_NAMES`` whose key occurs (by tokens) in ``name``."""
    if not name:
        return None
    toks = "_" + "_".join(re.findall(r"[a-z0-9]+", re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name).lower())) + "_"
    for keys, value in _TABLES[table]:
        if any(f"_{k}_" in toks for k in keys):
            return value
    return None


_TABLES = {"str": _NAME_RULES, "num": _NUMBER_NAMES}


# ------------------------------------------------------------------ generator
_OBJ_KW = ("properties", "required", "additionalProperties", "patternProperties", "minProperties",
           "maxProperties", "dependentRequired", "propertyNames")
_ARR_KW = ("items", "prefixItems", "minItems", "maxItems", "contains", "uniqueItems")
_STR_KW = ("minLength", "maxLength", "pattern", "format")
_NUM_KW = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf")
_META = frozenset(("description", "title", "default", "examples", "$comment", "$id", "$schema", "$anchor",
                   "$defs", "definitions", "deprecated", "readOnly", "writeOnly"))
_ANY_TYPES = ("string", "string", "integer", "number", "boolean")
_ALL_TYPES = ("string", "integer", "number", "boolean", "null", "array", "object")
_MINS = ("minimum", "exclusiveMinimum", "minLength", "minItems", "minProperties", "minContains")
_MAXS = ("maximum", "exclusiveMaximum", "maxLength", "maxItems", "maxProperties", "maxContains")


def _tl(t: Any) -> list:
    return [t] if isinstance(t, str) else list(t)


def _merge(a: Any, b: Any) -> Any:
    """Best-effort intersection of two (ref-free at top level) schemas."""
    if a is True or b is False:
        return b
    if b is True or a is False:
        return a
    out = dict(a)
    for k, v in b.items():
        if k not in out or out[k] == v:
            out[k] = v
            continue
        w = out[k]
        if k == "type":
            tb = _tl(v)
            out[k] = list(dict.fromkeys(
                t if t in tb else "integer" for t in _tl(w)
                if t in tb or (t == "number" and "integer" in tb) or (t == "integer" and "number" in tb)))
            if not out[k]:
                raise _Fail("allOf: no common type")
        elif k == "properties":
            out[k] = {**w, **{n: ({"allOf": [w[n], s]} if n in w else s) for n, s in v.items()}}
        elif k == "required":
            out[k] = list(dict.fromkeys([*w, *v]))
        elif k in _MINS:
            out[k] = max(w, v)
        elif k in _MAXS:
            out[k] = min(w, v)
        elif k == "enum":
            out[k] = [x for x in w if x in v]
        elif k in ("items", "additionalProperties", "contains", "propertyNames", "additionalItems"):
            out[k] = {"allOf": [w, v]}
        elif k == "not":
            out[k] = {"anyOf": [w, v]}
        elif k == "dependentRequired":
            out[k] = {**w, **{n: list(dict.fromkeys([*w.get(n, []), *d])) for n, d in v.items()}}
        # anything else: keep the first value (the final validation arbitrates)
    return out


def _mult_ok(x: float, m: float) -> bool:
    if isinstance(m, float):
        q = x / m
        return math.isfinite(q) and int(q) == q
    return x % m == 0


def _nice_window(a: Any, b: Any, default: tuple[int, int]) -> tuple[Any, Any]:
    """A "nice" sub-range of [a, b] (either may be None) near ``default``."""
    lo, hi = default
    if a is None and b is None:
        return lo, hi
    if a is None:
        return (lo, min(hi, b)) if b >= lo else (b - (hi - lo), b)
    if b is None:
        return (max(a, lo), hi) if a < hi else (a, a + (hi - lo))
    if max(a, lo) < min(b, hi):
        return max(a, lo), min(b, hi)
    return a, b


class _Gen:
    def __init__(self, root: Any, validator: Any, hints: dict | None, max_depth: int) -> None:
        self.root, self.validator, self.max_depth = root, validator, max_depth
        self.hints = sorted(((str(k).lower(), v) for k, v in (hints or {}).items()), key=lambda kv: -len(kv[0]))
        self.hard_limit = max_depth + 40
        self.rng: random.Random = None  # type: ignore[assignment]
        self.minimal = False
        self.budget = NODE_BUDGET
        self._subs: dict[int, Any] = {}

    def valid(self, schema: Any, value: Any) -> bool:
        v = self._subs.get(id(schema))
        if v is None:
            v = self._subs[id(schema)] = (schema, self.validator.evolve(schema=schema))
        return v[1].is_valid(value)

    def deref(self, s: Any) -> Any:
        for _ in range(64):
            if not isinstance(s, dict) or "$ref" not in s:
                return s
            target = _resolve(self.root, s["$ref"])
            rest = {k: v for k, v in s.items() if k != "$ref" and k not in _META}
            s = _merge(target, rest) if rest else target
        raise _Fail("reference cycle")

    def gen(self, s: Any, depth: int, name: str | None = None) -> Any:
        self.budget -= 1
        if depth > self.hard_limit or self.budget < 0:
            raise _Fail("schema requires unbounded nesting")
        s = self.deref(s)
        if s is True:
            s = {}
        if s is False:
            raise _Fail("false schema")
        terminal = self.minimal or depth >= self.max_depth
        if "allOf" in s:
            merged = {k: v for k, v in s.items() if k != "allOf"}
            for part in s["allOf"]:
                merged = _merge(merged, self.deref(part))
            return self.gen(merged, depth, name)
        for kw in ("oneOf", "anyOf"):
            if kw in s:
                rest = {k: v for k, v in s.items() if k != kw}
                order = list(range(len(s[kw])))
                self.rng.shuffle(order)
                if terminal:
                    order.sort(key=lambda i: _weight(s[kw][i]))
                for i in order:
                    try:
                        value = self.gen(_merge(rest, self.deref(s[kw][i])), depth, name)
                    except _Fail:
                        continue
                    if kw == "anyOf" or not any(self.valid(b, value) for j, b in enumerate(s[kw]) if j != i):
                        return value
                raise _Fail(f"no {kw} branch worked")
        if "if" in s:
            rest = {k: v for k, v in s.items() if k not in ("if", "then", "else")}
            cond = {k: s[k] for k in ("if", "then", "else") if k in s}
            plans = [_merge(_merge(rest, s["if"]), s.get("then", True)), _merge(rest, s.get("else", True))]
            self.rng.shuffle(plans)
            for plan in plans:
                try:
                    value = self.gen(plan, depth, name)
                except _Fail:
                    continue
                if self.valid(cond, value):
                    return value
            raise _Fail("if/then/else")
        if "not" in s:
            rest = {k: v for k, v in s.items() if k != "not"}
            banned = s["not"].get("type") if isinstance(s["not"], dict) else None
            if banned is not None:
                bad = set(_tl(banned)) | ({"integer"} if "number" in _tl(banned) else set())
                rest["type"] = [t for t in _tl(rest.get("type", _ALL_TYPES)) if t not in bad]
            for _ in range(8):
                value = self.gen(rest, depth, name)
                if not self.valid(s["not"], value):
                    return value
            raise _Fail("not")
        if "const" in s:
            return copy.deepcopy(s["const"])
        if "enum" in s or "examples" in s:
            picked = self.pick(s, name)
            if picked is not None:
                return copy.deepcopy(picked[0])
        t = self.choose_type(s, terminal)
        if t == "object":
            return self.obj(s, depth, name, terminal)
        if t == "array":
            return self.arr(s, depth, name, terminal)
        if t == "string":
            return self.string(s, name)
        if t in ("integer", "number"):
            return self.number(s, name, t == "integer")
        if t == "boolean":
            return self.rng.random() < 0.5
        return None

    def pick(self, s: dict, name: str | None) -> tuple[Any] | None:
        constrained = any(k not in _META and k != "enum" for k in s)
        if "enum" in s:
            cands = [x for x in s["enum"] if not constrained or self.valid(s, x)]
            if not cands:
                raise _Fail("no enum value satisfies the schema")
            for value in self.hint_values(name):
                if value in cands:
                    return (value,)
            return (self.rng.choice(cands),)
        examples = s.get("examples")
        if isinstance(examples, list) and examples and self.rng.random() < 0.5:
            value = self.rng.choice(examples)
            if self.valid(s, value):
                return (value,)
        return None

    def hint_values(self, name: str | None) -> list:
        if not name or not self.hints:
            return []
        low = name.lower()
        return [v for k, v in self.hints if k == low] + [v for k, v in self.hints if k != low and k in low]

    def choose_type(self, s: dict, terminal: bool) -> str:
        t = s.get("type")
        if t is None:
            for kws, typ in ((_OBJ_KW, "object"), (_ARR_KW, "array"), (_STR_KW, "string"), (_NUM_KW, "number")):
                if any(k in s for k in kws):
                    return typ
            types = list(_ANY_TYPES)
        else:
            types = _tl(t)
        if not types:
            raise _Fail("empty type list")
        if terminal:
            if "null" in types:
                return "null"
            simple = [x for x in types if x not in ("object", "array")]
            types = simple or types
        return self.rng.choice(types)

    def string(self, s: dict, name: str | None) -> str:
        rng, fmt, pat = self.rng, s.get("format"), s.get("pattern")
        lo, hi = s.get("minLength", 0), s.get("maxLength")
        checker = self.validator.format_checker

        def ok(v: Any) -> bool:
            return (isinstance(v, str) and lo <= len(v) and (hi is None or len(v) <= hi)
                    and (pat is None or re.search(pat, v) is not None)
                    and (fmt is None or checker is None or checker.conforms(v, fmt)))

        for value in self.hint_values(name):
            if ok(value):
                return value
        if pat is not None:
            for _ in range(4):
                value = regexgen.sample(pat, rng, lo, hi)
                if value is not None and ok(value):
                    return value
            raise _Fail(f"could not satisfy pattern {pat!r}")
        if fmt in _FORMATS:
            value = _FORMATS[fmt](rng)
            if ok(value):
                return value
        rule = _match("str", name)
        if rule is not None:
            value = rule(rng)
            if ok(value):
                return value
        value = _words(rng, rng.randint(1, 4) if hi is None or hi > 12 else 1)
        while len(value) < lo:
            value += " " + rng.choice(wb.NOUNS)
        if hi is not None and len(value) > hi:
            value = value[:hi].rstrip() if len(value[:hi].rstrip()) >= lo else value[:hi]
        return value

    def number(self, s: dict, name: str | None, integer: bool) -> int | float:
        rng = self.rng
        for value in self.hint_values(name):
            try:
                num = float(value)
                num = int(num) if integer or num.is_integer() else num
            except (TypeError, ValueError, OverflowError):
                continue
            if self.valid(s, num):
                return num
        a, b, m = s.get("minimum"), s.get("maximum"), s.get("multipleOf")
        ea, eb = s.get("exclusiveMinimum"), s.get("exclusiveMaximum")
        ea = None if isinstance(ea, bool) else ea
        eb = None if isinstance(eb, bool) else eb
        if integer:
            A = max([x for x in (math.ceil(a) if a is not None else None,
                                 math.floor(ea) + 1 if ea is not None else None) if x is not None], default=None)
            B = min([x for x in (math.floor(b) if b is not None else None,
                                 math.ceil(eb) - 1 if eb is not None else None) if x is not None], default=None)
        else:
            A = max([x for x in (a, ea) if x is not None], default=None)
            B = min([x for x in (b, eb) if x is not None], default=None)

        def inside(x: float) -> bool:
            return ((a is None or x >= a) and (b is None or x <= b) and (ea is None or x > ea)
                    and (eb is None or x < eb) and (m is None or _mult_ok(x, m)))

        if A is not None and B is not None and A > B:
            raise _Fail("empty numeric range")
        lo, hi = _nice_window(A, B, _match("num", name) or (1, 100))
        if m is not None:
            step = Fraction(str(m)) if isinstance(m, float) else Fraction(m)
            if integer and step.denominator != 1:
                step = Fraction(step.numerator)
            for wlo, whi in ((lo, hi), (A, B)):
                if wlo is None or whi is None:
                    wlo = wlo if wlo is not None else (whi - 100 * step if whi is not None else 0)
                    whi = whi if whi is not None else wlo + 100 * step
                kmin, kmax = math.ceil(Fraction(wlo) / step), math.floor(Fraction(whi) / step)
                if kmin > kmax:
                    continue
                for k in [rng.randint(kmin, kmax) for _ in range(12)] + [kmin, kmax, 0]:
                    x = k * step
                    x = int(x) if integer or x.denominator == 1 and isinstance(m, int) else float(x)
                    if kmin <= k <= kmax and inside(x):
                        return x
            raise _Fail("no multiple in range")
        if integer:
            return rng.randint(lo, hi)
        for digits in (2, 4, 8):
            x = round(rng.uniform(lo, hi), digits)
            if inside(x):
                return x
        x = (lo + hi) / 2
        if inside(x):
            return x
        raise _Fail("empty numeric range")

    def arr(self, s: dict, depth: int, name: str | None, terminal: bool) -> list:
        rng = self.rng
        items = s.get("items", True)
        prefix = s.get("prefixItems", [])
        if isinstance(items, list):
            prefix, items = items, s.get("additionalItems", True)
        lo, hi = s.get("minItems", 0), s.get("maxItems")
        if items is False:
            hi = len(prefix) if hi is None else min(hi, len(prefix))
        contains = s.get("contains")
        min_c = s.get("minContains", 1) if contains is not None else 0
        max_c = s.get("maxContains")
        lo = max(lo, min_c)
        if terminal:
            n = lo
        else:
            base = max(lo, 1)
            n = rng.randint(base, base + (2 if depth < 2 else 1 if depth < 4 else 0))
            n = min(n, hi) if hi is not None else n
        if hi is not None and lo > hi:
            raise _Fail("minItems > maxItems")
        positions = set(rng.sample(range(n), min(n, min_c))) if contains is not None else set()
        out, seen = [], []
        for i in range(n):
            sub = prefix[i] if i < len(prefix) else items
            if i in positions:
                sub = {"allOf": [sub, contains]}
            for _ in range(12):
                value = self.gen(sub, depth + 1, name)
                if max_c is not None and i not in positions and self.valid(contains, value):
                    continue
                if not s.get("uniqueItems") or _freeze(value) not in seen:
                    break
            else:
                if len(out) >= lo:
                    break
                raise _Fail("could not generate distinct items")
            seen.append(_freeze(value))
            out.append(value)
        return out

    def obj(self, s: dict, depth: int, name: str | None, terminal: bool) -> dict:
        rng = self.rng
        props, addl = s.get("properties", {}), s.get("additionalProperties", True)
        pprops, deps = s.get("patternProperties", {}), s.get("dependentRequired", {})
        lo, hi = s.get("minProperties", 0), s.get("maxProperties")
        keys = list(dict.fromkeys(s.get("required", [])))
        required = set(keys)
        if not terminal:
            keys += [k for k in props if k not in required and rng.random() < OPTIONAL_P]
        for k in keys:  # dependentRequired closure (the list grows while iterating)
            keys += [d for d in deps.get(k, []) if d not in keys]
        if hi is not None and len(keys) > hi >= len(required):
            extra = [k for k in keys if k not in required]
            keys = [k for k in keys if k in required] + extra[:hi - len(required)]
        spare = [k for k in props if k not in keys]
        free = not props and (addl is not False or pprops)
        want = max(lo, rng.randint(1, 3)) if free and not terminal else lo
        while len(keys) < want:
            if spare:
                keys.append(spare.pop(0))
                continue
            key = self.key(s, keys)
            if key is None:
                break
            keys.append(key)
        order = [k for k in props if k in keys] + [k for k in keys if k not in props]
        out = {}
        for k in order:
            sub = props.get(k, addl if k not in props else True)
            matching = [p for p in pprops if re.search(p, k)]
            if matching:
                sub = {"allOf": [props[k]] + [pprops[p] for p in matching]} if k in props else \
                    {"allOf": [pprops[p] for p in matching]}
            out[k] = self.gen(sub, depth + 1, k)
        return out

    def key(self, s: dict, taken: list) -> str | None:
        rng, names, pprops = self.rng, s.get("propertyNames"), list(s.get("patternProperties", {}))
        closed = s.get("additionalProperties", True) is False
        for _ in range(20):
            if isinstance(names, dict) and names:
                key = self.gen({"type": "string", **names}, self.max_depth)
            elif pprops and (closed or rng.random() < 0.5):
                key = regexgen.sample(rng.choice(pprops), rng, rng.randint(2, 8))
            else:
                key = rng.choice(wb.NOUNS) + ("" if rng.random() < 0.7 else f"_{rng.randint(2, 9)}")
            if not isinstance(key, str) or key in taken or key in s.get("properties", {}):
                continue
            if closed and not any(re.search(p, key) for p in pprops):
                continue
            return key
        return None


def _weight(branch: Any) -> int:
    """Sort key preferring branches that terminate recursion."""
    if not isinstance(branch, dict):
        return 1
    t = branch.get("type")
    if t == "null" or (isinstance(t, list) and "null" in t):
        return 0
    if "$ref" in branch or t in ("object", "array") or "properties" in branch or "items" in branch:
        return 3
    return 1


def _freeze(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


def generate(schema: Any, rng: random.Random, hints: dict[str, str] | None = None, max_depth: int = 6) -> Any:
    """An instance validating against ``schema``; deterministic for the rng state.

    Beyond ``max_depth`` nesting levels only required content is generated
    (optional properties omitted, arrays at ``minItems``, ``null`` and
    non-container anyOf/oneOf branches preferred).
    """
    validator = _validator(schema)
    gen = _Gen(schema, validator, hints, max_depth)
    last = "no attempt"
    for attempt in range(MAX_ATTEMPTS):
        gen.rng = rng if attempt == 0 else random.Random(rng.getrandbits(64))
        gen.minimal = attempt >= MAX_ATTEMPTS // 2
        gen.budget = NODE_BUDGET
        try:
            value = gen.gen(schema, 0)
        except _Fail as exc:
            last = str(exc)
            continue
        except RecursionError:
            last = "recursion too deep"
            continue
        if validator.is_valid(value):
            return value
        last = next(validator.iter_errors(value)).message
    raise SchemaError(f"could not generate an instance that validates against the schema ({last})")
