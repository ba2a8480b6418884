"""Where generated images wait for their URL to be fetched: in memory, bounded, expiring.

An LRU of encoded files capped in total bytes (256 MB by default): adding an
image past the cap drops the least recently used ones, and every entry
expires ``ttl_s`` seconds after it was stored (``--image-ttl-s``, OpenAI's
URLs last 60 minutes). Expired entries are dropped when met and swept on every
``put``, so the store never grows without bound. Nothing survives a restart:
persistent storage is for the store layer (see docs/images.md).

Used from the event loop only (no locking).
"""

from __future__ import annotations

import os
import time
from collections import OrderedDict
from dataclasses import dataclass

DEFAULT_MAX_BYTES = 256 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class StoredImage:
    data: bytes
    media_type: str
    expires: float  # time.monotonic() deadline


class ImageStore:
    def __init__(self, ttl_s: float, max_bytes: int = DEFAULT_MAX_BYTES, clock=time.monotonic) -> None:
        self.ttl_s = ttl_s
        self.max_bytes = max_bytes
        self._clock = clock
        self._items: OrderedDict[str, StoredImage] = OrderedDict()
        self._bytes = 0

    def __len__(self) -> int:
        return len(self._items)

    @property
    def nbytes(self) -> int:
        return self._bytes

    def put(self, data: bytes, media_type: str) -> str:
        """Keep ``data``; return its new id (``img-`` + 24 hex digits)."""
        image_id = "img-" + os.urandom(12).hex()
        now = self._clock()
        self._sweep(now)
        self._items[image_id] = StoredImage(data, media_type, now + self.ttl_s)
        self._bytes += len(data)
        while self._bytes > self.max_bytes and len(self._items) > 1:
            self._drop(next(iter(self._items)))
        return image_id

    def get(self, image_id: str) -> StoredImage | None:
        """The image, or None once it expired, was evicted or never existed."""
        item = self._items.get(image_id)
        if item is None:
            return None
        if item.expires <= self._clock():
            self._drop(image_id)
            return None
        self._items.move_to_end(image_id)
        return item

    def remaining_s(self, item: StoredImage) -> float:
        return max(0.0, item.expires - self._clock())

    def _sweep(self, now: float) -> None:
        # A full scan: `get` reorders entries for the LRU but keeps their deadlines, so
        # expired ones can sit anywhere. The byte cap bounds how many there are.
        for image_id in [k for k, v in self._items.items() if v.expires <= now]:
            self._drop(image_id)

    def _drop(self, image_id: str) -> None:
        self._bytes -= len(self._items.pop(image_id).data)
