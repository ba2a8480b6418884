"""Deterministic JSON-Schema instance generator and OpenAI strict-mode checker.

``generate(schema, rng)`` returns an instance that validates against ``schema``
(jsonschema; Draft 2020-12 unless ``$schema`` says otherwise; formats asserted
where jsonschema has a checker) with plausible content: properties named like
``city``/``email``/``date`` get realistic strings (``regexgen.by_name``), ``hints`` injects values taken
from the conversation.  Every result is validated; failed attempts are retried
with fresh sub-rngs (the later half "minimal": no optional content) and, as a
last resort, ``SchemaError`` is raised - an invalid instance is never returned.

``check_schema(schema, strict=...)`` rejects invalid schemas and, in strict
mode, schemas OpenAI's Structured Outputs would refuse: a root that is not
``type: "object"`` (or is an ``anyOf``); objects without
``additionalProperties: false`` or whose ``required`` misses a property;
subschemas with none of ``type``/``$ref``/``anyOf``/``enum``/``const``; the
keywords in ``STRICT_UNSUPPORTED``.  Size limits (nesting depth, property and
enum counts) are not checked.
"""

from __future__ import annotations

import copy
import json
import math
import random
import re
import threading
from collections import OrderedDict
from fractions import Fraction
from typing import Any

import orjson

from fakeai.engine import regexgen
from fakeai.engine import wordbank as wb
from fakeai.engine.regexgen import FORMATS, by_name, words

__all__ = ["STRICT_UNSUPPORTED", "SchemaError", "check_schema", "generate"]

STRICT_UNSUPPORTED = (
    "allOf", "not", "if", "then", "else", "dependentRequired", "dependentSchemas",
    "patternProperties", "unevaluatedProperties", "propertyNames", "minProperties",
    "maxProperties", "unevaluatedItems", "contains", "minContains", "maxContains", "uniqueItems",
)
MAX_ATTEMPTS = 20
CACHE_SIZE = 256
OPTIONAL_P = 0.6  # probability of including an optional property
NODE_BUDGET = 5000  # values per attempt (guards against explosive recursion)


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


def _validator_class(schema: Any) -> Any:
    # imported on first use: jsonschema costs ~40 ms of start-up that plain chat never needs
    from jsonschema import Draft202012Validator
    from jsonschema.validators import validator_for

    return validator_for(schema, default=Draft202012Validator)


def _validator(schema: Any) -> Any:
    """Format-asserting validator, LRU-cached by content; SchemaError if invalid."""
    try:
        key = orjson.dumps(schema, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS)
    except TypeError:
        key = json.dumps(schema, sort_keys=True, default=repr).encode()
    with _LOCK:
        if key in _CACHE:
            _CACHE.move_to_end(key)
            return _CACHE[key]
    check_schema(schema)
    cls = _validator_class(schema)
    validator = cls(schema, format_checker=cls.FORMAT_CHECKER)
    with _LOCK:
        _CACHE[key] = validator
        while len(_CACHE) > CACHE_SIZE:
            _CACHE.popitem(last=False)
    return validator


