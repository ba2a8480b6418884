"""API keys: argon2id hashes only, the keys file, masking, scopes, and a lookup that pays
argon2 once per key per process and almost never for a wrong key."""

from __future__ import annotations

import asyncio
import hashlib

import pytest

from fakeai.security import keys as keys_mod
from fakeai.security.keys import KeyRecord, KeyRing, Scope, mask, read_key_values, tag_of


class CountingHasher:
    """A fast stand-in for argon2 that counts verifications."""

    def __init__(self) -> None:
        self.verified = 0

    def hash(self, key: str) -> str:
        return "fake$" + hashlib.sha256(key.encode()).hexdigest()

    def verify(self, h: str, key: str) -> bool:
        from argon2.exceptions import VerifyMismatchError

        self.verified += 1
        if h != self.hash(key):
            raise VerifyMismatchError()
        return True


@pytest.fixture
def fast(monkeypatch) -> CountingHasher:
    hasher = CountingHasher()
    monkeypatch.setattr(keys_mod, "_hasher", lambda: hasher)
    return hasher


def test_keys_are_stored_only_as_salted_argon2id_hashes():
    ring = KeyRing()
    key = "sk-test-0123456789abcdef0123456789"
    _, a = ring.create(key)
    _, b = KeyRing().create(key)
    assert a.hash.startswith("$argon2id$")
    assert a.hash != b.hash  # salted
    doc = a.to_doc()
    assert key not in str(doc) and key not in str(a.public())
    assert KeyRecord.from_doc(doc) == a
    assert asyncio.run(ring.verify(key)) is a
    assert asyncio.run(ring.verify(key + "x")) is None


def test_a_key_is_verified_with_argon2_once_per_process(fast):
    ring = KeyRing()
    key, record = ring.create()
    assert key.startswith("sk-fakeai-") and len(key) > 40

    async def many() -> list:
        return await asyncio.gather(*(ring.verify(key) for _ in range(50)))

    assert asyncio.run(many()) == [record] * 50
    assert fast.verified == 1  # concurrent first uses share one verification
    for _ in range(100):
        assert asyncio.run(ring.verify(key)) is record
    assert fast.verified == 1


