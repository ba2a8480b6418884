"""Properties of the JSON-Schema instance generator (fakeai.engine.jsonschema_gen)."""

from __future__ import annotations

import enum
import json
import os
import pathlib
import random
import re
import subprocess
import sys
import time
from typing import Literal, Optional

import jsonschema
import pydantic
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from fakeai.engine.jsonschema_gen import SchemaError, check_schema, generate
from fakeai.engine.regexgen import sample


def validate(instance, schema) -> None:
    Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER).validate(instance)


def gen(schema, seed=0, **kw):
    return generate(schema, random.Random(seed), **kw)


# --------------------------------------------------------------- hypothesis
NAMES = ("id", "name", "city", "email", "count", "tags", "price", "date", "unit", "note", "x", "items")
PATTERNS = (r"^[A-Z]{3}-\d{4}$", r"^\S+@\S+\.\S+$", r"^[a-z]{2,5}$", r"\d+", r"^(foo|bar)_[0-9]{2}$",
            r"[aeiou]", r"^#[0-9a-f]{6}$", r"^v\d+(\.\d+){2}$", r"^[^,]+$")
FORMATS = ("date-time", "date", "time", "email", "ipv4", "ipv6", "uuid", "uri", "hostname", "duration")
SCALARS = st.one_of(st.text("abcXYZ 1", max_size=6), st.integers(-50, 50), st.booleans(), st.none())


@st.composite
def string_schemas(draw):
    kind = draw(st.sampled_from(("plain", "enum", "format", "pattern")))
    if kind == "enum":
        return {"type": "string", "enum": draw(st.lists(st.text("abcdef", max_size=5), min_size=1, max_size=4))}
    if kind == "format":
        return {"type": "string", "format": draw(st.sampled_from(FORMATS))}
    if kind == "pattern":
        return {"type": "string", "pattern": draw(st.sampled_from(PATTERNS))}
    s = {"type": "string"}
    lo = draw(st.none() | st.integers(0, 12))
    if lo is not None:
        s["minLength"] = lo
    if draw(st.booleans()):
        s["maxLength"] = (lo or 0) + draw(st.integers(0, 15))
    return s


@st.composite
def number_schemas(draw):
    integer = draw(st.booleans())
    s: dict = {"type": "integer" if integer else "number"}
    lo, span = draw(st.integers(-1000, 1000)), draw(st.integers(8, 2000))
    mult = draw(st.sampled_from((None, 2, 3, 5, 7) if integer else (None, 0.5, 0.25, 0.1, 4)))
    exclusive = draw(st.booleans())
    if draw(st.booleans()):
        s["exclusiveMinimum" if exclusive else "minimum"] = lo
    if draw(st.booleans()):
        s["exclusiveMaximum" if exclusive else "maximum"] = lo + span
    if mult is not None:
        s["multipleOf"] = mult
    return s


LEAVES = st.one_of(
    string_schemas(),
    number_schemas(),
    st.just({"type": "boolean"}),
    st.just({"type": "null"}),
    st.builds(lambda v: {"const": v}, SCALARS),
    st.builds(lambda vs: {"enum": vs}, st.lists(SCALARS, min_size=1, max_size=4)),
    st.just({}),
)


def extend(children):
    objects = st.builds(
        lambda props, req, addl: {
            "type": "object",
            "properties": props,
            "required": [k for k in props if k in req],
            **({} if addl == "absent" else {"additionalProperties": addl}),
        },
        st.dictionaries(st.sampled_from(NAMES), children, max_size=5),
        st.sets(st.sampled_from(NAMES)),
        st.one_of(st.just("absent"), st.just(False), st.just(True), children),
    )

    @st.composite
    def arrays(draw):
        s = {"type": "array", "items": draw(children)}
        lo = draw(st.integers(0, 2))
        if lo:
            s["minItems"] = lo
        if draw(st.booleans()):
            s["maxItems"] = lo + draw(st.integers(0, 3))
        if lo <= 1 and draw(st.booleans()):
            s["uniqueItems"] = True
        return s

    typed = {
        "string": string_schemas(), "integer": number_schemas().filter(lambda s: s["type"] == "integer"),
        "boolean": st.just({"type": "boolean"}), "null": st.just({"type": "null"}),
        "object": objects, "array": arrays(),
    }
    unions = st.builds(
        lambda kw, branches: {kw: branches},
        st.sampled_from(("anyOf", "oneOf")),
        st.lists(st.sampled_from(sorted(typed)), min_size=2, max_size=3, unique=True).flatmap(
            lambda types: st.tuples(*(typed[t] for t in types)).map(list)),
    )
    return st.one_of(objects, arrays(), unions)


