"""API keys: kept only as argon2id hashes, found fast, verified once per key per process.

A presented key is looked up in two steps:

1. **verified cache**: a keyed BLAKE2 fingerprint of the key (the key of the hash is a
   random per-process salt, so the fingerprint is useless outside this process) maps to
   the record it was verified against. The dict is indexed by the fingerprint's first
   8 bytes and the full fingerprint is compared with ``hmac.compare_digest``.
2. **tag index** on a miss: a 16-bit BLAKE2 tag of the key narrows the records to the
   few that could match (usually none or one); each candidate's argon2 hash is verified
   (a few ms, off the event loop), and a success fills the cache.

So the argon2 cost is paid once per key per process, a wrong key almost never pays it
(only when its tag collides with a real key's), and no raw key is ever stored.

``KeyRing`` is the in-memory registry; ``KeyRecord.to_doc``/``from_doc`` are the stored
form a persistent backend keeps (see docs/security.md).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import os
import secrets
import time
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

_TAG_PERSON = b"fakeai-key-tag"
_CACHE_MAX = 65536
_REJECTED_MAX = 4096


@lru_cache(maxsize=1)
def _hasher():
    """argon2id (imported on first use: a server without keys never loads it). Keys are long
    random strings, not passwords: a light profile (~5 ms a hash) is plenty, and keeps
    start-up quick with a file of many keys."""
    from argon2 import PasswordHasher
    return PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1)


def tag_of(key: str) -> str:
    """The 16-bit lookup tag of a key (public: it narrows candidates, it proves nothing)."""
    return hashlib.blake2b(key.encode(), digest_size=2, person=_TAG_PERSON).hexdigest()


def mask(key: str) -> str:
    """A key as error messages show it: ``sk-ab***xyz`` (at most 8 of its characters)."""
    if len(key) < 16:
        return "***"
    return key[:5] + "***" + key[-3:]


def new_key() -> str:
    return "sk-fakeai-" + secrets.token_urlsafe(32)


@dataclass(frozen=True, slots=True)
class Scope:
    """What a key may do: ``models`` and ``endpoints`` (path prefixes) allow-lists (None:
    all) and ``read_only`` (GET and HEAD only)."""

    models: frozenset[str] | None = None
    endpoints: tuple[str, ...] | None = None
    read_only: bool = False

    @property
    def unrestricted(self) -> bool:
        return self.models is None and self.endpoints is None and not self.read_only

    def missing_for(self, method: str, path: str) -> str | None:
        """The scope a request to ``method path`` lacks, or None if allowed."""
        if self.read_only and method not in ("GET", "HEAD"):
            return "api.write"
        if self.endpoints is not None and not any(path == e or path.startswith(e.rstrip("/") + "/")
                                                  for e in self.endpoints):
            return "api.endpoint:" + path
        return None

    def allows_model(self, model_id: str) -> bool:
        return self.models is None or model_id in self.models

    def as_dict(self) -> dict[str, Any]:
        return {"models": None if self.models is None else sorted(self.models),
                "endpoints": None if self.endpoints is None else list(self.endpoints),
                "read_only": self.read_only}

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> Scope:
        d = d or {}
        models, endpoints = d.get("models"), d.get("endpoints")
        return cls(None if models is None else frozenset(models),
                   None if endpoints is None else tuple(endpoints), bool(d.get("read_only")))


@dataclass(slots=True)
class KeyRecord:
    id: str
    name: str
    prefix: str  # the first characters, to recognise a key in a listing
    tag: str
    hash: str  # argon2id, salted
    scope: Scope = field(default_factory=Scope)
    created_at: int = 0
    source: str = "admin"  # "config" (flags, env, file) or "admin"

    def public(self) -> dict[str, Any]:
        """What a listing shows: never the hash, never the key."""
        return {"object": "api_key", "id": self.id, "name": self.name, "prefix": self.prefix,
                "created_at": self.created_at, "source": self.source, **self.scope.as_dict()}

    def to_doc(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "prefix": self.prefix, "tag": self.tag, "hash": self.hash,
                "scope": self.scope.as_dict(), "created_at": self.created_at, "source": self.source}

    @classmethod
    def from_doc(cls, d: dict[str, Any]) -> KeyRecord:
        return cls(d["id"], d["name"], d["prefix"], d["tag"], d["hash"], Scope.from_dict(d.get("scope")),
                   d.get("created_at", 0), d.get("source", "admin"))


def make_record(key: str, name: str = "", scope: Scope = Scope(), source: str = "admin") -> KeyRecord:
    prefix = key[: min(len(key) // 4, 14)]  # enough to recognise a key, far too little to guess it
    return KeyRecord(id="key_" + secrets.token_hex(12), name=name, prefix=prefix, tag=tag_of(key),
                     hash=_hasher().hash(key), scope=scope, created_at=int(time.time()), source=source)


def read_key_values(values: list[str]) -> list[str]:
    """The keys named by ``--api-key`` values: a value starting with ``@``, or naming an
    existing file, is a file of keys (one per line; blank lines and ``#`` comments skipped)."""
    keys: list[str] = []
    for v in values:
        path = v.removeprefix("@")
        if v.startswith("@") or (len(v) < 4096 and Path(path).is_file()):
            try:
                text = Path(path).expanduser().read_text(encoding="utf-8")
            except OSError as e:
                raise ValueError(f"api_key: cannot read the keys file {path}: {e.strerror}") from None
            keys.extend(s for line in text.splitlines() if (s := line.strip()) and not s.startswith("#"))
        elif v.strip():
            keys.append(v.strip())
    return list(dict.fromkeys(keys))


class KeyRing:
    """The key registry: records by id, a tag index and the verified cache."""

    def __init__(self) -> None:
        self._salt = os.urandom(32)
        self._by_id: dict[str, KeyRecord] = {}
        self._by_tag: dict[str, list[KeyRecord]] = {}
        self._verified: dict[bytes, tuple[bytes, str]] = {}  # fp[:8] -> (fp, record id)
        self._rejected: dict[bytes, None] = {}  # fingerprints that failed argon2
        self._pending: dict[bytes, asyncio.Future] = {}
        self.version = 0  # changes with every key added or revoked

    def __len__(self) -> int:
        return len(self._by_id)

    def records(self) -> list[KeyRecord]:
        return list(self._by_id.values())

    def get(self, key_id: str) -> KeyRecord | None:
        return self._by_id.get(key_id)

    def add(self, record: KeyRecord) -> None:
        self.version += 1
        self._by_id[record.id] = record
        self._by_tag.setdefault(record.tag, []).append(record)
        self._rejected.clear()  # a new key may be one that failed before

    def create(self, key: str | None = None, name: str = "", scope: Scope = Scope(),
               source: str = "admin") -> tuple[str, KeyRecord]:
        key = key or new_key()
        record = make_record(key, name, scope, source)
        self.add(record)
        return key, record

    def revoke(self, key_id: str) -> KeyRecord | None:
        self.version += 1
        record = self._by_id.pop(key_id, None)
        if record is not None:
            bucket = self._by_tag.get(record.tag, [])
            bucket[:] = [r for r in bucket if r.id != key_id]
            if not bucket:
                self._by_tag.pop(record.tag, None)
            self._verified = {k: v for k, v in self._verified.items() if v[1] != key_id}
        return record

    def _fingerprint(self, key: str) -> bytes:
        return hashlib.blake2b(key.encode(), digest_size=32, key=self._salt).digest()

    def cached(self, key: str) -> tuple[bytes, KeyRecord | None, bool]:
        """(fingerprint, record, decided): decided is False when argon2 must settle it."""
        fp = self._fingerprint(key)
        hit = self._verified.get(fp[:8])
        if hit is not None and hmac.compare_digest(hit[0], fp):
            record = self._by_id.get(hit[1])
            if record is not None:
                return fp, record, True
        if fp in self._rejected or tag_of(key) not in self._by_tag:
            return fp, None, True
        return fp, None, False

    def lookup(self, key: str) -> KeyRecord | None | bool:
        """The record of ``key`` or None when that is known without argon2; else False
        (then ``await verify(key)``)."""
        fp, record, decided = self.cached(key)
        return record if decided else False

    async def verify(self, key: str) -> KeyRecord | None:
        """The record of ``key``, or None. Pays argon2 (in a worker thread) on a cache miss."""
        fp, record, decided = self.cached(key)
        if decided:
            return record
        pending = self._pending.get(fp)
        if pending is None:  # one verification per key, however many requests wait for it
            candidates = list(self._by_tag.get(tag_of(key), ()))
            pending = asyncio.get_running_loop().run_in_executor(None, _match, candidates, key)
            self._pending[fp] = pending
            try:
                record = await pending
            finally:
                self._pending.pop(fp, None)
            self._remember(fp, record)
        else:
            record = await pending
        return record if record is not None and record.id in self._by_id else None

    def _remember(self, fp: bytes, record: KeyRecord | None) -> None:
        if record is None:
            if len(self._rejected) >= _REJECTED_MAX:
                self._rejected.pop(next(iter(self._rejected)))
            self._rejected[fp] = None
            return
        if len(self._verified) >= _CACHE_MAX:
            self._verified.pop(next(iter(self._verified)))
        self._verified[fp[:8]] = (fp, record.id)


def _match(candidates: list[KeyRecord], key: str) -> KeyRecord | None:
    from argon2.exceptions import InvalidHashError, VerificationError

    hasher = _hasher()
    for record in candidates:
        try:
            if hasher.verify(record.hash, key):
                return record
        except (VerificationError, InvalidHashError):
            continue
    return None
