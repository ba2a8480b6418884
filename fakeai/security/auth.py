"""``Guard``: the pure-ASGI middleware that protects every route by default.

Per request, in order (each step only when its feature is on):

1. ``/admin/*`` needs the admin key (and then skips bans and limits); with no admin key
   set, /admin is open while authentication is off and closed (403) while it is on.
2. A banned IP gets 403 with ``Retry-After``.
3. With authentication on, every route except the small public allow-list needs a key
   in ``Authorization: Bearer``, ``x-api-key`` (Anthropic clients) or ``api-key`` (Azure
   clients); a missing or wrong one gets OpenAI's 401 ``invalid_api_key``, a key whose
   scope does not cover the endpoint (or a read-only key writing) a 401 naming the
   missing scope. WebSocket handshakes are refused before ``accept`` the same way.
4. A ``Pass`` for the route's ``admit``/``settle`` calls (model scopes, injection
   detection, rate limits); its headers go in ``scope["state"]["response_headers"]``,
   which ``RequestMeta`` adds to the response.

An in-process caller (the batch runner) can act as a key without holding it: it seeds
``scope["state"]["act_as_key"]`` with the key's id (``scope["state"]["api_key_id"]`` of
the request that created the work); no outside client can set the ASGI state.

The public allow-list: ``/images/*`` (unguessable capability URLs, like OpenAI's
signed image URLs), ``/health*`` unless ``--no-public-health``, and metrics routes with
``--public-metrics``. Any route added later is protected without anyone remembering to.
"""

from __future__ import annotations

import re

import orjson

from ..api.errors import error_body, send_json
from .hooks import Pass
from .keys import KeyRecord, mask

_KEY_URL = "https://platform.openai.com/account/api-keys"
_MISSING = ("You didn't provide an API key. You need to provide your API key in an Authorization header "
            "using Bearer auth (i.e. Authorization: Bearer YOUR_KEY), or as the password field (with blank "
            f"username) if you're accessing the API from your browser and are prompted for a username and "
            f"password. You can obtain an API key from {_KEY_URL}.")
_JSON = (b"content-type", b"application/json")
_CONNECTIONS_MAX = 4096
_PLAIN_BEARER = re.compile(rb"Bearer ([!-~]+)").fullmatch  # a token of visible ASCII


def credential(headers) -> str | None:
    """The key a request presents: Authorization Bearer, else x-api-key, else api-key."""
    found = None
    for name, value in headers:
        if name == b"authorization":
            plain = _PLAIN_BEARER(value)
            if plain is not None:  # the common form, without the general parse
                return plain.group(1).decode("ascii")
            scheme, _, token = value.decode("latin-1").strip().partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                return token.strip()
        elif name in (b"x-api-key", b"api-key") and found is None:
            found = value.decode("latin-1").strip() or None
    return found


def client_ip(scope) -> str:
    client = scope.get("client")
    return client[0] if client else "unknown"


def is_metrics(path: str) -> bool:
    return not path.startswith(("/v1/", "/admin")) and "metrics" in path.split("/")


