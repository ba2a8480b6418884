"""The admin API: ``/admin/config``, ``/admin/keys`` and ``/admin/bans``.

``PATCH /admin/config`` changes options at run time. It takes the options' own names and
types (as in a config file), validated exactly as at start-up; an option that cannot
change at run time, or an unknown one, is a 400. The settings object stays frozen: the
changes live in ``app.state.overrides`` and in the component each one drives. Every
change is logged (secrets masked). Other areas add their options with ``runtime_option``.

Access: the guard (``fakeai.security.auth``) lets a request reach these routes only with
the admin key; with no admin key set, only while authentication is off.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import lru_cache
from typing import Any

from fastapi import APIRouter, Request
from pydantic import ConfigDict, ValidationError, create_model

from ..config.settings import Settings, masked, secret_fields
from ..schemas.admin import CreateKeyRequest
from ..security.keys import Scope
from ..security.ratelimit import Policy
from .body import parse, path_doc, read_json, request_body
from .common import dumps, json_response
from .errors import APIError, validation_error

log = logging.getLogger("fakeai")
router = APIRouter(tags=["admin"])

Apply = Callable[[Any, Any], None]  # (app.state, new value)
_RUNTIME: dict[str, Apply] = {}


def runtime_option(*names: str):
    """Register the function that applies a run-time change of the Settings options ``names``."""
    def register(fn: Apply) -> Apply:
        for name in names:
            if name not in Settings.model_fields:
                raise ValueError(f"{name} is not an option")
            _RUNTIME[name] = fn
        return fn
    return register


@runtime_option("ttft_ms", "itl_ms", "jitter")
def _latency(state, changes: dict) -> None:
    state.engine.reconfigure(**changes)


_RATE = ("rate_limit_tier", "rate_limit_rpm", "rate_limit_tpm", "rate_limit_rpd", "rate_limit_tpd",
         "rate_limit_quantum_s")


@runtime_option(*_RATE)
def _rate_limits(state, changes: dict) -> None:
    state.security.set_policy(Policy(*(effective(state)[n] for n in _RATE)))


@runtime_option("api_key")
def _api_keys(state, changes: dict) -> None:
    state.security.set_config_keys(changes["api_key"])


@runtime_option("injection_detection", "public_health", "public_metrics")
def _guard(state, changes: dict) -> None:
    sec = state.security
    for name, value in changes.items():
        setattr(sec, {"injection_detection": "injection"}.get(name, name), value)
    sec.refresh()


@runtime_option("fault_rate", "fault_types", "fault_rates", "fault_schedule", "fault_seed", "fault_header")
def _faults(state, changes: dict) -> None:
    state.faults.configure({name.removeprefix("fault_"): v for name, v in changes.items()})


@runtime_option("scenarios_file")
def _scenarios(state, changes: dict) -> None:
    state.scenarios.configure({"file": changes["scenarios_file"]})


def effective(state) -> dict[str, Any]:
    """The settings as they are now: start-up values with the run-time changes on top."""
    return {**state.settings.model_dump(), **state.overrides}


@lru_cache(maxsize=8)
def _patch_model(names: tuple[str, ...]):
    fields = {n: (Settings.model_fields[n].annotation, Settings.model_fields[n]) for n in names}
    return create_model("ConfigPatch", __config__=ConfigDict(extra="forbid", strict=True), **fields)


def _shown(name: str, value: Any) -> Any:
    return masked({name: value})[name] if name in secret_fields() else value


def _config_body(state) -> bytes:
    return dumps({"object": "fakeai.config", "settings": masked(effective(state)),
                  "runtime": sorted(_RUNTIME)})


@router.get("/admin/config")
async def get_config(request: Request):
    return json_response(_config_body(request.app.state))


@router.patch("/admin/config")
async def patch_config(request: Request):
    state = request.app.state
    raw = await read_json(request)
    unknown = sorted(set(raw) - set(_RUNTIME))
    if unknown:
        what = "Unknown option" if unknown[0] not in Settings.model_fields else "Option that cannot change at run time"
        raise APIError(400, f"{what}: '{unknown[0]}'. Options that change at run time: "
                       f"{', '.join(sorted(_RUNTIME))}.", param=unknown[0], code="unknown_parameter")
    try:
        patch = _patch_model(tuple(sorted(raw))).model_validate(raw)
    except ValidationError as e:
        raise validation_error(e) from None
    values = patch.model_dump()
    ip = request.client.host if request.client else "unknown"
    try:
        apply_changes(state, values, f"by {ip}")
    except ValueError as e:  # e.g. an unreadable keys file
        raise APIError(400, str(e), code="invalid_value") from None
    sync = getattr(state, "override_sync", None)
    if sync is not None:  # the server's other processes (--workers) follow
        sync.publish(state.overrides)
    return json_response(_config_body(state))


def apply_changes(state, values: dict[str, Any], by: str) -> None:
    """Apply validated run-time option values, all or none (ValueError: nothing changed)."""
    before = effective(state)
    saved = dict(state.overrides)
    state.overrides.update(values)
    groups: dict[Apply, dict] = {}
    for name, value in values.items():
        groups.setdefault(_RUNTIME[name], {})[name] = value
    try:
        for apply, changes in groups.items():
            apply(state, changes)
    except ValueError:
        state.overrides.clear()
        state.overrides.update(saved)
        raise
    for name, value in values.items():
        log.info("admin: %s changed from %s to %s (%s)", name, _shown(name, before[name]), _shown(name, value), by)


# -- keys ----------------------------------------------------------------------------------

@router.post("/admin/keys", openapi_extra=request_body(CreateKeyRequest))
async def create_key(request: Request):
    state = request.app.state
    req = parse(CreateKeyRequest, await read_json(request), strict=True)
    scope = Scope.from_dict({"models": req.models, "endpoints": req.endpoints, "read_only": req.read_only})
    key, record = await state.admin_keys.create(req.name, scope)
    log.info("admin: API key %s created (%s)", record.id, scope.as_dict())
    return json_response(dumps({**record.public(), "key": key}))


@router.get("/admin/keys")
async def list_keys(request: Request):
    records = request.app.state.security.keys.records()
    return json_response(dumps({"object": "list", "data": [r.public() for r in records]}))


@router.delete("/admin/keys/{key_id}", openapi_extra=path_doc("key_id"))
async def revoke_key(request: Request):
    key_id = request.path_params["key_id"]
    if not await request.app.state.admin_keys.revoke(key_id):
        raise APIError(404, f"No API key with id '{key_id}'.", param="key_id", code="not_found")
    log.info("admin: API key %s revoked", key_id)
    return json_response(dumps({"object": "api_key.deleted", "id": key_id, "deleted": True}))


# -- bans ----------------------------------------------------------------------------------

def _abuse(request: Request):
    return request.app.state.security.abuse


@router.get("/admin/bans")
async def list_bans(request: Request):
    abuse = _abuse(request)
    return json_response(dumps({"object": "list", "enabled": abuse is not None,
                                "data": abuse.bans() if abuse is not None else []}))


@router.delete("/admin/bans")
async def lift_all_bans(request: Request):
    abuse = _abuse(request)
    n = abuse.lift_all() if abuse is not None else 0
    log.info("admin: %d ban(s) lifted", n)
    return json_response(dumps({"object": "ban.deleted", "lifted": n}))


@router.delete("/admin/bans/{ip}", openapi_extra=path_doc("ip"))
async def lift_ban(request: Request):
    ip = request.path_params["ip"]
    abuse = _abuse(request)
    if abuse is None or not abuse.lift(ip):
        raise APIError(404, f"No ban on '{ip}'.", param="ip", code="not_found")
    log.info("admin: ban on %s lifted", ip)
    return json_response(dumps({"object": "ban.deleted", "ip": ip, "lifted": 1}))
