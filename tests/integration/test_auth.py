"""Authentication: every route needs a key, keys are scoped and revocable, and no key
ever shows up in a log line, a response or the metrics.

The ``auth`` server has two keys (one from the command line, one from a keys file
given as ``@path``) and an admin key; ``no_admin`` has a key but no admin key.
"""

from __future__ import annotations

import asyncio
import re

import anthropic
import httpx
import openai
import pytest
import websockets
from starlette.routing import WebSocketRoute

from fakeai.app import create_app
from fakeai.config import Settings
from tests.openapi_spec import validate, validate_error
from tests.server import run_server

KEY = "sk-test-cli-4f9a1c2e8b7d6a5f3e2d1c0b"
FILE_KEY = "sk-test-file-0a1b2c3d4e5f6a7b8c9d0e1f"
ADMIN = "adm-test-9e8d7c6b5a4f3e2d1c0b9a8f"
WRONG = "sk-wrong-1111222233334444555566667777"
MODEL = "gpt-4o-mini"
CHAT = {"model": MODEL, "messages": [{"role": "user", "content": "Say hi"}], "max_tokens": 5}


def bearer(key: str) -> dict:
    return {"Authorization": f"Bearer {key}"}


def sdk(server, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.api_url, api_key=key, max_retries=0)


@pytest.fixture(scope="module")
def auth(tmp_path_factory):
    keys = tmp_path_factory.mktemp("keys") / "keys.txt"
    keys.write_text(f"# team keys\n\n{FILE_KEY}\n", encoding="utf-8")
    with run_server("--ttft", "0", "--itl", "0", "--api-key", KEY, "--api-key", f"@{keys}",
                    "--admin-key", ADMIN, "--log-level", "info") as s:
        yield s


@pytest.fixture(scope="module")
def http(auth):
    with auth.http() as c:
        yield c


def _routes() -> list[tuple[str, str]]:
    """(method, path) of every operation of the app's OpenAPI document, parameters filled."""
    doc = create_app(Settings()).openapi()
    out = []
    for path, ops in doc["paths"].items():
        for method in ops:
            out.append((method.upper(), re.sub(r"\{[^}]+\}", "x", path)))
    return out


def public(path: str) -> bool:
    """The allow-list of the default options: the health routes (``--public-health``) and the
    dashboard's static page and assets (its data comes from protected routes)."""
    return path == "/health" or path.startswith(("/health/", "/dashboard"))


def test_every_route_needs_a_key(http):
    routes = _routes()
    assert len(routes) > 50 and any(p.startswith("/admin/") for _, p in routes)
    for method, path in routes:
        if public(path):
            assert http.request(method, path).status_code != 401, path
            continue
        for headers in ({}, bearer(WRONG), {"x-api-key": WRONG}):
            r = http.request(method, path, headers=headers, json={})
            assert r.status_code == 401, (method, path, headers, r.status_code)
            if not path.startswith("/v1/messages"):
                validate_error(r.json())
                assert r.json()["error"]["code"] == "invalid_api_key"
    # a route nobody has written yet is protected too: the guard runs before routing
    assert http.get("/v1/not-yet-a-route").status_code == 401


def test_every_websocket_needs_a_key(auth):
    paths = [r.path for r in create_app(Settings()).routes if isinstance(r, WebSocketRoute)]
    paths += ["/v1/realtime", "/metrics/stream"]  # and any WebSocket added later

    async def handshake(path: str, headers: dict) -> int:
        try:
            async with websockets.connect(f"ws://127.0.0.1:{auth.port}{path}", additional_headers=headers,
                                          open_timeout=5):
                return 101
        except websockets.InvalidStatus as e:
            return e.response.status_code

    for path in paths:
        assert asyncio.run(handshake(path, {})) == 401, path
        assert asyncio.run(handshake(path, bearer(WRONG))) == 401, path
    # with a key the handshake passes the guard (and reaches routing: no such WebSocket here)
    assert asyncio.run(handshake("/v1/realtime", bearer(KEY))) != 401


def test_the_dashboard_page_is_public_but_its_data_is_not(auth, http):
    assert http.get("/dashboard").status_code == 200  # static page and assets, no data
    assert http.get("/metrics/json").status_code == 401
    assert http.get("/metrics/json", headers=bearer(KEY)).status_code == 200


def test_keys_from_the_flag_and_the_keys_file_work_with_every_header(auth, http):
    for headers in (bearer(KEY), bearer(FILE_KEY), {"x-api-key": KEY}, {"api-key": FILE_KEY}):
        r = http.post("/v1/chat/completions", headers=headers, json=CHAT)
        assert r.status_code == 200, headers
        validate("CreateChatCompletionResponse", r.json())
    models = sdk(auth, FILE_KEY).models.list()
    assert any(m.id == MODEL for m in models.data)


def test_sdk_sees_authentication_errors(auth):
    with pytest.raises(openai.AuthenticationError) as e:
        sdk(auth, WRONG).chat.completions.create(**CHAT)
    assert e.value.code == "invalid_api_key"
    assert "sk-wr***777" in e.value.message and WRONG not in e.value.message  # masked like OpenAI
    with pytest.raises(openai.AuthenticationError):
        sdk(auth, KEY[:-1]).models.list()