# --------------------------------------------------------------- check_schema
def check_schema(schema: Any, strict: bool = False, name: str | None = None,
                 kind: str = "response_format") -> None:
    """Raise SchemaError if ``schema`` is invalid (or, with ``strict``, not strict-mode compatible).

    Messages read like OpenAI's: "Invalid schema for response_format 'X': In
    context=('properties', 'a'), ..." (pass kind="function" for tool schemas).
    """
    prefix = f"Invalid schema for {kind} '{name}': " if name else "Invalid schema: "

    def fail(path: tuple, msg: str) -> SchemaError:
        pointer = "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in path)
        return SchemaError(f"{prefix}In context={tuple(str(p) for p in path)!r}, {msg}", pointer)

    if not isinstance(schema, (dict, bool)):
        raise SchemaError(f"{prefix}schema must be a JSON object or boolean, got {type(schema).__name__}.")
    from jsonschema.exceptions import SchemaError as _InvalidSchema

    try:
        _validator_class(schema).check_schema(schema)
    except _InvalidSchema as exc:
        raise fail(tuple(exc.absolute_path)[:-1], exc.message + ".") from None
    for sub, path in _walk(schema, ()):
        if isinstance(sub.get("$ref"), str):
            try:
                _resolve(schema, sub["$ref"])
            except _Fail as exc:
                raise fail(path, str(exc)) from None
    if not strict:
        return
    if not isinstance(schema, dict) or schema.get("type") != "object" or "anyOf" in schema:
        got = schema.get("type") if isinstance(schema, dict) else None
        raise SchemaError(f"{prefix}schema must be a JSON Schema of 'type: \"object\"', got 'type: \"{got}\"'.")
    for sub, path in _walk(schema, ()):
        for kw in STRICT_UNSUPPORTED:
            if kw in sub:
                raise fail(path, f"'{kw}' is not permitted.")
        if not any(k in sub for k in ("type", "$ref", "anyOf", "enum", "const")):
            raise fail(path, "schema must have a 'type' key.")
        if "object" in _tl(sub.get("type", ())) or "properties" in sub:
            if sub.get("additionalProperties") is not False:
                raise fail(path, "'additionalProperties' is required to be supplied and to be false.")
            missing = [k for k in sub.get("properties", {}) if k not in sub.get("required", [])]
            if missing or "required" not in sub:
                raise fail(path, "'required' is required to be supplied and to be an array including every key "
                                 "in properties." + (f" Missing '{missing[0]}'." if missing else ""))


_SUB_MAPS = ("properties", "patternProperties", "$defs", "definitions", "dependentSchemas")
_SUB_LISTS = ("items", "prefixItems", "anyOf", "oneOf", "allOf")
_SUB_ONE = ("items", "additionalProperties", "additionalItems", "contains", "not", "if", "then", "else",
            "propertyNames", "unevaluatedItems", "unevaluatedProperties")


def _walk(schema: Any, path: tuple):
    """Yield (subschema, path) for every subschema dict, pre-order."""
    if not isinstance(schema, dict):
        return
    yield schema, path
    for k, v in schema.items():
        if k in _SUB_MAPS and isinstance(v, dict):
            for name, sub in v.items():
                yield from _walk(sub, (*path, k, name))
        elif k in _SUB_LISTS and isinstance(v, list):
            for i, sub in enumerate(v):
                yield from _walk(sub, (*path, k, i))
        elif k in _SUB_ONE and isinstance(v, dict):
            yield from _walk(v, (*path, k))


def _resolve(root: Any, ref: str) -> Any:
    """Local references only: "#", "#/json/pointer", "#anchor" (optionally prefixed by the root $id)."""
    rid = root.get("$id") if isinstance(root, dict) else None
    if isinstance(rid, str) and ref.startswith(rid):
        ref = ref[len(rid):]
    if ref in ("#", ""):
        return root
    if ref.startswith("#/"):
        node = root
        for part in ref[2:].split("/"):
            part = part.replace("%25", "%").replace("~1", "/").replace("~0", "~")
            try:
                node = node[int(part)] if isinstance(node, list) else node[part]
            except (KeyError, IndexError, ValueError, TypeError):
                raise _Fail(f"unresolvable reference {ref!r}.") from None
        return node
    for sub, _ in _walk(root, ()) if ref.startswith("#") else ():
        if sub.get("$anchor") == ref[1:]:
            return sub
    raise _Fail(f"unsupported or unresolvable reference {ref!r} (only local references are supported).")


# ------------------------------------------------------------------ generator
_INFER = ((("properties", "required", "additionalProperties", "patternProperties", "minProperties", "maxProperties",
            "dependentRequired", "propertyNames"), "object"),
          (("items", "prefixItems", "minItems", "maxItems", "contains", "uniqueItems"), "array"),
          (("minLength", "maxLength", "pattern", "format"), "string"),
          (("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf"), "number"))
