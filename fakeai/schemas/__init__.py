"""Pydantic wire models, one module per API area."""

from __future__ import annotations


def build_deferred() -> int:
    """Build the validators of every wire model still deferred (``STRICT``'s ``defer_build``);
    the number built. Run off the event loop after start-up, so no request pays for it."""
    from pydantic import BaseModel

    built, todo = 0, list(BaseModel.__subclasses__())
    while todo:
        cls = todo.pop()
        todo.extend(cls.__subclasses__())
        if cls.__module__.startswith("fakeai.schemas.") and not cls.__pydantic_complete__:
            cls.model_rebuild()
            built += 1
    return built