class Guard:
    def __init__(self, app, security) -> None:
        self.app = app
        self.sec = security
        # connection (client address) -> (hash of its Authorization header, record, key-ring version)
        self._connections: dict[tuple, tuple[int, KeyRecord, int]] = {}

    async def __call__(self, scope, receive, send):
        sec = self.sec
        kind = scope["type"]
        if kind == "lifespan" or not sec.active:
            return await self.app(scope, receive, send)
        path = scope["path"]
        ip = client_ip(scope)
        if path == "/admin" or path.startswith("/admin/"):
            denied = await self._admin(scope["headers"], ip)
            if denied:
                return await _refuse(scope, receive, send, *denied)
            return await self.app(scope, receive, send)
        abuse = sec.abuse
        if abuse is not None:
            left = abuse.banned(ip)
            if left:
                wait = str(max(1, round(left)))
                msg = (f"Too many failed or abusive requests from your IP address: it is blocked for {wait} "
                       "more seconds.")
                return await _refuse(scope, receive, send, 403, msg, "ip_banned", [(b"retry-after", wait.encode())])
        record = None
        method = scope.get("method", "GET")
        if sec.auth_on and not self._public(path, method):
            acting = scope["state"].get("act_as_key") if "state" in scope else None
            key = None
            if acting is not None:  # an in-process caller (batch lines) acting as a key, by its id
                record = sec.keys.get(acting)
            else:
                record = self._known(scope)
                if record is None:
                    key = credential(scope["headers"])
                    if key:
                        record = sec.keys.lookup(key)
                        if record is False:  # not verified in this process yet
                            record = await sec.keys.verify(key)
                        if record is not None:
                            self._remember(scope, key, record)
            if record is None:
                if abuse is not None:
                    abuse.record(ip, "auth")
                msg = _MISSING if not key else (f"Incorrect API key provided: {mask(key)}. You can find your "
                                                f"API key at {_KEY_URL}.")
                return await _refuse(scope, receive, send, 401, msg, "invalid_api_key")
            missing = record.scope.missing_for(method, path)
            if missing:
                return await _refuse(scope, receive, send, 401,
                                     "You have insufficient permissions for this operation. Missing scopes: "
                                     f"{missing}. Check that you are using an API key with the necessary "
                                     "scopes.", "insufficient_permissions")
            scope.setdefault("state", {})["api_key_id"] = record.id  # usage is accounted to it
        if kind == "http" and (sec.per_request or (record is not None and record.scope.models is not None)):
            state = scope["state"]  # set by RequestMeta
            state["security"] = Pass(sec, record, ip, state.setdefault("response_headers", []))
        await self.app(scope, receive, send)

    def _known(self, scope) -> KeyRecord | None:
        """The record this connection's earlier request proved with the same ``Authorization``
        header, while no key has been added or revoked since (else None): a keep-alive client
        sends the same header on every request, and this skips parsing and fingerprinting it."""
        seen = self._connections.get(scope.get("client"))
        if seen is None or seen[2] != self.sec.keys.version:
            return None
        for name, value in scope["headers"]:
            if name == b"authorization":
                return seen[1] if hash(value) == seen[0] else None
        return None

    def _remember(self, scope, key: str, record: KeyRecord) -> None:
        """Remember ``key``'s record for this connection if it came as ``Bearer KEY`` exactly."""
        client = scope.get("client")
        if client is None:
            return
        for name, value in scope["headers"]:
            if name == b"authorization":
                if value != b"Bearer " + key.encode("latin-1"):
                    return
                if len(self._connections) >= _CONNECTIONS_MAX:
                    self._connections.clear()
                # the header's hash (SipHash under this process's random key), not the key itself
                self._connections[client] = (hash(value), record, self.sec.keys.version)
                return

    def _public(self, path: str, method: str) -> bool:
        sec = self.sec
        if path.startswith("/images/") or path == "/dashboard" or path.startswith("/dashboard/"):
            return method in ("GET", "HEAD")  # unguessable image ids; the page's static files (no data)
        if path == "/health" or path.startswith("/health/"):
            return sec.public_health
        return sec.public_metrics and is_metrics(path)

    async def _admin(self, headers, ip: str) -> tuple | None:
        sec = self.sec
        if sec.admin is not None:
            key = credential(headers)
            if key and await sec.admin.verify(key) is not None:
                return None
            if sec.abuse is not None:
                sec.abuse.record(ip, "auth")
            return (401, "Incorrect admin key provided." if key else
                    "The admin API needs the admin key: Authorization: Bearer ADMIN_KEY.", "invalid_api_key")
        if sec.auth_on:
            return (403, ("The admin API is disabled: authentication is on and no admin key is set "
                          "(start the server with --admin-key)."), "admin_disabled")
        return None


async def _refuse(scope, receive, send, status: int, message: str, code: str, extra=()) -> None:
    path = scope["path"]
    if path.startswith("/v1/messages"):  # Anthropic's clients read Anthropic's envelope
        kind = {401: "authentication_error", 403: "permission_error"}.get(status, "invalid_request_error")
        body = orjson.dumps({"type": "error", "error": {"type": kind, "message": message}})
    else:
        body = error_body(message, code=code)
    if scope["type"] == "websocket":
        headers = [_JSON, (b"content-length", str(len(body)).encode()), *extra]
        await receive()  # websocket.connect
        if "websocket.http.response" in scope.get("extensions", {}):
            await send({"type": "websocket.http.response.start", "status": status, "headers": headers})
            await send({"type": "websocket.http.response.body", "body": body})
        else:
            await send({"type": "websocket.close", "code": 1008, "reason": code})
        return
    await send_json(send, status, body, extra)
