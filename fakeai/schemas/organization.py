"""Request bodies of the organization admin endpoints (OpenAI's component names)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field

from .common import STRICT

Name = Annotated[str, Field(min_length=1, max_length=256)]
Email = Annotated[str, Field(min_length=3, max_length=320, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")]
Residency = Literal["GLOBAL", "US_STORAGE_PROCESSING", "EU_STORAGE_PROCESSING", "JP_STORAGE", "KR_STORAGE",
                    "CA_STORAGE", "SG_STORAGE", "IN_STORAGE", "AU_STORAGE", "GB_STORAGE", "AE_STORAGE",
                    "AE_STORAGE_PROCESSING"]


class UserRoleUpdateRequest(BaseModel):
    model_config = STRICT
    role: Literal["owner", "reader"] | None = None
    role_id: str | None = None
    technical_level: str | None = None
    developer_persona: str | None = None


class InviteProject(BaseModel):
    model_config = STRICT
    id: str
    role: Literal["member", "owner"]


class InviteRequest(BaseModel):
    model_config = STRICT
    email: Email
    role: Literal["reader", "owner"]
    projects: list[InviteProject] | None = None


class ProjectCreateRequest(BaseModel):
    model_config = STRICT
    name: Name
    residency: Residency | None = None
    external_key_id: str | None = None


class ProjectUpdateRequest(BaseModel):
    model_config = STRICT
    name: Name | None = None
    external_key_id: str | None = None


class ProjectUserCreateRequest(BaseModel):
    model_config = STRICT
    user_id: str | None = None
    email: str | None = None
    role: Literal["owner", "member"]


class ProjectUserUpdateRequest(BaseModel):
    model_config = STRICT
    role: Literal["owner", "member"] | None = None


class ProjectServiceAccountCreateRequest(BaseModel):
    model_config = STRICT
    name: Name
    create_service_account_only: bool | None = None


class UpdateProjectServiceAccountBody(BaseModel):
    model_config = STRICT
    name: Name | None = None
    role: Literal["member", "owner"] | None = None