_ANY_TYPES = ("string", "string", "integer", "number", "boolean")  # for schemas with no type information
_ALL_TYPES = ("string", "integer", "number", "boolean", "null", "array", "object")
_META = frozenset(("description", "title", "default", "examples", "$comment", "$id", "$schema", "$anchor",
                   "$defs", "definitions", "deprecated", "readOnly", "writeOnly"))
_MINS = ("minimum", "exclusiveMinimum", "minLength", "minItems", "minProperties", "minContains")
_MAXS = ("maximum", "exclusiveMaximum", "maxLength", "maxItems", "maxProperties", "maxContains")


def _tl(t: Any) -> list:
    return [t] if isinstance(t, str) else list(t)


def _merge(a: Any, b: Any) -> Any:
    """Best-effort intersection of two schemas (without top-level $ref); the final validation arbitrates."""
    if a is True or b is False:
        return b
    if b is True or a is False:
        return a
    out = dict(a)
    for k, v in b.items():
        w = out.get(k)
        if k not in out or w == v:
            out[k] = v
        elif k == "type":
            tb = _tl(v)  # "integer" is a subtype of "number"
            out[k] = list(dict.fromkeys(t if t in tb else "integer" for t in _tl(w) if t in tb
                                        or (t == "number" and "integer" in tb) or (t == "integer" and "number" in tb)))
            if not out[k]:
                raise _Fail("allOf: no common type")
        elif k == "properties":
            out[k] = {**w, **{n: ({"allOf": [w[n], s]} if n in w else s) for n, s in v.items()}}
        elif k == "required":
            out[k] = list(dict.fromkeys([*w, *v]))
        elif k in _MINS or k in _MAXS:
            out[k] = max(w, v) if k in _MINS else min(w, v)
        elif k == "enum":
            out[k] = [x for x in w if x in v]
        elif k in ("items", "additionalProperties", "contains", "propertyNames", "additionalItems"):
            out[k] = {"allOf": [w, v]}
        elif k == "not":
            out[k] = {"anyOf": [w, v]}
        elif k == "dependentRequired":
            out[k] = {**w, **{n: list(dict.fromkeys([*w.get(n, []), *d])) for n, d in v.items()}}
        elif k == "multipleOf":  # lcm of p1/q1 and p2/q2 is lcm(p1, p2) / gcd(q1, q2)
            x, y = Fraction(str(w)), Fraction(str(v))
            lcm = Fraction(math.lcm(x.numerator, y.numerator), math.gcd(x.denominator, y.denominator))
            out[k] = int(lcm) if lcm.denominator == 1 else float(lcm)
    for x, y in ((a, b), (b, a)):  # keys the other side's "additionalProperties: false" forbids
        if x.get("additionalProperties") is False and y.get("properties"):
            pats = x.get("patternProperties", {})
            out["properties"] = {n: sub if n in x.get("properties", {}) or any(re.search(p, n) for p in pats)
                                 else False for n, sub in out["properties"].items()}
    return out


def _nice_window(a: Any, b: Any, default: tuple[int, int]) -> tuple[Any, Any]:
    """A "nice" sub-range of [a, b] (either may be None) near ``default``."""
    lo, hi = default
    if a is None and b is None:
        return lo, hi
    if a is None:
        return (lo, min(hi, b)) if b >= lo else (b - (hi - lo), b)
    if b is None:
        return (max(a, lo), hi) if a < hi else (a, a + (hi - lo))
    return (max(a, lo), min(b, hi)) if max(a, lo) < min(b, hi) else (a, b)


def _weight(branch: Any) -> int:
    """Sort key for anyOf/oneOf branches at the depth limit: null first, containers and refs last."""
    keys = set(branch) if isinstance(branch, dict) else set()
    types = set(_tl(branch.get("type", ()))) if isinstance(branch, dict) else set()
    if "null" in types:
        return 0
    return 2 if {"$ref", "properties", "items"} & keys or {"object", "array"} & types else 1