DEF_NAMES = ("Address", "Item", "Tag")
DEFS = st.fixed_dictionaries({}, optional={k: st.recursive(LEAVES, extend, max_leaves=4) for k in DEF_NAMES})
BODIES = st.recursive(
    st.one_of(LEAVES, st.sampled_from([{"$ref": f"#/$defs/{k}"} for k in DEF_NAMES])), extend, max_leaves=10)


@st.composite
def schemas(draw):
    """Random schema; may reference ``#/$defs/<name>`` (dangling references are dropped by resolving them)."""
    defs, body = draw(DEFS), draw(BODIES)
    missing = [k for k in DEF_NAMES if k not in defs and f'"#/$defs/{k}"' in json.dumps(body)]
    for k in missing:
        defs[k] = draw(LEAVES)
    return {"$defs": defs, **body} if defs else body


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(schema=schemas(), seed=st.integers(0, 2**32))
def test_random_schemas_generate_valid_instances(schema, seed):
    instance = gen(schema, seed)
    jsonschema.validate(instance, schema)
    validate(instance, schema)  # formats asserted too


# -------------------------------------------------------------- determinism
FREE = {
    "type": "object",
    "properties": {
        "city": {"type": "string"}, "n": {"type": "integer"}, "tags": {"type": "array", "items": {"type": "string"}},
        "score": {"type": "number"}, "ok": {"type": "boolean"},
    },
    "required": ["city", "n"],
}


def test_same_seed_same_instance_and_seeds_differ():
    for seed in range(20):
        assert gen(FREE, seed) == gen(FREE, seed)
    distinct = {json.dumps(gen(FREE, seed), sort_keys=True) for seed in range(20)}
    assert len(distinct) >= 18


def test_deterministic_across_hash_seeds():
    code = ("import random, json; from fakeai.engine.jsonschema_gen import generate; "
            "from tests.unit.test_jsonschema_gen import FREE, TREE; "
            "print(json.dumps([generate(s, random.Random(5), hints={'city': 'Rome'}) for s in (FREE, TREE)]))")
    root = pathlib.Path(__file__).resolve().parents[2]
    outs = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=root,
                           env={**os.environ, "PYTHONHASHSEED": str(h)}).stdout for h in (1, 2)}
    assert len(outs) == 1 and outs.pop().startswith("[{")


def test_rng_is_advanced_and_sequence_reproducible():
    a, b = random.Random(7), random.Random(7)
    seq_a = [generate(FREE, a) for _ in range(5)]
    seq_b = [generate(FREE, b) for _ in range(5)]
    assert seq_a == seq_b
    assert len({json.dumps(x, sort_keys=True) for x in seq_a}) > 1


# ----------------------------------------------------------- specific cases
def test_enum_and_const():
    schema = {"type": "object", "properties": {"unit": {"enum": ["celsius", "fahrenheit"]}, "v": {"const": {"k": [1]}}},
              "required": ["unit", "v"]}
    seen = set()
    for seed in range(30):
        inst = gen(schema, seed)
        assert inst["v"] == {"k": [1]}
        seen.add(inst["unit"])
    assert seen == {"celsius", "fahrenheit"}
    # enum filtered by sibling constraints
    assert all(gen({"type": "integer", "enum": ["a", 3, None, 8], "minimum": 5}, s) == 8 for s in range(10))


def test_nested_objects_four_deep():
    leaf = {"type": "object", "properties": {"value": {"type": "integer"}}, "required": ["value"],
            "additionalProperties": False}
    schema = leaf
    for name in ("c", "b", "a"):
        schema = {"type": "object", "properties": {name: schema}, "required": [name], "additionalProperties": False}
    for seed in range(10):
        inst = gen(schema, seed)
        validate(inst, schema)
        assert isinstance(inst["a"]["b"]["c"]["value"], int)


