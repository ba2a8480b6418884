"""Input validation: JSON nesting depth and array length limits, and the request size
limit of each route (enforced by ``RequestMeta`` while the body is read)."""

from __future__ import annotations

from typing import Any

MiB = 1024 * 1024
ADMIN_MAX_BYTES = 1 * MiB


class ShapeError(ValueError):
    pass


def check_shape(data: Any, max_depth: int, max_items: int) -> None:
    """Raise ``ShapeError`` if ``data`` nests deeper than ``max_depth`` or holds an array of
    more than ``max_items`` items. Only containers are visited; scalars cost nothing."""
    stack: list[tuple[Any, int]] = [(data, 1)]
    pop, push = stack.pop, stack.append
    while stack:
        node, depth = pop()
        if depth > max_depth:
            raise ShapeError(f"Invalid request body: the JSON is nested more than {max_depth} levels deep.")
        if node.__class__ is dict:
            children = node.values()
        else:
            if len(node) > max_items:
                raise ShapeError(f"Invalid request body: an array has {len(node)} items, more than the limit "
                                 f"of {max_items}.")
            children = node
        for child in children:
            cls = child.__class__
            if cls is dict or cls is list:
                push((child, depth + 1))


def route_limits(settings) -> tuple[tuple[str, int], ...]:
    """(path prefix, byte limit) of the routes whose body limit is not ``max_request_bytes``
    (``RequestMeta`` takes the first match). File uploads are not here: ``POST /v1/files``
    and upload parts stream to the store under their own limit (``max_file_bytes``)."""
    return (("/admin/", min(ADMIN_MAX_BYTES, settings.max_request_bytes)),)