class _Gen:
    def __init__(self, root: Any, validator: Any, rng: random.Random, hints: dict | None, max_depth: int) -> None:
        self.root, self.validator, self.max_depth = root, validator, max_depth
        self.hints = sorted(((str(k).lower(), v) for k, v in (hints or {}).items() if k), key=lambda kv: -len(kv[0]))
        self.rng = rng
        self.minimal, self.budget = False, NODE_BUDGET
        self._subs: dict[int, Any] = {}

    def valid(self, schema: Any, value: Any) -> bool:
        """Validate against a subschema, resolving $refs against the root."""
        if id(schema) not in self._subs:  # keeps ``schema`` alive, so its id stays unique
            self._subs[id(schema)] = (schema, self.validator.evolve(schema=schema))
        return self._subs[id(schema)][1].is_valid(value)

    def deref(self, s: Any) -> Any:
        for _ in range(64):
            if not isinstance(s, dict) or "$ref" not in s:
                return s
            rest = {k: v for k, v in s.items() if k != "$ref" and k not in _META}
            s = _merge(_resolve(self.root, s["$ref"]), rest)
        raise _Fail("reference cycle")

    def hint_values(self, name: str | None) -> list:
        low = (name or "\0").lower()
        return [v for k, v in self.hints if k == low] + [v for k, v in self.hints if k != low and k in low]

    def gen(self, s: Any, depth: int, name: str | None = None) -> Any:
        self.budget -= 1
        if depth > self.max_depth + 40 or self.budget < 0:
            raise _Fail("schema requires unbounded nesting")
        s = self.deref(s)
        if s is False:
            raise _Fail("false schema")
        s = {} if s is True else s
        terminal = self.minimal or depth >= self.max_depth
        if "allOf" in s:
            merged = {k: v for k, v in s.items() if k != "allOf"}
            for part in s["allOf"]:
                merged = _merge(merged, self.deref(part))
            return self.gen(merged, depth, name)
        for kw in ("oneOf", "anyOf"):
            if kw in s:
                rest, branches = {k: v for k, v in s.items() if k != kw}, s[kw]
                order = list(range(len(branches)))
                self.rng.shuffle(order)
                if terminal:
                    order.sort(key=lambda i: _weight(branches[i]))
                elif self.hint_values(name):  # try non-null branches first so the hint gets used
                    order.sort(key=lambda i: _weight(branches[i]) == 0)
                for i in order:
                    try:
                        value = self.gen(_merge(rest, self.deref(branches[i])), depth, name)
                    except _Fail:
                        continue
                    if kw == "anyOf" or not any(self.valid(b, value) for j, b in enumerate(branches) if j != i):
                        return value
                raise _Fail(f"no {kw} branch worked")
        if "if" in s:
            rest = {k: v for k, v in s.items() if k not in ("if", "then", "else")}
            plans = [(rest, s["if"], s.get("then", True)), (rest, s.get("else", True), True)]
            for plan in self.rng.sample(plans, 2):
                try:
                    value = self.gen(_merge(_merge(plan[0], self.deref(plan[1])), self.deref(plan[2])), depth, name)
                except _Fail:
                    continue
                if self.valid({k: s[k] for k in ("if", "then", "else") if k in s}, value):
                    return value
            raise _Fail("if/then/else")
        if "not" in s:
            rest, banned = {k: v for k, v in s.items() if k != "not"}, s["not"]
            if isinstance(banned, dict) and "type" in banned:
                bad = set(_tl(banned["type"])) | ({"integer"} if "number" in _tl(banned["type"]) else set())
                rest["type"] = [t for t in _tl(rest.get("type", _ALL_TYPES)) if t not in bad]
            for _ in range(8):
                value = self.gen(rest, depth, name)
                if not self.valid(banned, value):
                    return value
            raise _Fail("not")
        if "const" in s:
            return copy.deepcopy(s["const"])
        if "enum" in s:
            cands = [x for x in s["enum"] if set(s) - _META == {"enum"} or self.valid(s, x)]
            if not cands:
                raise _Fail("no enum value satisfies the schema")
            hinted = [v for v in self.hint_values(name) if v in cands]
            return copy.deepcopy(hinted[0] if hinted else self.rng.choice(cands))
        examples = s.get("examples")
        if isinstance(examples, list) and examples and self.rng.random() < 0.5:
            value = self.rng.choice(examples)
            if self.valid(s, value):
                return copy.deepcopy(value)
        t = self.choose_type(s, terminal, name)
        if t == "object":
            return self.obj(s, depth, terminal)
        if t == "array":
            return self.arr(s, depth, name, terminal)
        if t == "string":
            return self.string(s, name)
        if t in ("integer", "number"):
            return self.number(s, name, t == "integer")
        return self.rng.random() < 0.5 if t == "boolean" else None

    def choose_type(self, s: dict, terminal: bool, name: str | None) -> str:
        if "type" in s:
            types = _tl(s["type"])
        else:
            types = next(([t] for kws, t in _INFER if any(k in s for k in kws)), list(_ANY_TYPES))
        if not types:
            raise _Fail("empty type list")
        if terminal:  # at the depth limit: stop recursion
            if "null" in types:
                return "null"
            types = [x for x in types if x not in ("object", "array")] or types
        elif "null" in types and len(types) > 1 and self.hint_values(name):
            types = [x for x in types if x != "null"]
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
        for make in (FORMATS.get(fmt), by_name(name)):  # format first, then property-name rules
            if make is not None:
                value = make(rng)
                if ok(value):
                    return value
        value = words(rng, rng.randint(1, 4) if hi is None or hi > 12 else 1)
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
        ea, eb = (None if isinstance(x, bool) else x for x in (s.get("exclusiveMinimum"), s.get("exclusiveMaximum")))
        if integer:
            lows = [math.ceil(a) if a is not None else None, math.floor(ea) + 1 if ea is not None else None]
            highs = [math.floor(b) if b is not None else None, math.ceil(eb) - 1 if eb is not None else None]
        else:
            lows, highs = [a, ea], [b, eb]
        A = max((x for x in lows if x is not None), default=None)
        B = min((x for x in highs if x is not None), default=None)

        def inside(x: float) -> bool:
            if m is not None:  # same arithmetic as jsonschema's multipleOf
                if isinstance(m, float):
                    if not math.isfinite(x / m) or int(x / m) != x / m:
                        return False
                elif x % m:
                    return False
            return ((a is None or x >= a) and (b is None or x <= b) and (ea is None or x > ea)
                    and (eb is None or x < eb))

        if A is not None and B is not None and A > B:
            raise _Fail("empty numeric range")
        lo, hi = _nice_window(A, B, by_name(name, numeric=True) or (1, 100))
        if m is not None:
            step = Fraction(str(m)) if isinstance(m, float) else Fraction(m)
            step = Fraction(step.numerator) if integer else step  # integer multiples of p/q are multiples of p
            for wlo, whi in ((lo, hi), (A, B)):
                wlo = wlo if wlo is not None else (whi - 100 * step if whi is not None else 0)
                whi = whi if whi is not None else wlo + 100 * step
                kmin, kmax = math.ceil(Fraction(wlo) / step), math.floor(Fraction(whi) / step)
                for k in ([rng.randint(kmin, kmax) for _ in range(12)] + [kmin, kmax] if kmin <= kmax else []):
                    x = k * step
                    x = int(x) if integer or (x.denominator == 1 and isinstance(m, int)) else float(x)
                    if inside(x):
                        return x
            raise _Fail("no multiple in range")
        if integer:
            return rng.randint(lo, hi)
        for x in (round(rng.uniform(lo, hi), 2), round(rng.uniform(lo, hi), 6), (lo + hi) / 2):
            if inside(x):
                return x
        raise _Fail("empty numeric range")

    def arr(self, s: dict, depth: int, name: str | None, terminal: bool) -> list:
        rng, items, prefix = self.rng, s.get("items", True), s.get("prefixItems", [])
        if isinstance(items, list):  # draft 4-7 tuple form
            prefix, items = items, s.get("additionalItems", True)
        lo, hi = s.get("minItems", 0), s.get("maxItems")
        if items is False:
            hi = len(prefix) if hi is None else min(hi, len(prefix))
        contains, max_c = s.get("contains"), s.get("maxContains")
        min_c = s.get("minContains", 1) if contains is not None else 0
        lo = max(lo, min_c)
        if hi is not None and lo > hi:
            raise _Fail("minItems > maxItems")
        n = lo if terminal else max(lo, 1) + rng.randint(0, 2 if depth < 2 else 1 if depth < 4 else 0)
        n = n if hi is None else min(n, hi)
        positions = rng.sample(range(n), min(n, min_c))
        out, seen = [], []
        for i in range(n):
            sub = prefix[i] if i < len(prefix) else items
            sub = {"allOf": [sub, contains]} if i in positions else sub
            for _ in range(12):
                value = self.gen(sub, depth + 1, name)
                if max_c is not None and i not in positions and self.valid(contains, value):
                    continue
                if not s.get("uniqueItems") or json.dumps(value, sort_keys=True) not in seen:
                    break
            else:
                if len(out) >= lo:
                    break
                raise _Fail("could not generate distinct items")
            seen.append(json.dumps(value, sort_keys=True))
            out.append(value)
        return out

    def obj(self, s: dict, depth: int, terminal: bool) -> dict:
        rng = self.rng
        props, addl = s.get("properties", {}), s.get("additionalProperties", True)
        pprops, deps = s.get("patternProperties", {}), s.get("dependentRequired", {})
        lo, hi = s.get("minProperties", 0), s.get("maxProperties")
        keys = list(dict.fromkeys(s.get("required", [])))
        required = set(keys)
        if not terminal:
            keys += [k for k in props if k not in required and props[k] is not False
                     and (rng.random() < OPTIONAL_P or self.hint_values(k))]
        for k in keys:  # dependentRequired closure (the list grows while iterating)
            keys += [d for d in deps.get(k, []) if d not in keys]
        if hi is not None and len(keys) > hi >= len(required):
            keys = [k for k in keys if k in required] + [k for k in keys if k not in required][:hi - len(required)]
        spare = [k for k in props if k not in keys and props[k] is not False]
        free = not props and (addl is not False or pprops)  # a map: give it a few entries
        want = max(lo, rng.randint(1, 3)) if free and not terminal else lo
        while len(keys) < want:
            key = spare.pop(0) if spare else self.key(s, keys)
            if key is None:
                break
            keys.append(key)
        out = {}
        for k in [k for k in props if k in keys] + [k for k in keys if k not in props]:
            subs = ([props[k]] if k in props else []) + [pprops[p] for p in pprops if re.search(p, k)]
            out[k] = self.gen(subs[0] if len(subs) == 1 else {"allOf": subs} if subs else addl, depth + 1, k)
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
            if isinstance(key, str) and key not in taken and key not in s.get("properties", {}) and (
                    not closed or any(re.search(p, key) for p in pprops)):
                return key
        return None


def generate(schema: Any, rng: random.Random, hints: dict[str, str] | None = None, max_depth: int = 6) -> Any:
    """An instance validating against ``schema``; deterministic for the rng state.

    ``hints`` maps names to values (e.g. ``{"city": "Berlin"}``): a property
    whose name equals or contains a hint key (case-insensitive) takes the value
    when it satisfies the property's schema.  From nesting depth ``max_depth``
    on only required content is generated (optional properties omitted, arrays
    at ``minItems``, ``null`` and non-container anyOf/oneOf branches preferred).
    """
    validator = _validator(schema)
    gen = _Gen(schema, validator, rng, hints, max_depth)
    last = "no attempt"
    for attempt in range(MAX_ATTEMPTS):
        gen.rng = rng if attempt == 0 else random.Random(rng.getrandbits(64))
        gen.minimal, gen.budget = attempt >= MAX_ATTEMPTS // 2, NODE_BUDGET
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
