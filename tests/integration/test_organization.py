"""The organization admin surface: users, invites, projects, project users, service
accounts and API keys, over HTTP, validated against the official spec."""

from __future__ import annotations

import time

import openai
import pytest

from tests.openapi_spec import validate, validate_error
from tests.server import run_server

ORG = "/v1/organization"


@pytest.fixture(scope="module")
def srv():
    with run_server("--ttft", "0", "--itl", "0") as s:
        yield s


@pytest.fixture()
def h(srv):
    with srv.http() as client:
        yield client


def ok(r, component: str) -> dict:
    assert r.status_code == 200, r.text
    body = r.json()
    validate(component, body)
    return body


def err(r, status: int, param: str | None = None) -> dict:
    assert r.status_code == status, r.text
    body = r.json()
    validate_error(body)
    if param is not None:
        assert body["error"]["param"] == param
    return body["error"]


def new_project(h, name: str = "Research") -> dict:
    return ok(h.post(f"{ORG}/projects", json={"name": name}), "Project")


def readers(h) -> list[dict]:
    users = ok(h.get(f"{ORG}/users"), "UserListResponse")["data"]
    return [u for u in users if u["role"] == "reader"]


def test_a_default_organization_is_seeded(h):
    users = ok(h.get(f"{ORG}/users"), "UserListResponse")
    roles = [u["role"] for u in users["data"]]
    assert roles.count("owner") == 1 and len(roles) >= 3
    assert users["first_id"] == users["data"][0]["id"] and users["has_more"] is False
    owner = next(u for u in users["data"] if u["role"] == "owner")
    assert ok(h.get(f"{ORG}/users/{owner['id']}"), "User") == owner
    by_email = ok(h.get(f"{ORG}/users", params={"emails": owner["email"]}), "UserListResponse")["data"]
    assert [u["id"] for u in by_email] == [owner["id"]]
    default = ok(h.get(f"{ORG}/projects/proj_default"), "Project")
    assert default["status"] == "active" and default["archived_at"] is None
    members = ok(h.get(f"{ORG}/projects/proj_default/users"), "ProjectUserListResponse")["data"]
    assert {m["id"] for m in members} >= {owner["id"]}
    assert next(m for m in members if m["id"] == owner["id"])["role"] == "owner"


def test_projects_create_modify_archive_and_list(h):
    p = new_project(h, "Search")
    assert p["name"] == "Search" and p["id"].startswith("proj_")
    assert ok(h.get(f"{ORG}/projects/{p['id']}"), "Project") == p
    renamed = ok(h.post(f"{ORG}/projects/{p['id']}", json={"name": "Search v2"}), "Project")
    assert renamed["name"] == "Search v2" and renamed["created_at"] == p["created_at"]
    archived = ok(h.post(f"{ORG}/projects/{p['id']}/archive"), "Project")
    assert archived["status"] == "archived" and archived["archived_at"] >= p["created_at"]
    listed = [x["id"] for x in ok(h.get(f"{ORG}/projects", params={"limit": 100}), "ProjectListResponse")["data"]]
    assert p["id"] not in listed and "proj_default" in listed
    everything = ok(h.get(f"{ORG}/projects", params={"limit": 100, "include_archived": "true"}),
                    "ProjectListResponse")["data"]
    assert p["id"] in [x["id"] for x in everything]
    err(h.post(f"{ORG}/projects/{p['id']}", json={"name": "again"}), 400, "project_id")
    err(h.post(f"{ORG}/projects/{p['id']}/users", json={"user_id": readers(h)[0]["id"], "role": "member"}), 400)
    err(h.post(f"{ORG}/projects/proj_default/archive"), 400)


def test_projects_page_in_creation_order(h):
    made = [new_project(h, f"Paged {i}")["id"] for i in range(5)]
    seen, after = [], None
    while True:
        params = {"limit": 2, **({"after": after} if after else {})}
        page = ok(h.get(f"{ORG}/projects", params=params), "ProjectListResponse")
        assert len(page["data"]) <= 2
        seen += [x["id"] for x in page["data"]]
        if not page["has_more"]:
            break
        after = page["last_id"]
    assert len(seen) == len(set(seen))
    assert [x for x in seen if x in made] == made
    err(h.get(f"{ORG}/projects", params={"limit": 0}), 400, "limit")
    err(h.get(f"{ORG}/projects", params={"limit": 101}), 400, "limit")


@pytest.mark.parametrize("path", [
    "/users/user-nope", "/invites/invite-nope", "/projects/proj_nope", "/projects/proj_nope/users",
    "/projects/proj_default/users/user-nope", "/projects/proj_default/service_accounts/svc_acct_nope",
    "/projects/proj_default/api_keys/key_nope", "/projects/proj_nope/api_keys",
])
def test_unknown_ids_get_404(h, path):
    err(h.get(ORG + path), 404)