def test_anthropic_clients_use_x_api_key(auth):
    msg = {"model": "claude-3-5-haiku-latest", "max_tokens": 8, "messages": [{"role": "user", "content": "Hi"}]}
    good = anthropic.Anthropic(base_url=auth.base_url, api_key=KEY, max_retries=0)
    assert good.messages.create(**msg).type == "message"
    bad = anthropic.Anthropic(base_url=auth.base_url, api_key=WRONG, max_retries=0)
    with pytest.raises(anthropic.AuthenticationError) as e:
        bad.messages.create(**msg)
    assert e.value.body["error"]["type"] == "authentication_error"


def test_health_and_images_are_public_metrics_are_not(http):
    assert http.get("/health").status_code == 200
    assert http.get("/images/img-doesnotexist.png").status_code == 404  # public, and unguessable
    assert http.get("/metrics").status_code == 401
    r = http.get("/metrics", headers=bearer(KEY))
    assert r.status_code == 200


def test_public_health_and_public_metrics_options(http):
    adm = bearer(ADMIN)
    try:
        assert http.patch("/admin/config", headers=adm, json={"public_health": False,
                                                             "public_metrics": True}).status_code == 200
        assert http.get("/health").status_code == 401
        assert http.get("/health", headers=bearer(KEY)).status_code == 200
        for path in ("/metrics", "/metrics/prometheus", "/dcgm/metrics"):
            assert http.get(path).status_code == 200, path
        assert http.post("/v1/chat/completions", json=CHAT).status_code == 401
    finally:
        http.patch("/admin/config", headers=adm, json={"public_health": True, "public_metrics": False})
    assert http.get("/health").status_code == 200 and http.get("/metrics").status_code == 401


def test_admin_needs_the_admin_key(http):
    assert http.get("/admin/config").status_code == 401
    assert http.get("/admin/config", headers=bearer(KEY)).status_code == 401  # an API key is not enough
    r = http.get("/admin/config", headers=bearer(ADMIN))
    assert r.status_code == 200
    body = r.json()
    assert body["settings"]["api_key"] == ["***", "***"] and body["settings"]["admin_key"] == "***"


def test_scoped_keys_models_endpoints_read_only_and_revocation(auth, http):
    adm = bearer(ADMIN)

    def create(**scope) -> dict:
        r = http.post("/admin/keys", headers=adm, json={"name": "t", **scope})
        assert r.status_code == 200, r.text
        return r.json()

    only_mini = create(models=[MODEL])
    mini = sdk(auth, only_mini["key"])
    assert mini.chat.completions.create(**CHAT).model == MODEL
    with pytest.raises(openai.NotFoundError) as e:
        mini.chat.completions.create(**{**CHAT, "model": "gpt-4o"})
    assert e.value.code == "model_not_found"

    models_only = create(endpoints=["/v1/models"])
    h = bearer(models_only["key"])
    assert http.get("/v1/models", headers=h).status_code == 200
    assert http.get(f"/v1/models/{MODEL}", headers=h).status_code == 200
    r = http.post("/v1/chat/completions", headers=h, json=CHAT)
    assert r.status_code == 401 and r.json()["error"]["code"] == "insufficient_permissions"

    read_only = create(read_only=True)
    h = bearer(read_only["key"])
    assert http.get("/v1/models", headers=h).status_code == 200
    r = http.post("/v1/chat/completions", headers=h, json=CHAT)
    assert r.status_code == 401 and "api.write" in r.json()["error"]["message"]

    # the listing shows ids, prefixes and scopes: never a key or a hash
    listing = http.get("/admin/keys", headers=adm).json()["data"]
    by_id = {k["id"]: k for k in listing}
    assert by_id[only_mini["id"]]["models"] == [MODEL]
    assert by_id[models_only["id"]]["endpoints"] == ["/v1/models"]
    assert by_id[read_only["id"]]["read_only"] is True
    text = str(listing)
    assert "$argon2" not in text and "key" not in {f for k in listing for f in k}
    for made in (only_mini, models_only, read_only):
        assert made["key"] not in text
        assert made["key"].startswith(by_id[made["id"]]["prefix"])

    # revoked at run time
    assert http.delete(f"/admin/keys/{only_mini['id']}", headers=adm).json()["deleted"] is True
    with pytest.raises(openai.AuthenticationError):
        mini.chat.completions.create(**CHAT)
    assert http.delete(f"/admin/keys/{only_mini['id']}", headers=adm).status_code == 404


