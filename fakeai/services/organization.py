"""The organization: users, invites, projects and project members, kept in the store.

On first start (once across processes sharing the store) a default organization is
seeded: an owner and two readers, and the default project ``proj_default`` with
all three as members. Service accounts and API keys live in ``project_keys``.

Documents (kind, parent): ``org_user``, ``org_invite``, ``org_project``, and
``org_project_user`` under its project, keyed ``<project>/<user>``. Lists are
oldest first, paged with ``after`` (an id of the previous page).
"""

from __future__ import annotations

import asyncio
import os
import time

from ..store import Doc, Page, Store
from ..telemetry.keyids import DEFAULT_PROJECT

INVITE_TTL_S = 7 * 86400
_SEED_LEASE = "org-seed"


class OrgError(Exception):
    """A request the organization refuses: rendered as OpenAI's error envelope."""

    def __init__(self, status: int, message: str, param: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.param, self.code = status, message, param, code


def not_found(what: str, id: str, param: str) -> OrgError:
    return OrgError(404, f"No such {what}: '{id}'.", param=param)


def new_id(prefix: str) -> str:
    return prefix + os.urandom(12).hex()


def _now() -> int:
    return int(time.time())


_SEED_USERS = (("Alex Rivera", "alex.rivera@example.com", "owner"),
               ("Sam Chen", "sam.chen@example.com", "reader"),
               ("Jordan Patel", "jordan.patel@example.com", "reader"))


class Organization:
    def __init__(self, store: Store) -> None:
        self.store = store
        self.owner_id: str | None = None  # the first owner: default owner of unattributed usage

    # -- seeding ----------------------------------------------------------------------
    async def open(self) -> None:
        """Seed the default organization if the store has none."""
        if await self.store.get("org_project", DEFAULT_PROJECT) is None:
            holder = os.urandom(8).hex()
            while not await self.store.claim(_SEED_LEASE, holder, 10.0):
                await asyncio.sleep(0.05)
            try:
                if await self.store.get("org_project", DEFAULT_PROJECT) is None:
                    await self._seed()
            finally:
                await self.store.release(_SEED_LEASE, holder)
        async for user in self.store.scan("org_user", match=lambda d: d.get("role") == "owner"):
            self.owner_id = user["id"]
            break

    async def _seed(self) -> None:
        now = _now()
        users = []
        for i, (name, email, role) in enumerate(_SEED_USERS):
            user = {"object": "organization.user", "id": new_id("user-"), "name": name, "email": email,
                    "role": role, "added_at": now - 86400 * (30 - i)}
            await self.store.put("org_user", user)
            users.append(user)
        for user in users:  # members first: the project's existence marks the seed complete
            await self.store.put("org_project_user", {
                "id": f"{DEFAULT_PROJECT}/{user['id']}", "user_id": user["id"],
                "role": "owner" if user["role"] == "owner" else "member", "added_at": user["added_at"]},
                parent=DEFAULT_PROJECT)
        await self.store.put("org_project", {"id": DEFAULT_PROJECT, "object": "organization.project",
                                             "name": "Default project", "created_at": users[0]["added_at"],
                                             "archived_at": None, "status": "active"})

    # -- users ------------------------------------------------------------------------
    async def user(self, user_id: str) -> Doc:
        doc = await self.store.get("org_user", user_id)
        if doc is None:
            raise not_found("user", user_id, "user_id")
        return doc

    async def users(self, after: str | None, limit: int, emails: list[str]) -> Page:
        wanted = {e.lower() for e in emails}
        match = (lambda d: (d.get("email") or "").lower() in wanted) if wanted else None
        return await self.store.page("org_user", after=after, limit=limit, order="asc", match=match)

    async def _owners(self) -> int:
        return await self.store.count("org_user", match=lambda d: d.get("role") == "owner")

    async def set_user_role(self, user_id: str, role: str | None) -> Doc:
        user = await self.user(user_id)
        if role is None or role == user["role"]:
            return user
        if user["role"] == "owner" and await self._owners() <= 1:
            raise OrgError(400, "The organization must keep at least one owner.", param="role",
                           code="invalid_value")
        return await self.store.update("org_user", user_id, lambda d: d | {"role": role}) or user

    async def delete_user(self, user_id: str) -> None:
        user = await self.user(user_id)
        if user["role"] == "owner" and await self._owners() <= 1:
            raise OrgError(400, "The organization's last owner cannot be removed.", param="user_id",
                           code="invalid_value")
        async for project in self.store.scan("org_project"):
            await self.store.delete("org_project_user", f"{project['id']}/{user_id}")
        await self.store.delete("org_user", user_id)

    async def _user_by_email(self, email: str) -> Doc | None:
        low = email.lower()
        async for doc in self.store.scan("org_user", match=lambda d: (d.get("email") or "").lower() == low):
            return doc
        return None

    # -- invites ----------------------------------------------------------------------
    @staticmethod
    def render_invite(doc: Doc) -> Doc:
        if doc["status"] == "pending" and doc["expires_at"] <= _now():
            return doc | {"status": "expired"}
        return doc

    async def invite(self, invite_id: str) -> Doc:
        doc = await self.store.get("org_invite", invite_id)
        if doc is None:
            raise not_found("invite", invite_id, "invite_id")
        return self.render_invite(doc)

    async def invites(self, after: str | None, limit: int) -> Page:
        page = await self.store.page("org_invite", after=after, limit=limit, order="asc")
        page.items = [self.render_invite(d) for d in page.items]
        return page

    async def create_invite(self, email: str, role: str, projects: list[dict]) -> Doc:
        if await self._user_by_email(email) is not None:
            raise OrgError(400, f"'{email}' is already a member of the organization.", param="email",
                           code="invalid_value")
        low = email.lower()
        pending = self.store.scan("org_invite", match=lambda d: d["email"].lower() == low)
        async for doc in pending:
            if self.render_invite(doc)["status"] == "pending":
                raise OrgError(400, f"'{email}' already has a pending invite.", param="email",
                               code="invalid_value")
        for i, p in enumerate(projects):
            await self.project(p["id"], param=f"projects[{i}].id", active=True)
        now = _now()
        doc = {"object": "organization.invite", "id": new_id("invite-"), "email": email, "role": role,
               "status": "pending", "created_at": now, "expires_at": now + INVITE_TTL_S, "accepted_at": None,
               "projects": projects}
        await self.store.put("org_invite", doc)
        return doc

    async def delete_invite(self, invite_id: str) -> None:
        doc = await self.invite(invite_id)
        if doc["status"] == "accepted":
            raise OrgError(400, "An accepted invite cannot be deleted.", param="invite_id", code="invalid_value")
        await self.store.delete("org_invite", invite_id)

    # -- projects ---------------------------------------------------------------------
    async def project(self, project_id: str, param: str = "project_id", active: bool = False) -> Doc:
        """The project (404 if none); ``active``: 400 if it is archived."""
        doc = await self.store.get("org_project", project_id)
        if doc is None:
            raise not_found("project", project_id, param)
        if active and doc.get("archived_at") is not None:
            raise OrgError(400, f"Project '{project_id}' is archived and cannot be used or updated.",
                           param=param, code="project_archived")
        return doc

    async def projects(self, after: str | None, limit: int, include_archived: bool) -> Page:
        match = None if include_archived else (lambda d: d.get("archived_at") is None)
        return await self.store.page("org_project", after=after, limit=limit, order="asc", match=match)

    async def create_project(self, name: str, residency: str | None, external_key_id: str | None) -> Doc:
        doc = {"id": new_id("proj_"), "object": "organization.project", "name": name, "created_at": _now(),
               "archived_at": None, "status": "active"}
        if residency is not None:
            doc["residency"] = residency
        if external_key_id is not None:
            doc["external_key_id"] = external_key_id
        await self.store.put("org_project", doc)
        if self.owner_id is not None:  # the creating owner becomes the project's owner
            await self.store.put("org_project_user", {"id": f"{doc['id']}/{self.owner_id}", "user_id": self.owner_id,
                                                      "role": "owner", "added_at": doc["created_at"]},
                                 parent=doc["id"])
        return doc

    async def update_project(self, project_id: str, changes: dict) -> Doc:
        await self.project(project_id, active=True)
        if not changes:
            return await self.project(project_id)
        return await self.store.update("org_project", project_id, lambda d: d | changes)

    async def archive_project(self, project_id: str) -> Doc:
        doc = await self.project(project_id)
        if project_id == DEFAULT_PROJECT:
            raise OrgError(400, "The default project cannot be archived.", param="project_id",
                           code="invalid_value")
        if doc.get("archived_at") is not None:
            return doc
        now = _now()
        return await self.store.update("org_project", project_id,
                                       lambda d: d | {"archived_at": now, "status": "archived"})

    # -- project users ----------------------------------------------------------------
    async def render_member(self, m: Doc) -> Doc:
        user = await self.store.get("org_user", m["user_id"]) or {}
        return {"object": "organization.project.user", "id": m["user_id"], "name": user.get("name"),
                "email": user.get("email"), "role": m["role"], "added_at": m["added_at"]}

    async def _member(self, project_id: str, user_id: str) -> Doc:
        m = await self.store.get("org_project_user", f"{project_id}/{user_id}")
        if m is None:
            raise not_found("project user", user_id, "user_id")
        return m

    async def member(self, project_id: str, user_id: str) -> Doc:
        await self.project(project_id)
        return await self.render_member(await self._member(project_id, user_id))

    async def is_member(self, project_id: str, user_id: str) -> bool:
        return await self.store.get("org_project_user", f"{project_id}/{user_id}") is not None

    async def members(self, project_id: str, after: str | None, limit: int) -> tuple[Page, list[Doc]]:
        await self.project(project_id)
        page = await self.store.page("org_project_user", parent=project_id,
                                     after=f"{project_id}/{after}" if after else None, limit=limit, order="asc")
        return page, [await self.render_member(m) for m in page.items]

    async def add_member(self, project_id: str, user_id: str | None, email: str | None, role: str) -> Doc:
        await self.project(project_id, active=True)
        if user_id:
            user = await self.store.get("org_user", user_id)
            missing = ("user_id", user_id)
        elif email:
            user = await self._user_by_email(email)
            missing = ("email", email)
        else:
            raise OrgError(400, "Missing required parameter: 'user_id' (or 'email').", param="user_id",
                           code="missing_required_parameter")
        if user is None:
            raise OrgError(400, f"'{missing[1]}' is not a member of the organization; invite them first.",
                           param=missing[0], code="invalid_value")
        if await self.is_member(project_id, user["id"]):
            raise OrgError(400, f"User '{user['id']}' is already a member of project '{project_id}'.",
                           param="user_id", code="invalid_value")
        m = {"id": f"{project_id}/{user['id']}", "user_id": user["id"], "role": role, "added_at": _now()}
        await self.store.put("org_project_user", m, parent=project_id)
        return await self.render_member(m)

    async def set_member_role(self, project_id: str, user_id: str, role: str | None) -> Doc:
        await self.project(project_id, active=True)
        m = await self._member(project_id, user_id)
        if role is not None and role != m["role"]:
            m = await self.store.update("org_project_user", m["id"], lambda d: d | {"role": role}) or m
        return await self.render_member(m)

    async def remove_member(self, project_id: str, user_id: str) -> None:
        await self.project(project_id, active=True)
        m = await self._member(project_id, user_id)
        await self.store.delete("org_project_user", m["id"])
