"""Who made a request, for usage accounting: API key id, project, user, batch.

The authentication layer may have put ``api_key_id`` / ``project_id`` / ``user_id``
in the ASGI scope's state; otherwise the id is derived from the presented key
(``Authorization: Bearer``, or ``x-api-key`` / ``api-key`` for Anthropic and
Azure clients): ``key_`` + a BLAKE2b keyed with a per-installation secret kept in
the store. The id is stable across restarts and replicas sharing the store, and
reveals nothing of the key. The raw key is never stored or returned; only its
redacted form (``sk-...wxyz``, the tail shown only for long keys) is kept for
the organization's API key list.
"""

from __future__ import annotations

import asyncio
import hashlib
import os

from ..store import Store

DEFAULT_PROJECT = "proj_default"
_SECRET_KIND, _SECRET_ID = "fakeai_secret", "usage-key-ids"
_KEY_HEADERS = (b"authorization", b"x-api-key", b"api-key")
_MAX_KNOWN = 10_000  # distinct keys remembered for the organization's key list


def redact(token: str) -> str:
    """OpenAI's ``sk-...wxyz`` form: the key's kind prefix (``sk-``, ``sk-proj-``,
    ``sk-svcacct-``; else its first two characters), and its last four characters only
    when at least 28 others stay hidden."""
    head = "sk-" if token.startswith("sk-") else token[:2]
    if token.startswith("sk-proj-"):
        head = "sk-proj-"
    elif token.startswith("sk-svcacct-"):
        head = "sk-svcacct-"
    tail = token[-4:] if len(token) - len(head) - 4 >= 28 else "****"
    return f"{head}...{tail}"


class KeyIds:
    """Derives request identities; ``owners`` maps known key ids to (project, user)."""

    def __init__(self, secret: bytes | None = None) -> None:
        self._secret = secret or os.urandom(32)
        self.owners: dict[str, tuple[str, str | None]] = {}
        self.default_user: str | None = None
        self._redacted: dict[str, str] = {}
        # header value -> key id, by Python's hash of the bytes (SipHash under a per-process
        # random key: the raw key itself is not kept); saves parsing and hashing each request
        self._ids: dict[int, str | None] = {}

    async def open(self, store: Store) -> None:
        """Load (or create, once across every process sharing ``store``) the hashing secret."""
        doc = await store.get(_SECRET_KIND, _SECRET_ID)
        if doc is None:
            owner = os.urandom(8).hex()
            while not await store.claim("usage-key-secret", owner, 10.0):
                await asyncio.sleep(0.05)
            try:
                doc = await store.get(_SECRET_KIND, _SECRET_ID)
                if doc is None:
                    doc = {"id": _SECRET_ID, "key": os.urandom(32).hex()}
                    await store.put(_SECRET_KIND, doc)
            finally:
                await store.release("usage-key-secret", owner)
        self._secret = bytes.fromhex(doc["key"])
        self._ids.clear()
        self._redacted.clear()

    def key_id(self, token: str) -> str:
        return "key_" + hashlib.blake2b(token.encode(), key=self._secret, digest_size=12).hexdigest()

    def of(self, scope) -> tuple[str | None, str, str | None, bool]:
        """(api_key_id, project_id, user_id, batch) of a request's ASGI scope (worked out once
        per request: the metrics, usage and rate-limit observers all ask)."""
        state = scope.get("state")
        if state is None:
            state = {}
        else:
            known = state.get("_key_ids")
            if known is not None and known[0] == state.get("api_key_id"):
                return known[1]
        out = self._of(scope, state)
        state["_key_ids"] = (state.get("api_key_id"), out)
        return out

    def _of(self, scope, state: dict) -> tuple[str | None, str, str | None, bool]:
        kid = state.get("api_key_id")
        pid = state.get("project_id")
        uid = state.get("user_id")
        if kid is None:
            for name, value in scope.get("headers") or ():
                if name in _KEY_HEADERS:
                    h = hash((name, value))
                    if h in self._ids:
                        kid = self._ids[h]
                    else:
                        kid = self._derive(name, value)
                        if len(self._ids) >= _MAX_KNOWN:
                            self._ids.clear()
                        self._ids[h] = kid
                    if kid is not None:
                        break
        if kid is not None and (pid is None or uid is None):
            owner = self.owners.get(kid)
            if owner is not None:
                pid = pid or owner[0]
                uid = uid or owner[1]
        return kid, pid or DEFAULT_PROJECT, uid or self.default_user, bool(state.get("batch_id"))

    def _derive(self, name: bytes, value: bytes) -> str | None:
        token = _token(name, value)
        if not token:
            return None
        kid = self.key_id(token)
        if kid not in self._redacted and len(self._redacted) < _MAX_KNOWN:
            self._redacted[kid] = redact(token)
        return kid

    def redacted(self, key_id: str) -> str | None:
        """The redacted form of a key this process has seen (None for ids set by auth)."""
        return self._redacted.get(key_id)


def _token(name: bytes, value: bytes) -> str | None:
    """The key in one header (``Authorization: Bearer KEY``, ``x-api-key: KEY``), if any."""
    text = value.decode("latin-1").strip()
    if name == b"authorization":
        scheme, _, text = text.partition(" ")
        if scheme.lower() != "bearer":
            return None
        text = text.strip()
    return text or None