def test_keys_never_appear_in_logs_responses_or_metrics(auth, http):
    made = http.post("/admin/keys", headers=bearer(ADMIN), json={"name": "leak-check"}).json()["key"]
    http.patch("/admin/config", headers=bearer(ADMIN), json={"api_key": [KEY, f"@{_keys_file(auth)}"]})
    seen = []
    for key in (KEY, FILE_KEY, made, WRONG, ADMIN):
        for path in ("/v1/chat/completions", "/v1/models", "/v1/messages"):
            r = http.post(path, headers=bearer(key), json=CHAT)
            seen.append(r.text + str(r.headers))
    for path in ("/metrics", "/metrics/prometheus", "/dynamo/metrics", "/dcgm/metrics", "/kv-cache/metrics"):
        seen.append(http.get(path, headers=bearer(KEY)).text)
    seen.append(http.get("/admin/config", headers=bearer(ADMIN)).text)
    seen.append(http.get("/admin/keys", headers=bearer(ADMIN)).text)
    log = auth.output()
    assert "admin: api_key changed from ['***', '***'] to ['***', '***']" in log
    for key in (KEY, FILE_KEY, made, WRONG, ADMIN):
        assert key not in log, key
        for text in seen:
            assert key not in text, key


def _keys_file(auth) -> str:
    cmd = auth.proc.args
    return next(a[1:] for a in cmd if a.startswith("@"))


def test_admin_is_closed_while_auth_is_on_without_an_admin_key():
    with run_server("--api-key", KEY) as s, s.http() as c:
        for headers in ({}, bearer(KEY)):
            r = c.get("/admin/config", headers=headers)
            assert r.status_code == 403 and r.json()["error"]["code"] == "admin_disabled"
        assert c.get("/v1/models", headers=bearer(KEY)).status_code == 200


def test_without_keys_everything_is_open(server):
    with server.http() as c:
        assert c.post("/v1/chat/completions", json=CHAT).status_code == 200
        assert c.get("/metrics").status_code == 200
        assert c.get("/admin/config").status_code == 200  # no auth, no admin key: open (documented)
        r = c.get("/v1/models")
        assert not any(h.startswith("x-ratelimit") for h in r.headers)


def test_wrong_keys_are_cheap_and_do_not_block_the_server(auth):
    """A flood of wrong keys is refused without argon2 (the tag index), concurrently."""
    async def flood() -> list[int]:
        async with httpx.AsyncClient(base_url=auth.base_url, timeout=30) as c:
            rs = await asyncio.gather(*(c.get("/v1/models", headers=bearer(f"sk-flood-{i:032d}"))
                                        for i in range(200)))
            ok = await c.get("/v1/models", headers=bearer(KEY))
            return [r.status_code for r in rs] + [ok.status_code]

    codes = asyncio.run(flood())
    assert codes[:-1] == [401] * 200 and codes[-1] == 200


def test_the_dcgm_exporter_port_needs_a_key_unless_metrics_are_public():
    from tests.server import free_port

    for public_metrics in (False, True):
        port = free_port()
        args = ["--api-key", "sk-port-key", "--dcgm-exporter", "--dcgm-exporter-port", str(port)]
        with run_server(*args, *(["--public-metrics"] if public_metrics else [])):
            url = f"http://127.0.0.1:{port}/metrics"
            anonymous = httpx.get(url, timeout=10)
            wrong = httpx.get(url, headers=bearer("sk-wrong"), timeout=10)
            good = httpx.get(url, headers=bearer("sk-port-key"), timeout=10)
            assert good.status_code == 200 and "DCGM_FI_DEV_GPU_UTIL{" in good.text
            if public_metrics:
                assert anonymous.status_code == 200 and "DCGM_FI_DEV_GPU_UTIL{" in anonymous.text
            else:
                assert anonymous.status_code == wrong.status_code == 401
                assert anonymous.json()["error"]["code"] == "invalid_api_key"
                assert "DCGM" not in anonymous.text


def test_one_connection_changing_keys_is_judged_on_each_request(auth):
    """The guard remembers the key a keep-alive connection proved (by its header's hash) and
    must not let a later request on that connection ride on it: a different key, a key sent
    another way, or a key revoked since are each judged afresh."""
    one = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    with httpx.Client(base_url=auth.base_url, limits=one, timeout=30) as c:
        def chat(headers: dict) -> int:
            return c.post("/v1/chat/completions", headers=headers, json=CHAT).status_code

        assert chat(bearer(KEY)) == 200
        assert chat(bearer(KEY)) == 200
        assert chat(bearer(WRONG)) == 401
        assert chat(bearer(KEY + "x")) == 401
        assert chat({}) == 401
        assert chat(bearer(FILE_KEY)) == 200
        # not a Bearer header: the key comes from x-api-key, and a wrong one is refused
        basic = {"Authorization": "Basic dXNlcjpwYXNz"}
        assert chat({**basic, "x-api-key": KEY}) == 200
        assert chat({**basic, "x-api-key": WRONG}) == 401
        # a key revoked while the connection stays open
        made = c.post("/admin/keys", headers=bearer(ADMIN), json={"name": "conn"}).json()
        assert chat(bearer(made["key"])) == 200
        assert c.delete(f"/admin/keys/{made['id']}", headers=bearer(ADMIN)).json()["deleted"] is True
        r = c.post("/v1/chat/completions", headers=bearer(made["key"]), json=CHAT)
        assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_api_key"
