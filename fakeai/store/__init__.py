"""Persistence for everything a user creates: see ``base.Store`` for the interface."""

from __future__ import annotations

from .base import BlobInfo, BlobTooLarge, CounterRow, Doc, Page, Store, StoreError


def open_store(settings) -> Store:
    """The store ``settings.store`` names (not yet opened: ``await store.open()``)."""
    if settings.store == "redis":
        from .redis import RedisStore

        return RedisStore(settings.redis_url)
    from .sqlite import SQLiteStore

    return SQLiteStore(settings.data_dir if settings.store == "sqlite" else None)


__all__ = ["BlobInfo", "BlobTooLarge", "CounterRow", "Doc", "Page", "Store", "StoreError", "open_store"]