def depth(value) -> int:
    if isinstance(value, dict):
        return 1 + max((depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((depth(v) for v in value), default=0)
    return 0


TREE = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "children": {"type": "array", "items": {"$ref": "#"}}},
    "required": ["name", "children"],
}


@pytest.mark.parametrize("max_depth", [0, 2, 4, 6])
def test_recursive_tree_terminates_within_max_depth(max_depth):
    deepest = 0
    for seed in range(30):
        inst = gen(TREE, seed, max_depth=max_depth)
        validate(inst, TREE)
        # each tree level is an object plus its children array: 2 nesting levels
        assert depth(inst) <= max_depth + 2
        deepest = max(deepest, depth(inst))
    assert deepest >= max_depth  # recursion is actually exercised


def test_linked_list_prefers_null_at_depth_limit():
    schema = {
        "$defs": {"node": {"type": "object", "properties": {
            "v": {"type": "integer"}, "next": {"anyOf": [{"$ref": "#/$defs/node"}, {"type": "null"}]}},
            "required": ["v", "next"], "additionalProperties": False}},
        "$ref": "#/$defs/node",
    }
    for seed in range(20):
        inst = gen(schema, seed, max_depth=3)
        validate(inst, schema)
        assert depth(inst) <= 4


def test_nullable_recursion_stops_at_max_depth():
    schema = {"type": ["object", "null"], "properties": {"next": {"$ref": "#"}}, "required": ["next"]}
    for seed in range(40):
        inst = gen(schema, seed, max_depth=2)
        validate(inst, schema)
        assert depth(inst) <= 2  # {"next": {"next": null}} at most


