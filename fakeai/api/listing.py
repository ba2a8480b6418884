"""OpenAI's cursor pagination for list endpoints: query parameters in, list object out."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request

from ..store import Page
from .errors import APIError


@dataclass(slots=True)
class Cursor:
    after: str | None
    before: str | None
    limit: int
    order: str


def cursor(request: Request, default_limit: int = 20, max_limit: int = 100,
           default_order: str = "desc") -> Cursor:
    """``after``, ``before``, ``limit`` and ``order`` from the query string, checked (400 if bad)."""
    q = request.query_params
    raw = q.get("limit")
    if raw is None:
        limit = default_limit
    else:
        try:
            limit = int(raw)
        except ValueError:
            raise APIError(400, f"Invalid 'limit': expected an integer, but got {raw!r} instead.",
                           param="limit", code="invalid_type") from None
        if not 1 <= limit <= max_limit:
            raise APIError(400, f"Invalid 'limit': integer must be between 1 and {max_limit}, got {limit}.",
                           param="limit", code="invalid_value")
    order = q.get("order", default_order)
    if order not in ("asc", "desc"):
        raise APIError(400, f"Invalid 'order': expected 'asc' or 'desc', but got {order!r} instead.",
                       param="order", code="invalid_value")
    return Cursor(q.get("after") or None, q.get("before") or None, limit, order)


def list_object(page: Page, items: list[dict] | None = None, **extra) -> dict:
    """OpenAI's list envelope (``first_id``/``last_id`` as the newer list endpoints give them)."""
    data = page.items if items is None else items
    return {"object": "list", "data": data,
            "first_id": data[0]["id"] if data else None,
            "last_id": data[-1]["id"] if data else None,
            "has_more": page.has_more, **extra}
