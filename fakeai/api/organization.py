"""``/v1/organization/...`` admin surface: users, invites, projects, project users,
service accounts and API keys, in OpenAI's shapes (logic in ``fakeai.services.organization``
and ``fakeai.services.project_keys``)."""

from __future__ import annotations

import functools

from fastapi import APIRouter, Request

from ..schemas.organization import (
    InviteRequest,
    ProjectCreateRequest,
    ProjectServiceAccountCreateRequest,
    ProjectUpdateRequest,
    ProjectUserCreateRequest,
    ProjectUserUpdateRequest,
    UpdateProjectServiceAccountBody,
    UserRoleUpdateRequest,
)
from ..services.organization import Organization, OrgError
from ..services.project_keys import ProjectKeys
from .body import parse, read_json, request_body
from .common import dumps, json_response
from .errors import APIError
from .listing import cursor, list_object

router = APIRouter(tags=["organization"])

ORG = "/v1/organization"
PROJECT = ORG + "/projects/{project_id}"


def _path(*names: str) -> dict:
    """OpenAPI path parameters (read from the request by hand, as in models.py)."""
    return {"parameters": [{"name": n, "in": "path", "required": True, "schema": {"type": "string"}}
                           for n in names]}


def _doc(*names: str, body=None) -> dict:
    extra = _path(*names)
    if body is not None:
        extra.update(request_body(body))
    return extra


def _admin(handler):
    """Render the organization's refusals in OpenAI's envelope."""
    @functools.wraps(handler)
    async def wrapped(request: Request):
        try:
            return await handler(request)
        except OrgError as e:
            raise APIError(e.status, e.message, param=e.param, code=e.code) from None
    return wrapped


def _org(request: Request) -> Organization:
    return request.app.state.organization


def _keys(request: Request) -> ProjectKeys:
    return request.app.state.project_keys


def _ok(body: dict):
    return json_response(dumps(body))


def _deleted(kind: str, id: str):
    return _ok({"object": f"{kind}.deleted", "id": id, "deleted": True})


async def _body(request: Request, model):
    return parse(model, await read_json(request), request.app.state.settings.strict_params)


def _emails(request: Request) -> list[str]:
    q = request.query_params
    return [e.strip() for raw in (*q.getlist("emails"), *q.getlist("emails[]")) for e in raw.split(",")
            if e.strip()]


def _flag(request: Request, name: str) -> bool:
    raw = request.query_params.get(name)
    if raw is None:
        return False
    if raw.lower() not in ("true", "false"):
        raise APIError(400, f"Invalid '{name}': expected a boolean, but got {raw!r} instead.", param=name,
                       code="invalid_type")
    return raw.lower() == "true"


# -- users ------------------------------------------------------------------------------

@router.get(ORG + "/users")
@_admin
async def list_users(request: Request):
    c = cursor(request)
    return _ok(list_object(await _org(request).users(c.after, c.limit, _emails(request))))


@router.get(ORG + "/users/{user_id}", openapi_extra=_path("user_id"))
@_admin
async def retrieve_user(request: Request):
    return _ok(await _org(request).user(request.path_params["user_id"]))


@router.post(ORG + "/users/{user_id}", openapi_extra=_doc("user_id", body=UserRoleUpdateRequest))
@_admin
async def modify_user(request: Request):
    req = await _body(request, UserRoleUpdateRequest)
    return _ok(await _org(request).set_user_role(request.path_params["user_id"], req.role))


@router.delete(ORG + "/users/{user_id}", openapi_extra=_path("user_id"))
@_admin
async def delete_user(request: Request):
    user_id = request.path_params["user_id"]
    await _org(request).delete_user(user_id)
    return _deleted("organization.user", user_id)


# -- invites ----------------------------------------------------------------------------

@router.get(ORG + "/invites")
@_admin
async def list_invites(request: Request):
    c = cursor(request)
    return _ok(list_object(await _org(request).invites(c.after, c.limit)))


@router.post(ORG + "/invites", openapi_extra=request_body(InviteRequest))
@_admin
async def create_invite(request: Request):
    req = await _body(request, InviteRequest)
    projects = [p.model_dump(include={"id", "role"}) for p in req.projects or ()]
    return _ok(await _org(request).create_invite(req.email, req.role, projects))


@router.get(ORG + "/invites/{invite_id}", openapi_extra=_path("invite_id"))
@_admin
async def retrieve_invite(request: Request):
    return _ok(await _org(request).invite(request.path_params["invite_id"]))


@router.delete(ORG + "/invites/{invite_id}", openapi_extra=_path("invite_id"))
@_admin
async def delete_invite(request: Request):
    invite_id = request.path_params["invite_id"]
    await _org(request).delete_invite(invite_id)
    return _deleted("organization.invite", invite_id)


# -- projects ---------------------------------------------------------------------------

@router.get(ORG + "/projects")
@_admin
async def list_projects(request: Request):
    c = cursor(request)
    page = await _org(request).projects(c.after, c.limit, _flag(request, "include_archived"))
    return _ok(list_object(page))


@router.post(ORG + "/projects", openapi_extra=request_body(ProjectCreateRequest))
@_admin
async def create_project(request: Request):
    req = await _body(request, ProjectCreateRequest)
    return _ok(await _org(request).create_project(req.name, req.residency, req.external_key_id))