def test_project_users_add_modify_remove(h):
    p = new_project(h, "Members")
    reader = readers(h)[0]
    added = ok(h.post(f"{ORG}/projects/{p['id']}/users", json={"user_id": reader["id"], "role": "member"}),
               "ProjectUser")
    assert (added["id"], added["email"], added["role"]) == (reader["id"], reader["email"], "member")
    err(h.post(f"{ORG}/projects/{p['id']}/users", json={"user_id": reader["id"], "role": "member"}), 400)
    err(h.post(f"{ORG}/projects/{p['id']}/users", json={"user_id": "user-ghost", "role": "member"}), 400,
        "user_id")
    err(h.post(f"{ORG}/projects/{p['id']}/users", json={"user_id": reader["id"], "role": "admin"}), 400, "role")
    assert ok(h.get(f"{ORG}/projects/{p['id']}/users/{reader['id']}"), "ProjectUser") == added
    promoted = ok(h.post(f"{ORG}/projects/{p['id']}/users/{reader['id']}", json={"role": "owner"}), "ProjectUser")
    assert promoted["role"] == "owner"
    ids = [m["id"] for m in ok(h.get(f"{ORG}/projects/{p['id']}/users"), "ProjectUserListResponse")["data"]]
    assert reader["id"] in ids
    gone = ok(h.delete(f"{ORG}/projects/{p['id']}/users/{reader['id']}"), "ProjectUserDeleteResponse")
    assert gone == {"object": "organization.project.user.deleted", "id": reader["id"], "deleted": True}
    err(h.get(f"{ORG}/projects/{p['id']}/users/{reader['id']}"), 404)
    by_email = ok(h.post(f"{ORG}/projects/{p['id']}/users", json={"email": reader["email"], "role": "member"}),
                  "ProjectUser")
    assert by_email["id"] == reader["id"]


def test_invites_create_list_retrieve_delete(h):
    p = new_project(h, "Invited")
    inv = ok(h.post(f"{ORG}/invites", json={"email": "new.person@example.com", "role": "reader",
                                            "projects": [{"id": p["id"], "role": "member"}]}), "Invite")
    assert inv["status"] == "pending" and inv["expires_at"] > inv["created_at"] >= int(time.time()) - 60
    assert inv["projects"] == [{"id": p["id"], "role": "member"}]
    assert ok(h.get(f"{ORG}/invites/{inv['id']}"), "Invite") == inv
    assert inv["id"] in [i["id"] for i in ok(h.get(f"{ORG}/invites"), "InviteListResponse")["data"]]
    err(h.post(f"{ORG}/invites", json={"email": "new.person@example.com", "role": "reader"}), 400, "email")
    err(h.post(f"{ORG}/invites", json={"email": readers(h)[0]["email"], "role": "reader"}), 400, "email")
    err(h.post(f"{ORG}/invites", json={"email": "not-an-email", "role": "reader"}), 400, "email")
    err(h.post(f"{ORG}/invites", json={"email": "x@example.com", "role": "admin"}), 400, "role")
    err(h.post(f"{ORG}/invites", json={"email": "y@example.com", "role": "reader",
                                       "projects": [{"id": "proj_nope", "role": "member"}]}), 404)
    gone = ok(h.delete(f"{ORG}/invites/{inv['id']}"), "InviteDeleteResponse")
    assert gone["deleted"] is True and gone["id"] == inv["id"]
    err(h.get(f"{ORG}/invites/{inv['id']}"), 404)


def test_user_roles_and_deletion(h):
    users = ok(h.get(f"{ORG}/users"), "UserListResponse")["data"]
    owner = next(u for u in users if u["role"] == "owner")
    err(h.post(f"{ORG}/users/{owner['id']}", json={"role": "reader"}), 400, "role")  # the last owner
    err(h.delete(f"{ORG}/users/{owner['id']}"), 400)
    reader = readers(h)[-1]
    err(h.post(f"{ORG}/users/{reader['id']}", json={"role": "superuser"}), 400, "role")
    err(h.post(f"{ORG}/users/{reader['id']}", json={"role": 3}), 400, "role")
    p = new_project(h, "Doomed membership")
    ok(h.post(f"{ORG}/projects/{p['id']}/users", json={"user_id": reader["id"], "role": "member"}), "ProjectUser")
    promoted = ok(h.post(f"{ORG}/users/{reader['id']}", json={"role": "owner"}), "User")
    assert promoted["role"] == "owner"
    ok(h.post(f"{ORG}/users/{owner['id']}", json={"role": "reader"}), "User")  # another owner remains
    ok(h.post(f"{ORG}/users/{owner['id']}", json={"role": "owner"}), "User")
    gone = ok(h.delete(f"{ORG}/users/{reader['id']}"), "UserDeleteResponse")
    assert gone == {"object": "organization.user.deleted", "id": reader["id"], "deleted": True}
    err(h.get(f"{ORG}/users/{reader['id']}"), 404)
    err(h.get(f"{ORG}/projects/{p['id']}/users/{reader['id']}"), 404)  # memberships go with the user


