"""JSON shape limits and the per-route body size table."""

from __future__ import annotations

import pytest

from fakeai.config import Settings
from fakeai.security.inputs import ShapeError, check_shape, route_limits


def nested(depth: int):
    node: object = 1
    for i in range(depth):
        node = [node] if i % 2 else {"k": node}
    return node


def test_depth_limit():
    check_shape(nested(10), max_depth=10, max_items=100)
    with pytest.raises(ShapeError, match="nested more than 9 levels"):
        check_shape(nested(10), max_depth=9, max_items=100)
    check_shape({"a": 1, "b": "x" * 1000}, max_depth=1, max_items=1)  # scalars do not count


def test_array_limit():
    check_shape({"input": list(range(100))}, max_depth=5, max_items=100)
    with pytest.raises(ShapeError, match="an array has 101 items, more than the limit of 100"):
        check_shape({"input": [[1], list(range(101))]}, max_depth=5, max_items=100)


def test_route_limits():
    assert route_limits(Settings()) == (("/admin/", 1024 * 1024),)
    assert route_limits(Settings(max_request_bytes=4096)) == (("/admin/", 4096),)