@router.get(PROJECT, openapi_extra=_path("project_id"))
@_admin
async def retrieve_project(request: Request):
    return _ok(await _org(request).project(request.path_params["project_id"]))


@router.post(PROJECT, openapi_extra=_doc("project_id", body=ProjectUpdateRequest))
@_admin
async def modify_project(request: Request):
    req = await _body(request, ProjectUpdateRequest)
    changes = req.model_dump(include={"name", "external_key_id"}, exclude_none=True)
    return _ok(await _org(request).update_project(request.path_params["project_id"], changes))


@router.post(PROJECT + "/archive", openapi_extra=_path("project_id"))
@_admin
async def archive_project(request: Request):
    return _ok(await _org(request).archive_project(request.path_params["project_id"]))


# -- project users ----------------------------------------------------------------------

@router.get(PROJECT + "/users", openapi_extra=_path("project_id"))
@_admin
async def list_project_users(request: Request):
    c = cursor(request)
    page, items = await _org(request).members(request.path_params["project_id"], c.after, c.limit)
    return _ok(list_object(page, items))


@router.post(PROJECT + "/users", openapi_extra=_doc("project_id", body=ProjectUserCreateRequest))
@_admin
async def create_project_user(request: Request):
    req = await _body(request, ProjectUserCreateRequest)
    return _ok(await _org(request).add_member(request.path_params["project_id"], req.user_id, req.email, req.role))


@router.get(PROJECT + "/users/{user_id}", openapi_extra=_path("project_id", "user_id"))
@_admin
async def retrieve_project_user(request: Request):
    p = request.path_params
    return _ok(await _org(request).member(p["project_id"], p["user_id"]))


@router.post(PROJECT + "/users/{user_id}", openapi_extra=_doc("project_id", "user_id",
                                                              body=ProjectUserUpdateRequest))
@_admin
async def modify_project_user(request: Request):
    req = await _body(request, ProjectUserUpdateRequest)
    p = request.path_params
    return _ok(await _org(request).set_member_role(p["project_id"], p["user_id"], req.role))


@router.delete(PROJECT + "/users/{user_id}", openapi_extra=_path("project_id", "user_id"))
@_admin
async def delete_project_user(request: Request):
    p = request.path_params
    await _org(request).remove_member(p["project_id"], p["user_id"])
    return _deleted("organization.project.user", p["user_id"])


# -- service accounts -------------------------------------------------------------------

@router.get(PROJECT + "/service_accounts", openapi_extra=_path("project_id"))
@_admin
async def list_service_accounts(request: Request):
    c = cursor(request)
    return _ok(list_object(await _keys(request).accounts(request.path_params["project_id"], c.after, c.limit)))


@router.post(PROJECT + "/service_accounts",
             openapi_extra=_doc("project_id", body=ProjectServiceAccountCreateRequest))
@_admin
async def create_service_account(request: Request):
    req = await _body(request, ProjectServiceAccountCreateRequest)
    return _ok(await _keys(request).create_account(request.path_params["project_id"], req.name,
                                                   bool(req.create_service_account_only)))


_ACCOUNT = PROJECT + "/service_accounts/{service_account_id}"


@router.get(_ACCOUNT, openapi_extra=_path("project_id", "service_account_id"))
@_admin
async def retrieve_service_account(request: Request):
    p = request.path_params
    return _ok(_keys(request).render_account(await _keys(request).account(p["project_id"], p["service_account_id"])))


@router.post(_ACCOUNT, openapi_extra=_doc("project_id", "service_account_id", body=UpdateProjectServiceAccountBody))
@_admin
async def modify_service_account(request: Request):
    req = await _body(request, UpdateProjectServiceAccountBody)
    p = request.path_params
    changes = req.model_dump(include={"name", "role"}, exclude_none=True)
    return _ok(await _keys(request).update_account(p["project_id"], p["service_account_id"], changes))


@router.delete(_ACCOUNT, openapi_extra=_path("project_id", "service_account_id"))
@_admin
async def delete_service_account(request: Request):
    p = request.path_params
    await _keys(request).delete_account(p["project_id"], p["service_account_id"])
    return _deleted("organization.project.service_account", p["service_account_id"])


# -- API keys ---------------------------------------------------------------------------

@router.get(PROJECT + "/api_keys", openapi_extra=_path("project_id"))
@_admin
async def list_api_keys(request: Request):
    c = cursor(request)
    access = request.query_params.get("owner_project_access")
    if access is not None and access not in ("active", "inactive", "any"):
        raise APIError(400, f"Invalid value for 'owner_project_access': '{access}'. Supported values are: "
                       "'active', 'inactive', 'any'.", param="owner_project_access", code="invalid_value")
    page, items = await _keys(request).list_keys(request.path_params["project_id"], c.after, c.limit, access)
    return _ok(list_object(page, items))


@router.get(PROJECT + "/api_keys/{api_key_id}", openapi_extra=_path("project_id", "api_key_id"))
@_admin
async def retrieve_api_key(request: Request):
    p = request.path_params
    return _ok(await _keys(request).key(p["project_id"], p["api_key_id"]))


@router.delete(PROJECT + "/api_keys/{api_key_id}", openapi_extra=_path("project_id", "api_key_id"))
@_admin
async def delete_api_key(request: Request):
    p = request.path_params
    await _keys(request).delete_key(p["project_id"], p["api_key_id"])
    return _deleted("organization.project.api_key", p["api_key_id"])