def test_one_of_exactly_one_branch():
    cases = [
        {"oneOf": [{"type": "integer", "multipleOf": 3}, {"type": "integer", "multipleOf": 5}]},
        {"oneOf": [{"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]},
                   {"type": "object", "properties": {"b": {"type": "string"}}, "required": ["b"]}]},
        {"oneOf": [{"type": "string"}, {"type": "string", "maxLength": 8}]},
    ]
    for schema in cases:
        for seed in range(40):
            inst = gen(schema, seed)
            matches = sum(Draft202012Validator(b).is_valid(inst) for b in schema["oneOf"])
            assert matches == 1, (schema, inst)


@pytest.mark.parametrize("pattern", [r"^[A-Z]{3}-\d{4}$", r"^\S+@\S+\.\S+$", r"^(GET|POST) /[a-z]+$",
                                     r"^\+?[1-9]\d{6,12}$", r"^[a-z0-9_]{3,16}$", r"\d{2}:\d{2}",
                                     r"^(?=.*\d)(?=.*[a-z])[a-z0-9]{8}$", r"^(ab)+\1$"])
def test_patterns(pattern):
    schema = {"type": "string", "pattern": pattern}
    for seed in range(25):
        inst = gen(schema, seed)
        assert re.search(pattern, inst), inst
    assert re.fullmatch(r"[A-Z]{3}-\d{4}", gen({"type": "string", "pattern": r"^[A-Z]{3}-\d{4}$"}))


def test_pattern_respects_length_and_is_unanchored():
    schema = {"type": "string", "pattern": "ab", "minLength": 6, "maxLength": 9}
    for seed in range(20):
        inst = gen(schema, seed)
        assert "ab" in inst and 6 <= len(inst) <= 9


def test_regexgen_direct():
    rng = random.Random(0)
    assert re.fullmatch(r"[A-Z]{3}-\d{4}", sample(r"^[A-Z]{3}-\d{4}$", rng))
    assert sample(r"^a$", rng, min_len=3) is None  # impossible -> None, never a wrong string
    assert sample("(", rng) is None  # invalid regex


@pytest.mark.parametrize("fmt", ["date-time", "date", "time", "email", "ipv4", "ipv6", "uuid", "uri",
                                 "hostname", "duration", "json-pointer"])
def test_formats(fmt):
    schema = {"type": "object", "properties": {"v": {"type": "string", "format": fmt}}, "required": ["v"]}
    checker = Draft202012Validator.FORMAT_CHECKER
    for seed in range(20):
        inst = gen(schema, seed)
        validate(inst, schema)
        assert checker.conforms(inst["v"], fmt)
        if fmt in ("uri", "hostname", "duration"):  # no checker installed: check the shape ourselves
            assert re.fullmatch({"uri": r"https://[\w./-]+", "hostname": r"[a-z0-9.-]+\.[a-z]+",
                                 "duration": r"P(\d+[YMWD])*(T(\d+[HMS])+)?"}[fmt], inst["v"])


def test_numbers_bounds_and_multiples():
    cases = [
        {"type": "integer", "minimum": 1, "maximum": 1},
        {"type": "integer", "exclusiveMinimum": 0, "exclusiveMaximum": 2},
        {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 0.001},
        {"type": "number", "multipleOf": 0.01, "minimum": 10.5, "maximum": 10.6},
        {"type": "integer", "multipleOf": 1000, "minimum": 123456},
        {"type": "integer", "multipleOf": 0.5, "maximum": -3},
        {"type": "number", "minimum": -2**31, "maximum": 2**31},
    ]
    for schema in cases:
        for seed in range(10):
            validate(gen(schema, seed), schema)
    assert gen({"type": "integer", "minimum": 1, "maximum": 1}) == 1
    plain = [gen({"type": "integer"}, s) for s in range(30)]
    assert all(1 <= x <= 100 for x in plain)
    floats = [gen({"type": "number"}, s) for s in range(30)]
    assert all(round(x, 2) == x for x in floats)


def test_hints_and_plausible_strings():
    schema = {"type": "object", "properties": {"city": {"type": "string"}, "city_name": {"type": "string"},
                                               "CityCode": {"type": "string", "maxLength": 3}},
              "required": ["city", "city_name", "CityCode"]}
    for seed in range(10):
        inst = gen(schema, seed, hints={"City": "Berlin"})
        assert inst["city"] == "Berlin" and inst["city_name"] == "Berlin"
        assert len(inst["CityCode"]) <= 3  # hint violates maxLength: not used
    plausible = {"type": "object", "properties": {"city": {"type": "string"}, "email": {"type": "string"},
                                                  "unit": {"type": "string"}, "date": {"type": "string"}},
                 "required": ["city", "email", "unit", "date"]}
    inst = gen(plausible, 3)
    assert inst["city"][0].isupper() and " " not in inst["city"].strip() or inst["city"] in (
        "New York", "Mexico City", "San Francisco")
    assert re.fullmatch(r"[a-z.]+@example\.com", inst["email"])
    assert inst["unit"] in ("celsius", "fahrenheit")
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", inst["date"])
    # hints also fill optional / nullable properties (pydantic's Optional[str] is an anyOf with null)
    optional = {"type": "object", "properties": {"city": {"anyOf": [{"type": "string"}, {"type": "null"}]},
                                                 "town": {"type": ["null", "string"]}}}
    for seed in range(10):
        assert gen(optional, seed, hints={"city": "Oslo", "town": "Bergen"}) == {"city": "Oslo", "town": "Bergen"}
    # numeric hints
    assert gen({"type": "object", "properties": {"days": {"type": "integer", "maximum": 14}}, "required": ["days"]},
               hints={"days": "3"}) == {"days": 3}
    # hint into an enum
    enum_schema = {"type": "object", "properties": {"unit": {"enum": ["celsius", "fahrenheit"]}}, "required": ["unit"]}
    assert all(gen(enum_schema, s, hints={"unit": "fahrenheit"})["unit"] == "fahrenheit" for s in range(10))


def test_keywords_mix():
    cases = [
        {"type": "object", "properties": {"a": {"type": "string"}, "b": {"type": "string"}},
         "dependentRequired": {"a": ["b"]}, "minProperties": 1, "maxProperties": 2, "additionalProperties": False},
        {"type": "object", "patternProperties": {"^x-": {"type": "integer"}}, "additionalProperties": False,
         "minProperties": 2},
        {"type": "object", "additionalProperties": {"type": "integer"}, "propertyNames": {"pattern": "^[a-z]+$"}},
        {"type": "array", "prefixItems": [{"type": "string"}, {"type": "integer"}], "items": False, "minItems": 2},
        {"type": "array", "items": {"type": "integer"}, "contains": {"const": 7}, "maxContains": 1},
        {"type": "array", "items": {"enum": [1, 2, 3]}, "uniqueItems": True, "minItems": 3},
        {"allOf": [{"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]},
                   {"properties": {"b": {"type": "integer", "minimum": 5}}, "required": ["b"]}]},
        {"allOf": [{"type": "number"}, {"type": "integer"}, {"minimum": 3}, {"maximum": 4}]},
        {"not": {"type": ["string", "number", "boolean", "object"]}},
        {"type": "integer", "not": {"enum": [1, 2, 3]}, "minimum": 1, "maximum": 4},
        {"type": ["string", "null"], "minLength": 3},
        {"if": {"type": "integer"}, "then": {"minimum": 1000}, "else": {"type": "string"}},
        {"$defs": {"pos": {"type": "integer", "minimum": 1}}, "$ref": "#/$defs/pos", "maximum": 3},
        {"definitions": {"s": {"type": "string"}}, "type": "array", "items": {"$ref": "#/definitions/s"}},
        {"type": "object", "properties": {"a": True, "b": False}, "required": ["a"]},
        True,
        {"minLength": 2},
        {"properties": {"q": {"type": "string"}}},
        {"minimum": 500},
    ]
    for schema in cases:
        for seed in range(15):
            inst = gen(schema, seed)
            validate(inst, schema)
    # allOf merging: lcm of multipleOf, additionalProperties:false of one branch forbids the other's properties
    assert all(gen({"allOf": [{"type": "integer", "multipleOf": 4}, {"multipleOf": 6}]}, s) % 12 == 0
               for s in range(10))
    closed = {"allOf": [{"type": "object", "properties": {"a": {"type": "string"}}, "additionalProperties": False},
                        {"properties": {"b": {"type": "integer"}}, "minProperties": 1}]}
    assert all(set(gen(closed, s)) == {"a"} for s in range(10))
    # maps get a few keys
    assert len(gen({"type": "object", "additionalProperties": {"type": "integer"}}, 1)) >= 1


def test_unsatisfiable_schemas_raise():
    for schema in ({"type": "string", "minLength": 5, "maxLength": 2}, {"not": {}}, False,
                   {"type": "object", "properties": {"a": {"$ref": "#/properties/a"}}, "required": ["a"]},
                   {"type": "integer", "minimum": 1, "maximum": 2, "multipleOf": 7}):
        with pytest.raises(SchemaError):
            gen(schema)


def test_invalid_schema_rejected_by_generate():
    with pytest.raises(SchemaError):
        gen({"type": "objectt"})
    with pytest.raises(SchemaError):
        gen({"$ref": "#/$defs/missing"})


def test_cache_is_keyed_by_content_not_identity():
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]}
    assert isinstance(gen(schema)["a"], int)
    schema["properties"]["a"] = {"type": "string", "enum": ["only"]}  # same dict object, new content
    assert gen(schema)["a"] == "only"