def test_service_account_key_is_shown_once_and_attributes_usage(srv, h):
    p = new_project(h, "Robots")
    made = ok(h.post(f"{ORG}/projects/{p['id']}/service_accounts", json={"name": "ci-bot"}),
              "ProjectServiceAccountCreateResponse")
    key = made["api_key"]
    assert key["value"].startswith("sk-svcacct-") and key["id"].startswith("key_")
    acct = ok(h.get(f"{ORG}/projects/{p['id']}/service_accounts/{made['id']}"), "ProjectServiceAccount")
    assert acct["name"] == "ci-bot" and "api_key" not in acct
    listed = ok(h.get(f"{ORG}/projects/{p['id']}/service_accounts"), "ProjectServiceAccountListResponse")
    assert [a["id"] for a in listed["data"]] == [made["id"]]
    shown = ok(h.get(f"{ORG}/projects/{p['id']}/api_keys/{key['id']}"), "ProjectApiKey")
    assert shown["owner"]["type"] == "service_account" and shown["owner"]["service_account"]["id"] == made["id"]
    assert key["value"] not in shown["redacted_value"] and key["value"][11:-4] not in shown["redacted_value"]
    renamed = ok(h.post(f"{ORG}/projects/{p['id']}/service_accounts/{made['id']}", json={"name": "ci-bot-2"}),
                 "ProjectServiceAccount")
    assert renamed["name"] == "ci-bot-2"
    err(h.delete(f"{ORG}/projects/{p['id']}/api_keys/{key['id']}"), 400)  # delete the account instead
    bot = openai.OpenAI(base_url=srv.api_url, api_key=key["value"], max_retries=0)
    reply = bot.embeddings.create(model="text-embedding-3-small", input="robot text")
    rows = h.get(f"{ORG}/usage/embeddings", params={"start_time": int(time.time()) - 300,
                                                    "group_by": ["project_id", "api_key_id", "user_id"],
                                                    "project_ids": p["id"]}).json()
    got = [r for b in rows["data"] for r in b["results"]]
    assert [(r["project_id"], r["api_key_id"], r["user_id"], r["input_tokens"]) for r in got] == [
        (p["id"], key["id"], made["id"], reply.usage.prompt_tokens)]
    gone = ok(h.delete(f"{ORG}/projects/{p['id']}/service_accounts/{made['id']}"),
              "ProjectServiceAccountDeleteResponse")
    assert gone["deleted"] is True
    err(h.get(f"{ORG}/projects/{p['id']}/api_keys/{key['id']}"), 404)
    only = ok(h.post(f"{ORG}/projects/{p['id']}/service_accounts",
                     json={"name": "no-key", "create_service_account_only": True}),
              "ProjectServiceAccountCreateResponse")
    assert only["api_key"] is None


def test_keys_seen_in_traffic_are_listed_redacted_and_deletable(srv, h):
    raw = "sk-proj-" + "Q" * 30 + "traffickey1234"
    openai.OpenAI(base_url=srv.api_url, api_key=raw, max_retries=0).models.list()  # not metered
    client = openai.OpenAI(base_url=srv.api_url, api_key=raw, max_retries=0)
    client.moderations.create(model="omni-moderation-latest", input="hello")
    h.get(f"{ORG}/usage/moderations", params={"start_time": 0})  # a read flushes: the key is noted

    def listed(**params):
        return ok(h.get(f"{ORG}/projects/proj_default/api_keys", params={"limit": 100, **params}),
                  "ProjectApiKeyListResponse")["data"]

    mine = [k for k in listed() if k["redacted_value"] == "sk-proj-...1234"]
    assert len(mine) == 1
    k = mine[0]
    assert raw not in str(k) and "traffickey" not in str(k)
    assert k["owner"]["type"] == "user" and k["owner_project_access"] == "active"
    assert k["last_used_at"] is not None
    assert ok(h.get(f"{ORG}/projects/proj_default/api_keys/{k['id']}"), "ProjectApiKey") == k
    assert k["id"] in [x["id"] for x in listed(owner_project_access="any")]
    assert k["id"] not in [x["id"] for x in listed(owner_project_access="inactive")]
    err(h.get(f"{ORG}/projects/proj_default/api_keys", params={"owner_project_access": "all"}), 400,
        "owner_project_access")
    gone = ok(h.delete(f"{ORG}/projects/proj_default/api_keys/{k['id']}"), "ProjectApiKeyDeleteResponse")
    assert gone["id"] == k["id"]
    err(h.get(f"{ORG}/projects/proj_default/api_keys/{k['id']}"), 404)
    client.moderations.create(model="omni-moderation-latest", input="hello again")
    h.get(f"{ORG}/usage/moderations", params={"start_time": 0})
    assert k["id"] not in [x["id"] for x in listed(owner_project_access="any")]  # deleted stays deleted


def test_bodies_are_validated(h):
    err(h.post(f"{ORG}/projects", json={}), 400, "name")
    err(h.post(f"{ORG}/projects", json={"name": 5}), 400, "name")
    err(h.post(f"{ORG}/projects", json={"name": "x", "residency": "MOON"}), 400, "residency")
    err(h.post(f"{ORG}/projects", content=b"{not json", headers={"content-type": "application/json"}), 400)
    err(h.post(f"{ORG}/projects/proj_default/service_accounts", json={"name": ""}), 400, "name")