def test_lookup_stays_fast_with_many_keys(fast):
    ring = KeyRing()
    made = [ring.create(f"sk-many-{i:06d}-padding-padding")[0] for i in range(5000)]
    target = made[1234]
    fast.verified = 0
    assert asyncio.run(ring.verify(target)).prefix == target[: len(target) // 4]
    assert fast.verified <= 3  # only the few keys sharing its 16-bit tag, not 5,000
    # a wrong key whose tag matches no key costs no argon2 at all
    wrong = next(f"sk-wrong-{i}" for i in range(10**6) if tag_of(f"sk-wrong-{i}") not in ring._by_tag)
    fast.verified = 0
    assert asyncio.run(ring.verify(wrong)) is None
    assert fast.verified == 0


def test_a_failed_key_is_not_verified_again_until_keys_change(fast):
    ring = KeyRing()
    ring.create("sk-real-key-aaaaaaaaaaaaaaaaaaaa")
    # a wrong key that shares the real key's tag pays argon2 once, then is remembered
    real_tag = tag_of("sk-real-key-aaaaaaaaaaaaaaaaaaaa")
    twin = next(f"sk-twin-{i}" for i in range(10**7) if tag_of(f"sk-twin-{i}") == real_tag)
    assert asyncio.run(ring.verify(twin)) is None
    assert asyncio.run(ring.verify(twin)) is None
    assert fast.verified == 1
    _, added = ring.create(twin)  # the same text becomes a key: it works at once
    assert asyncio.run(ring.verify(twin)) is added


def test_revoked_keys_stop_working_at_once(fast):
    ring = KeyRing()
    key, record = ring.create()
    assert asyncio.run(ring.verify(key)) is record  # cached
    assert ring.revoke(record.id) is record
    assert asyncio.run(ring.verify(key)) is None
    assert ring.revoke(record.id) is None
    assert len(ring) == 0


def test_keys_file_values(tmp_path):
    f = tmp_path / "keys.txt"
    f.write_text("# comment\n\nsk-one-aaaaaaaaaaaaaaaa\n  sk-two-bbbbbbbbbbbbbbbb  \nsk-one-aaaaaaaaaaaaaaaa\n")
    assert read_key_values(["sk-lit-cccccccccc", f"@{f}"]) == [
        "sk-lit-cccccccccc", "sk-one-aaaaaaaaaaaaaaaa", "sk-two-bbbbbbbbbbbbbbbb"]
    assert read_key_values([str(f)]) == ["sk-one-aaaaaaaaaaaaaaaa", "sk-two-bbbbbbbbbbbbbbbb"]
    with pytest.raises(ValueError, match="cannot read the keys file"):
        read_key_values([f"@{tmp_path / 'missing.txt'}"])


def test_mask_shows_at_most_eight_characters():
    key = "sk-proj-abcdefghijklmnopqrstuvwxyz0123456789"
    shown = mask(key)
    assert shown == "sk-pr***789"
    assert len(shown.replace("***", "")) == 8
    assert mask("sk-short") == "***"


def test_scopes():
    s = Scope(models=frozenset({"gpt-4o-mini"}), endpoints=("/v1/chat/completions", "/v1/models"), read_only=False)
    assert s.allows_model("gpt-4o-mini") and not s.allows_model("gpt-4o")
    assert s.missing_for("POST", "/v1/chat/completions") is None
    assert s.missing_for("GET", "/v1/models/gpt-4o") is None
    assert s.missing_for("POST", "/v1/chat/completionsX") == "api.endpoint:/v1/chat/completionsX"
    assert s.missing_for("POST", "/v1/embeddings").startswith("api.endpoint")
    ro = Scope(read_only=True)
    assert ro.missing_for("GET", "/v1/files") is None and ro.missing_for("DELETE", "/v1/files/x") == "api.write"
    assert Scope().unrestricted and not ro.unrestricted
    assert Scope.from_dict(s.as_dict()) == s


@pytest.mark.parametrize("fmt", [[], ["--json"]])
def test_fakeai_config_never_prints_a_secret(capsys, fmt):
    from fakeai.cli import main

    key, admin, password = "sk-secret-0123456789abcdef", "adm-secret-0123456789", "pw-0123456789"
    argv = ["config", *fmt, "--api-key", key, "--api-key", "@keys.txt", "--admin-key", admin,
            "--redis-url", f"redis://:{password}@cache:6379/0"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert key not in out and admin not in out and password not in out
    assert "***" in out and "redis://:***@cache:6379/0" in out


def test_stored_keys_follow_creation_and_revocation_between_processes():
    """Two processes' key rings on one store: a key made on A and revoked on B before A ever
    synced again is still dropped by A (and a key made after a sync began is not)."""
    from fakeai.config import Settings
    from fakeai.security.runtime import Security
    from fakeai.services.admin_keys import StoredKeys
    from fakeai.store.sqlite import SQLiteStore

    async def main():
        store = SQLiteStore(None)  # in memory, shared by both "processes"
        await store.open()
        try:
            a = StoredKeys(store, Security(Settings()), interval=3600)
            b = StoredKeys(store, Security(Settings()), interval=3600)
            await a.sync()
            await b.sync()
            key, record = await a.create("shared", Scope())
            assert await a.security.keys.verify(key) is not None
            await b.sync()
            assert await b.security.keys.verify(key) is not None and b.security.auth_on
            assert await b.revoke(record.id)
            await a.sync()  # A's first look at the store since it made the key
            assert a.security.keys.get(record.id) is None
            assert await a.security.keys.verify(key) is None
        finally:
            await store.close()

    asyncio.run(main())