# ------------------------------------------------------------------ pydantic
class Color(str, enum.Enum):
    RED = "red"
    GREEN = "green"


class Address(pydantic.BaseModel):
    street: str
    city: str
    zip_code: Optional[str] = None  # noqa: UP045


class Person(pydantic.BaseModel):
    name: str
    age: int = pydantic.Field(ge=0, le=130)
    email: Optional[str] = None  # noqa: UP045 - typing.Optional on purpose
    favourite: Color
    role: Literal["admin", "user"]
    scores: list[float]
    address: Address
    previous: list[Address] = []
    nickname: str | None = pydantic.Field(default=None, max_length=12)


def test_pydantic_model_schema():
    schema = Person.model_json_schema()
    check_schema(schema)
    with pytest.raises(SchemaError):  # pydantic's own schema is not strict-mode compatible
        check_schema(schema, strict=True)
    for seed in range(30):
        inst = gen(schema, seed)
        validate(inst, schema)
        Person.model_validate(inst)


def test_openai_strict_schema():
    to_strict = pytest.importorskip("openai.lib._pydantic").to_strict_json_schema
    schema = to_strict(Person)
    check_schema(schema, strict=True, name="person")
    for seed in range(30):
        inst = gen(schema, seed)
        validate(inst, schema)
        assert set(inst) == set(Person.model_fields)  # strict: everything required
        Person.model_validate(inst)


