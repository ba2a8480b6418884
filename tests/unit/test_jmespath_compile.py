"""The compiled JMESPath expressions evaluate exactly as ``jmespath.search`` does."""

from __future__ import annotations

import jmespath
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jmespath.exceptions import JMESPathError

from fakeai.services.jmespath_compile import compile_expression, predicate

# every node kind the compiler handles, and some it leaves to jmespath (projections, filters,
# slices, multi-selects), alone and inside compiled nodes
EXPRESSIONS = [
    "a", "a.b", "a.b.c", "a[0]", "a[-1]", "a[1].b", "@", "`1`", "'x'", "`true`", "`null`",
    "a == `0`", "a == `1`", "a == `true`", "a == `false`", "a != `false`", "a == b", "a != b",
    "a == `[1]`", "a == `{\"b\": 1}`", "a == 'x'",
    "a < `1`", "a <= b", "a > 'm'", "a >= `0.5`", "b < a",
    "a && b", "a || b", "!a", "!b", "a && !b || c", "!(a == `0`)",
    "length(a)", "length(a) > `2`", "type(a)", "contains(a, 'x')", "to_string(a)",
    "temperature == `0` && length(messages) > `4`",
    "messages[?role=='system'] | length(@) == `1`", "a[*].b", "a[:2]", "a.*", "a | [0]",
    "[a, b]", "{x: a, y: b}", "a[] | length(@)", "sort_by(a, &b)", "max_by(a, &b).b",
]

json_scalars = st.one_of(st.none(), st.booleans(), st.integers(-3, 3), st.sampled_from([0.0, 0.5, 1.0, 2.5]),
                         st.sampled_from(["", "x", "m", "a", "zz"]))
json_values = st.recursive(
    json_scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4),
                            st.dictionaries(st.sampled_from(["a", "b", "c", "role"]), inner, max_size=3)),
    max_leaves=10)
bodies = st.dictionaries(st.sampled_from(["a", "b", "c", "temperature", "messages"]), json_values, max_size=4)


def outcome(fn):
    try:
        return "value", _typed(fn())
    except JMESPathError as e:
        return "error", type(e).__name__
    except TypeError:  # jmespath ordering a string against a number (ours: null)
        return "type error", None


def _typed(v):
    """``v`` with every scalar's type kept (True and 1 are equal in Python, not here)."""
    if isinstance(v, list):
        return [_typed(x) for x in v]
    if isinstance(v, dict):
        return {k: _typed(x) for k, x in v.items()}
    return (type(v).__name__, v)


@pytest.mark.parametrize("expression", EXPRESSIONS)
@settings(max_examples=150, deadline=None)
@given(body=bodies)
def test_compiled_expressions_agree_with_jmespath(expression, body):
    compiled, parsed = compile_expression(expression), jmespath.compile(expression)
    expected = outcome(lambda: parsed.search(body))
    if expected[0] != "type error":
        assert outcome(lambda: compiled(body)) == expected


@pytest.mark.parametrize("expression,body,expected", [
    ("a == `true`", {"a": 1}, False),  # Python's 1 == True is not JMESPath's
    ("a == `0`", {"a": False}, False),
    ("!a", {"a": 0}, False),  # 0 is a true value in JMESPath
    ("a && b", {"a": 0, "b": "y"}, "y"),
    ("a || b", {"a": [], "b": "y"}, "y"),
    ("a < `1`", {"a": "0"}, None),  # a string against a number: no order (jmespath raises TypeError)
    ("a < 'b'", {"a": "a"}, True),
])
def test_jmespath_quirks(expression, body, expected):
    got = compile_expression(expression)(body)
    assert got == expected and type(got) is type(expected)


@pytest.mark.parametrize("expression,body,holds", [
    ("temperature", {"temperature": 0}, True),  # 0 is true in JMESPath
    ("temperature", {}, False), ("tools", {"tools": []}, False), ("stop", {"stop": ""}, False),
    ("length(max_tokens) > `1`", {"max_tokens": 5}, False),  # a function's type error: false
    ("temperature > `0.5`", {"temperature": "hot"}, False),  # no order: false
    ("messages[?content > `1`]", {"messages": [{"content": "x"}]}, False),  # jmespath's TypeError
    ("max_tokens > `10` && !stream", {"max_tokens": 11, "stream": False}, True),
])
def test_predicates_are_jmespath_truth_and_never_raise(expression, body, holds):
    assert predicate(expression)(body) is holds


def test_a_bad_expression_raises_jmespaths_error():
    with pytest.raises(JMESPathError):
        compile_expression("a[?")
