"""JMESPath expressions compiled to Python closures, for the scenario matchers.

``jmespath.search`` walks the expression's tree on every call, dispatching each node
by name through a fresh interpreter: ~4.5 µs for ``temperature == `0` && length(messages)
> `4```, more than the rest of a request's matching. The nodes a matcher typically
uses (fields, sub-expressions, literals, comparisons, ``&&`` ``||`` ``!``, indexes,
pipes and functions) become nested closures here with jmespath's own semantics;
any other node (projections, filters, slices, multi-selects) is left to jmespath's
interpreter, so every expression evaluates as ``jmespath.search`` does
(tests/unit/test_jmespath_compile.py checks this on generated bodies), with one
exception: ordering a string against a number gives null here, where jmespath raises
Python's TypeError.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from functools import cache, partial
from numbers import Number
from typing import Any

Fn = Callable[[Any], Any]


@cache
def _interpreter():
    from jmespath.visitor import TreeInterpreter

    return TreeInterpreter()


def compile_expression(expression: str) -> Fn:
    """``body -> value`` for ``expression``; jmespath's errors propagate (JMESPathError)."""
    import jmespath

    return _compile(jmespath.compile(expression).parsed)


def predicate(expression: str) -> Callable[[Any], bool]:
    """``body -> bool``: is ``expression``'s value true in JMESPath's sense (anything but
    null, false, "", [] and {}; 0 is true)? An error while evaluating it (a function given
    the wrong type, say ``length(`5`)``) makes it false, never an exception."""
    from jmespath.exceptions import JMESPathError

    fn = compile_expression(expression)

    def holds(body) -> bool:
        try:
            return not _false(fn(body))
        except (JMESPathError, TypeError):
            return False
    return holds


def _number(x) -> bool:
    """A number and not a bool (Python's bools are ints)."""
    return type(x) is int or type(x) is float or (not isinstance(x, bool) and isinstance(x, Number))


def _equals(x, y) -> bool:
    # jmespath: 0 and 1 never equal false and true (Python says they do); a bool is never
    # equal to any other non-bool either, so "equal and both or neither bool" is the rule
    return x == y and (type(x) is bool) == (type(y) is bool)


def _false(v) -> bool:
    """JMESPath's false values: "", [], {}, null and false (0 is true)."""
    return v is None or v is False or v == "" or v == [] or v == {}


_ORDER = {"lt": operator.lt, "gt": operator.gt, "lte": operator.le, "gte": operator.ge}


def _compile(node: dict) -> Fn:
    kind = node["type"]
    kids = node.get("children", ())
    if kind == "field":
        name = node["value"]

        def field(v):
            try:
                return v.get(name)
            except AttributeError:
                return None
        return field
    if kind == "literal":
        value = node["value"]
        return lambda v: value
    if kind in ("current", "identity"):
        return lambda v: v
    if kind in ("subexpression", "index_expression", "pipe"):
        steps = [_compile(k) for k in kids]

        def chain(v):
            for step in steps:
                v = step(v)
            return v
        return chain
    if kind == "index":
        i = node["value"]

        def index(v):
            if not isinstance(v, list):
                return None
            try:
                return v[i]
            except IndexError:
                return None
        return index
    if kind == "comparator":
        left, right = _compile(kids[0]), _compile(kids[1])
        op = node["value"]
        if op == "eq":
            return lambda v: _equals(left(v), right(v))
        if op == "ne":
            return lambda v: not _equals(left(v), right(v))
        order = _ORDER[op]

        def compare(v):
            a, b = left(v), right(v)
            if (_number(a) and _number(b)) or (isinstance(a, str) and isinstance(b, str)):
                return order(a, b)
            return None  # only two numbers or two strings have an order
        return compare
    if kind == "and_expression":
        left, right = _compile(kids[0]), _compile(kids[1])

        def both(v):
            a = left(v)
            return a if _false(a) else right(v)
        return both
    if kind == "or_expression":
        left, right = _compile(kids[0]), _compile(kids[1])

        def either(v):
            a = left(v)
            return right(v) if _false(a) else a
        return either
    if kind == "not_expression":
        inner = _compile(kids[0])

        def negate(v):
            a = inner(v)
            if _number(a) and a == 0:
                return False  # !0 is false: 0 is a true value in JMESPath
            return not a
        return negate
    if kind == "function_expression":
        args = [_compile(k) for k in kids]
        call, name = _interpreter()._functions.call_function, node["value"]
        return lambda v: call(name, [a(v) for a in args])
    return partial(_interpreter().visit, node)
