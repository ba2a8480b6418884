"""The security state of one server: keys, the admin key, rate limits, abuse tracking and
injection detection, built from the settings and changed at run time through /admin."""

from __future__ import annotations

from .abuse import AbuseTracker, Thresholds
from .keys import KeyRing, read_key_values
from .ratelimit import Limiter, Policy, storage_for


class Security:
    def __init__(self, settings, shared_dir: str | None = None) -> None:
        self.keys = KeyRing()
        for key in read_key_values(settings.api_key):
            self.keys.create(key, name="config", source="config")
        self.auth_on = len(self.keys) > 0
        self.admin: KeyRing | None = None
        if settings.admin_key:
            self.admin = KeyRing()
            self.admin.create(settings.admin_key, name="admin", source="config")
        self.public_health = settings.public_health
        self.public_metrics = settings.public_metrics
        self.limiter = Limiter(Policy.from_values(settings), storage_for(settings, shared_dir))
        self.abuse = AbuseTracker(Thresholds.from_settings(settings)) if settings.abuse_detection else None
        self.injection = settings.injection_detection
        self.refresh()

    def refresh(self) -> None:
        """Recompute what the guard has to do per request (after any change)."""
        # a pass for every request (besides those of keys limited to some models)
        self.per_request = self.limiter.enabled or self.injection != "off"
        self.active = self.per_request or self.auth_on or self.admin is not None or self.abuse is not None

    async def scrape_allowed(self, authorization: str | None) -> bool:
        """May a scrape of a listener outside the app (the DCGM exporter port) be answered?
        As for ``/metrics``: yes with authentication off or ``public_metrics``, else only with
        a valid key (``Authorization: Bearer``)."""
        if not self.auth_on or self.public_metrics:
            return True
        scheme, _, key = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not key.strip():
            return False
        key = key.strip()
        if await self.keys.verify(key) is not None:
            return True
        return self.admin is not None and await self.admin.verify(key) is not None

    def oversize(self, ip: str) -> None:
        """RequestMeta's report of a 413 (an abuse strike)."""
        if self.abuse is not None:
            self.abuse.record(ip, "oversize")

    def set_config_keys(self, keys: list[str]) -> int:
        """Replace the keys that came from configuration (admin-created keys stay)."""
        new = read_key_values(keys)  # first: a bad keys file changes nothing
        for record in self.keys.records():
            if record.source == "config":
                self.keys.revoke(record.id)
        for key in new:
            self.keys.create(key, name="config", source="config")
        if keys:
            self.auth_on = True
        self.refresh()
        return len(self.keys)

    def set_policy(self, policy: Policy) -> None:
        self.limiter.configure(policy)
        self.refresh()
