"""Request bodies of the admin API (``/admin/keys``)."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field


class CreateKeyRequest(BaseModel):
    """A new API key and its scope: allowed models and endpoints (path prefixes; None = all)
    and read_only (GET and HEAD only)."""

    model_config = ConfigDict(extra="forbid", strict=True, defer_build=True)

    name: Annotated[str, Field(max_length=256)] = ""
    models: list[Annotated[str, Field(min_length=1)]] | None = None
    endpoints: list[Annotated[str, Field(pattern=r"^/")]] | None = None
    read_only: bool = False