# -------------------------------------------------------------- check_schema
STRICT_OK = {
    "type": "object",
    "properties": {
        "a": {"type": "object", "properties": {"x": {"type": ["string", "null"]}}, "required": ["x"],
              "additionalProperties": False},
        "b": {"anyOf": [{"type": "integer"}, {"$ref": "#/$defs/t"}]},
    },
    "required": ["a", "b"],
    "additionalProperties": False,
    "$defs": {"t": {"type": "string", "enum": ["p", "q"]}},
}


def test_check_schema_invalid():
    with pytest.raises(SchemaError) as exc:
        check_schema({"type": "objectt"}, name="X")
    assert exc.value.message.startswith("Invalid schema for response_format 'X': ")
    with pytest.raises(SchemaError):
        check_schema({"type": "object", "properties": {"a": {"minLength": -1}}})
    with pytest.raises(SchemaError):
        check_schema({"type": "string", "pattern": "("})
    check_schema({"type": "string"})  # fine when not strict


def test_check_schema_strict_ok():
    check_schema(STRICT_OK, strict=True, name="X")


def strict_error(schema) -> SchemaError:
    with pytest.raises(SchemaError) as exc:
        check_schema(schema, strict=True, name="X")
    return exc.value


def test_check_schema_strict_violations():
    s = json.loads(json.dumps(STRICT_OK))
    del s["properties"]["a"]["additionalProperties"]
    err = strict_error(s)
    assert err.message == ("Invalid schema for response_format 'X': In context=('properties', 'a'), "
                           "'additionalProperties' is required to be supplied and to be false.")
    assert err.path == "/properties/a"

    s = json.loads(json.dumps(STRICT_OK))
    s["required"] = ["a"]
    err = strict_error(s)
    assert "'required' is required to be supplied" in err.message and "Missing 'b'" in err.message
    assert err.path == ""

    for kw, value in (("allOf", [{"type": "string"}]), ("patternProperties", {"^x": {"type": "string"}}),
                      ("minProperties", 1), ("unevaluatedProperties", False), ("propertyNames", {"maxLength": 3})):
        s = json.loads(json.dumps(STRICT_OK))
        s["properties"]["a"][kw] = value
        err = strict_error(s)
        assert err.message.endswith(f"In context=('properties', 'a'), '{kw}' is not permitted.")
        assert err.path == "/properties/a"

    err = strict_error({"type": "array", "items": {"type": "string"}})
    assert "must be a JSON Schema of 'type: \"object\"'" in err.message

    err = strict_error({"type": "object", "properties": {"a": {}}, "required": ["a"],
                        "additionalProperties": False})
    assert err.path == "/properties/a"

    s = json.loads(json.dumps(STRICT_OK))
    s["$defs"]["t"] = {"type": "object", "properties": {}}
    assert strict_error(s).path == "/$defs/t"

    with pytest.raises(SchemaError) as exc:
        check_schema({"type": "object", "properties": {"a": {"type": "string"}}}, strict=True,
                     name="get_weather", kind="function")
    assert exc.value.message.startswith("Invalid schema for function 'get_weather': In context=(), ")


# --------------------------------------------------------------- performance
def test_typical_tool_schema_is_fast():
    schema = {
        "type": "object",
        "properties": {
            "location": {"type": "string", "description": "City and country"},
            "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
            "days": {"type": "integer", "minimum": 1, "maximum": 14},
            "include_hourly": {"type": "boolean"},
            "lang": {"type": "string"},
        },
        "required": ["location", "unit"],
    }
    rng = random.Random(0)
    generate(schema, rng)  # warm the validator cache
    n = 2000
    start = time.perf_counter()
    for _ in range(n):
        generate(schema, rng)
    per_call = (time.perf_counter() - start) / n
    assert per_call < 1e-3  # typically well under 200 µs; generous bound for slow CI machines
