"""API keys created through ``/admin/keys``: kept in the store, followed by every process.

A key is stored only as its record (argon2id hash, tag, scope; never the key), so it
survives a restart and every process of the deployment (``--workers N``, replicas
sharing Redis) accepts it: each process re-reads the stored keys every ``interval``
seconds and adds the new ones to its key ring and drops the revoked ones. A key
works at once on the process that created it and within ``interval`` on the others.
Keys from configuration (``--api-key``) are not stored: each process has them.
"""

from __future__ import annotations

import asyncio
import time

from ..periodic import Periodic
from ..security.keys import KeyRecord, Scope, make_record

KIND = "fakeai_api_key"
SYNC_S = 1.0


class StoredKeys:
    def __init__(self, store, security, interval: float = SYNC_S) -> None:
        self.store = store
        self.security = security
        self._made: dict[str, float] = {}  # keys made here -> when the store had them (monotonic)
        self._rounds = Periodic(interval, self.sync, "API key sync")

    async def open(self) -> None:
        await self.sync()
        self._rounds.start()

    async def close(self) -> None:
        await self._rounds.stop()

    async def create(self, name: str, scope: Scope) -> tuple[str, KeyRecord]:
        from ..security.keys import new_key

        key = new_key()
        # argon2 takes a few ms: off the event loop
        record = await asyncio.get_running_loop().run_in_executor(None, make_record, key, name, scope)
        await self.store.put(KIND, record.to_doc())
        self._made[record.id] = time.monotonic()
        self._add(record)
        return key, record

    async def revoke(self, key_id: str) -> bool:
        record = self.security.keys.get(key_id)
        if record is None:
            return False
        if record.source == "admin":  # a configured key is revoked in this process only
            await self.store.delete(KIND, key_id)
        self.security.keys.revoke(key_id)
        self.security.refresh()
        return True

    def _add(self, record: KeyRecord) -> None:
        sec = self.security
        sec.keys.add(record)
        sec.auth_on = True
        sec.refresh()

    async def sync(self) -> None:
        """Take up the keys other processes created and drop those they revoked."""
        keys = self.security.keys
        began = time.monotonic()
        stored = {doc["id"]: doc async for doc in self.store.scan(KIND)}
        changed = False
        for key_id, doc in stored.items():
            if keys.get(key_id) is None:
                keys.add(KeyRecord.from_doc(doc))
                changed = True
        for record in keys.records():
            # gone from the store: revoked elsewhere (unless made here after this scan began)
            if record.source == "admin" and record.id not in stored and self._made.get(record.id, 0.0) < began:
                keys.revoke(record.id)
                changed = True
        self._made = {k: t for k, t in self._made.items() if began - t < 60.0}
        if changed:
            if stored:
                self.security.auth_on = True
            self.security.refresh()
