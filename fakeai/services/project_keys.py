"""Project service accounts and API keys.

An API key's id is the usage id of the key (``KeyIds.key_id``), so usage made with
a key is reported under the id the key list shows. Keys come two ways:

* a service account's key, made when the account is created (its value is shown
  once, then only redacted); its usage counts for the account's project and user;
* any key this server sees in traffic (with authentication off every key works),
  listed once used under the default project, owned by the organization owner.

``last_used_at`` follows traffic to within a minute. A deleted key is remembered
(``org_api_key_revoked``) so that it is not listed again when it is used again.
"""

from __future__ import annotations

import secrets
import time

from ..store import Doc, Page
from ..telemetry.keyids import DEFAULT_PROJECT, KeyIds, redact
from ..telemetry.usage import KeysUsed
from .organization import Organization, OrgError, new_id, not_found

_TOUCH_S = 60  # last_used_at is rewritten at most once a minute per key


class ProjectKeys:
    def __init__(self, org: Organization, keys: KeyIds) -> None:
        self.org = org
        self.store = org.store
        self.keys = keys
        self._last_used: dict[str, int] = {}

    async def open(self) -> None:
        """Learn every stored key's project and owner (for usage attribution)."""
        self.keys.default_user = self.org.owner_id
        async for project in self.store.scan("org_project"):
            async for key in self.store.scan("org_api_key", parent=project["id"]):
                self._learn(key)

    def _learn(self, key: Doc) -> None:
        self._last_used[key["id"]] = key.get("last_used_at") or 0
        self.keys.owners[key["id"]] = (key["project_id"], key["owner"]["id"])

    # -- traffic ----------------------------------------------------------------------
    async def keys_used(self, used: KeysUsed) -> None:
        """The usage recorder's report of the keys that served requests (at each flush)."""
        for kid, (redacted, ts) in used.items():
            last = self._last_used.get(kid)
            if last is None:
                doc = await self.store.get("org_api_key", kid)
                if doc is None:
                    if redacted is None or await self.store.get("org_api_key_revoked", kid) is not None:
                        continue  # an id from the auth layer, or a deleted key
                    doc = self._key_doc(kid, "Secret key", redacted, DEFAULT_PROJECT, "user",
                                        self.org.owner_id or "", ts)
                    await self.store.put("org_api_key", doc, parent=DEFAULT_PROJECT)
                self._learn(doc)
                last = self._last_used[kid]
            if ts - last >= _TOUCH_S:
                self._last_used[kid] = ts
                await self.store.update("org_api_key", kid, lambda d, ts=ts: d | {"last_used_at": ts})

    @staticmethod
    def _key_doc(kid: str, name: str, redacted: str, project_id: str, owner_type: str, owner_id: str,
                 last_used: int | None) -> Doc:
        now = int(time.time())
        return {"id": kid, "name": name, "redacted_value": redacted, "created_at": now,
                "last_used_at": last_used, "project_id": project_id,
                "owner": {"type": owner_type, "id": owner_id}}

    # -- API keys ---------------------------------------------------------------------
    async def _access(self, project_id: str) -> set[str]:
        """Ids of the owners with access to the project: its members and service accounts."""
        ids = {m["user_id"] async for m in self.store.scan("org_project_user", parent=project_id)}
        ids.update([s["id"] async for s in self.store.scan("org_service_account", parent=project_id)])
        return ids

    async def render_key(self, doc: Doc) -> Doc:
        owner, pid = doc["owner"], doc["project_id"]
        if owner["type"] == "service_account":
            acct = await self.store.get("org_service_account", owner["id"])
            active = acct is not None
            acct = acct or {"name": "", "created_at": doc["created_at"], "role": "member"}
            shown = {"type": "service_account", "service_account": {
                "id": owner["id"], "name": acct["name"], "created_at": acct["created_at"], "role": acct["role"]}}
        else:
            user = await self.store.get("org_user", owner["id"]) or {}
            member = await self.store.get("org_project_user", f"{pid}/{owner['id']}")
            active = member is not None
            shown = {"type": "user", "user": {
                "id": owner["id"], "email": user.get("email") or "", "name": user.get("name") or "",
                "created_at": user.get("added_at", doc["created_at"]),
                "role": member["role"] if member else "member"}}
        return {"object": "organization.project.api_key", "redacted_value": doc["redacted_value"],
                "name": doc["name"], "created_at": doc["created_at"], "last_used_at": doc["last_used_at"],
                "id": doc["id"], "owner_project_access": "active" if active else "inactive", "owner": shown}

    async def _key(self, project_id: str, key_id: str) -> Doc:
        await self.org.project(project_id)
        doc = await self.store.get("org_api_key", key_id)
        if doc is None or doc["project_id"] != project_id:
            raise not_found("API key", key_id, "api_key_id")
        return doc

    async def key(self, project_id: str, key_id: str) -> Doc:
        return await self.render_key(await self._key(project_id, key_id))

    async def list_keys(self, project_id: str, after: str | None, limit: int,
                        access: str | None) -> tuple[Page, list[Doc]]:
        await self.org.project(project_id)
        match = None
        if access != "any":
            ids = await self._access(project_id)
            want = access != "inactive"
            match = lambda d: (d["owner"]["id"] in ids) == want
        page = await self.store.page("org_api_key", parent=project_id, after=after, limit=limit, order="asc",
                                     match=match)
        return page, [await self.render_key(d) for d in page.items]

    async def delete_key(self, project_id: str, key_id: str) -> None:
        doc = await self._key(project_id, key_id)
        if doc["owner"]["type"] == "service_account":
            raise OrgError(400, "API keys of service accounts cannot be deleted here; delete the service "
                           "account instead.", param="api_key_id", code="invalid_value")
        await self._revoke(key_id)

    async def _revoke(self, key_id: str) -> None:
        await self.store.put("org_api_key_revoked", {"id": key_id, "revoked_at": int(time.time())})
        await self.store.delete("org_api_key", key_id)
        self._last_used.pop(key_id, None)
        self.keys.owners.pop(key_id, None)

    # -- service accounts -------------------------------------------------------------
    async def account(self, project_id: str, account_id: str) -> Doc:
        await self.org.project(project_id)
        doc = await self.store.get("org_service_account", account_id)
        if doc is None or doc.get("project_id") != project_id:
            raise not_found("service account", account_id, "service_account_id")
        return doc

    @staticmethod
    def render_account(doc: Doc) -> Doc:
        return {k: doc[k] for k in ("object", "id", "name", "role", "created_at")}

    async def accounts(self, project_id: str, after: str | None, limit: int) -> Page:
        await self.org.project(project_id)
        page = await self.store.page("org_service_account", parent=project_id, after=after, limit=limit,
                                     order="asc")
        page.items = [self.render_account(d) for d in page.items]
        return page

    async def create_account(self, project_id: str, name: str, without_key: bool) -> Doc:
        """The new account, with its API key's value (shown this once) unless ``without_key``."""
        await self.org.project(project_id, active=True)
        now = int(time.time())
        acct = {"object": "organization.project.service_account", "id": new_id("svc_acct_"), "name": name,
                "role": "member", "created_at": now, "project_id": project_id}
        await self.store.put("org_service_account", acct, parent=project_id)
        out = self.render_account(acct) | {"api_key": None}
        if not without_key:
            value = "sk-svcacct-" + secrets.token_urlsafe(48)
            kid = self.keys.key_id(value)
            doc = self._key_doc(kid, "Secret Key", redact(value), project_id, "service_account", acct["id"], None)
            await self.store.put("org_api_key", doc, parent=project_id)
            self._learn(doc)
            out["api_key"] = {"object": "organization.project.service_account.api_key", "value": value,
                              "name": doc["name"], "created_at": now, "id": kid}
        return out

    async def update_account(self, project_id: str, account_id: str, changes: dict) -> Doc:
        await self.org.project(project_id, active=True)
        await self.account(project_id, account_id)
        doc = await self.store.update("org_service_account", account_id, lambda d: d | changes)
        return self.render_account(doc)

    async def delete_account(self, project_id: str, account_id: str) -> None:
        await self.account(project_id, account_id)
        owned = [k["id"] async for k in self.store.scan(
            "org_api_key", parent=project_id, match=lambda d: d["owner"]["id"] == account_id)]
        for kid in owned:
            await self._revoke(kid)
        await self.store.delete("org_service_account", account_id)
