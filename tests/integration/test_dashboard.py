"""The live dashboard (``/dashboard``), in a real browser: Debian's chromium driven by Playwright.

The setup installs what it needs: chromium with apt-get when ``/usr/bin/chromium`` is missing
(the Python ``playwright`` package of the ``test`` extra drives it; no browser is downloaded).
The page is loaded against a live server under load; the tests wait for DOM and chart
conditions (never a sleep) and check that the control panel's changes reach the server.

``FAKEAI_UPDATE_SCREENSHOT=1`` also saves the screenshot taken under load as
``docs/img/dashboard.png`` (the README's picture).
"""

from __future__ import annotations

import asyncio
import fcntl
import itertools
import os
import re
import shutil
import statistics
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import httpx
import openai
import orjson
import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout
from playwright.sync_api import sync_playwright

from tests.server import run_server, wait_for

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "img" / "dashboard.png"
MODEL = "gpt-4o-mini"
# a long shared start: requests after the first find its KV blocks cached (prefix-cache hits)
SYSTEM = " ".join(f"Rule {i}: answer briefly, plainly and politely." for i in range(40))
WAIT_MS = 20_000

pytestmark = pytest.mark.timeout(900)  # the first run may install chromium (apt-get)


def install_chromium() -> str | None:
    """Install Debian's chromium when it is missing; None, or why it cannot be had."""
    if os.path.exists(CHROMIUM):
        return None
    if shutil.which("apt-get") is None:
        return "chromium is missing and there is no apt-get to install it"
    if os.geteuid() != 0:
        return "chromium is missing and apt-get needs root"
    with open(os.path.join(tempfile.gettempdir(), "fakeai-chromium-install.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one install at a time (pytest-xdist workers)
        if os.path.exists(CHROMIUM):
            return None
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        for cmd in (["apt-get", "update", "-q"], ["apt-get", "install", "-y", "-q", "chromium"]):
            done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=840, check=False)
            if done.returncode != 0:
                return f"`{' '.join(cmd)}` failed: {done.stderr.strip()[-400:]}"
    return None if os.path.exists(CHROMIUM) else f"apt-get installed chromium, but {CHROMIUM} is missing"


@pytest.fixture(scope="module")
def browser():
    reason = install_chromium()
    if reason:
        pytest.skip(reason)
    with tempfile.TemporaryDirectory(prefix="fakeai-chromium-") as profile, sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            profile, executable_path=CHROMIUM, headless=True, args=ARGS,
            viewport={"width": 1600, "height": 1000}, service_workers="block")
        yield context
        context.close()


@pytest.fixture(scope="module")
def live():
    """A server whose queues fill: 2 workers per model of at most 2 sequences each."""
    with run_server("--ttft", "30", "--itl", "10", "--workers-per-model", "2", "--max-num-seqs", "2") as s:
        yield s


class Load:
    """Streaming chat completions from ``concurrency`` loops in a thread of its own, until stopped
    (bounded: at most ``limit`` requests and ``seconds`` seconds)."""

    def __init__(self, server, concurrency: int = 16, limit: int = 3000, seconds: float = 90) -> None:
        self.server, self.concurrency, self.limit, self.seconds = server, concurrency, limit, seconds
        self.done = self.failed = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join(30)

    async def _run(self) -> None:
        client = self.server.async_client()
        deadline = time.monotonic() + self.seconds

        async def loop() -> None:
            while not self.stop.is_set() and time.monotonic() < deadline and self.done + self.failed < self.limit:
                try:
                    stream = await client.chat.completions.create(
                        model=MODEL, stream=True, max_tokens=40,
                        messages=[{"role": "system", "content": SYSTEM},
                                  {"role": "user", "content": "Tell me about the sea."}])
                    async for _ in stream:
                        pass
                    self.done += 1
                except openai.APIError:
                    self.failed += 1

        await asyncio.gather(*(loop() for _ in range(self.concurrency)))
        await client.close()


def open_dashboard(browser, server):
    page = browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(server.base_url + "/dashboard")
    wait_js(page, "() => window.dashboard && window.dashboard.mode === 'live'")
    return page, errors


def wait_js(page, expression: str, arg=None, timeout: float = WAIT_MS) -> None:
    try:
        page.wait_for_function(expression, arg=arg, timeout=timeout)
    except PlaywrightTimeout:
        pytest.fail(f"not true within {timeout / 1000:g} s: {expression} (arg {arg!r})")


# -- served from the package --------------------------------------------------------------------

def test_page_and_assets_are_served_from_the_package(server):
    with server.http() as h:
        r = h.get("/dashboard")
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
        assert r.headers["cache-control"] == "no-cache"
        assert h.get("/dashboard", headers={"if-none-match": r.headers["etag"]}).status_code == 304
        page = r.text
        assets = re.findall(r'(?:src|href)="(/dashboard/[^"]+)"', page)
        assert {a.split("?")[0] for a in assets} >= {
            "/dashboard/vendor/uPlot.iife.min.js", "/dashboard/data.js", "/dashboard/app.js",
            "/dashboard/dashboard.css", "/dashboard/vendor/uPlot.LICENSE"}
        assert not re.search(r'(?:src|href)="(?:https?:)?//', page)  # nothing from elsewhere
        for asset in assets:
            a = h.get(asset)
            assert a.status_code == 200, asset
            if "?v=" in asset:  # named by content hash: cached for good
                assert a.headers["cache-control"] == "public, max-age=31536000, immutable"
                assert asset.endswith(a.headers["etag"].strip('"'))
        assert "MIT License" in h.get("/dashboard/vendor/uPlot.LICENSE").text
        assert h.get("/dashboard/app.js?v=stale").headers["cache-control"] == "no-cache"
        assert h.head("/dashboard").headers["content-length"] == str(len(r.content))
        for missing in ("/dashboard/nope.js", "/dashboard/%2e%2e/app.py", "/dashboard/vendor"):
            m = h.get(missing)
            assert m.status_code == 404 and m.json()["error"]["code"] == "not_found", missing


# -- live charts ---------------------------------------------------------------------------------

def test_charts_follow_the_load(browser, live, tmp_path):
    page, errors = open_dashboard(browser, live)
    with Load(live) as load:
        # throughput, latency percentiles, per-worker queue and batch, KV and GPU series fill in
        wait_js(page, "() => dashboard.charts.throughput.values('output tokens').some(v => v > 0)")
        # ... and reach the drawn plot (uPlot's own data), not only the page's buffers
        wait_js(page, "() => dashboard.charts.throughput.plot.data[1].some(v => v > 0)")
        wait_js(page, "() => dashboard.charts.requests.values('requests').some(v => v > 0)")
        wait_js(page, "() => dashboard.charts.ttft.values('p50').some(v => v > 0)")
        wait_js(page, "() => dashboard.charts.itl.values('p50').some(v => v > 0)")
        wait_js(page, "() => dashboard.charts.queue.labels().some(l => dashboard.charts.queue.values(l).some(v => v > 0))")
        wait_js(page, "() => [...document.querySelectorAll('#workers td[data-field=waiting]')]"
                      ".some(td => Number(td.textContent) > 0)")
        wait_js(page, "() => dashboard.charts.batch.labels().some(l => dashboard.charts.batch.values(l).some(v => v >= 2))")
        wait_js(page, "() => dashboard.charts.kv.labels().some(l => dashboard.charts.kv.values(l).some(v => v > 0))")
        wait_js(page, "() => dashboard.charts.hit.values('all').some(v => v > 0)")
        wait_js(page, "() => dashboard.charts.router.labels().some(l => dashboard.charts.router.values(l).some(v => v > 0))")
        wait_js(page, "() => dashboard.charts['gpu-util'].labels().some(l => dashboard.charts['gpu-util'].values(l).some(v => v > 0))")
        wait_js(page, "() => dashboard.charts['gpu-power'].labels().length > 0")
        assert load.done > 0 and load.failed == 0
        # the server's own view agrees: as many worker rows and GPU rows as the cluster has
        with live.http() as h:
            cluster = h.get("/cluster").json()
        gpus = sum(len(w["gpus"]) for w in cluster["workers"])
        wait_js(page, "([w, g]) => document.querySelectorAll('#workers tbody tr').length === w"
                      " && document.querySelectorAll('#gpus tbody tr').length === g", [len(cluster["workers"]), gpus])
        update = os.environ.get("FAKEAI_UPDATE_SCREENSHOT") == "1"
        if update:  # the README's picture: a minute of history
            wait_js(page, "() => dashboard.charts.throughput.times.length >= 60", timeout=90_000)
        shot = tmp_path / "dashboard.png"
        page.screenshot(path=str(shot), full_page=True)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 50_000
    if update:
        SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, SCREENSHOT)
    assert errors == []
    page.close()


def test_socket_drop_falls_back_to_polling_and_reconnects(browser, live):
    page, errors = open_dashboard(browser, live)
    polled = []
    page.on("request", lambda r: polled.append(r.url) if "/metrics/json" in r.url else None)
    page.evaluate("() => dashboard.source.socket.close()")
    wait_js(page, "() => dashboard.mode === 'polling'")
    before = page.evaluate("() => dashboard.documents")
    wait_js(page, "(n) => dashboard.documents >= n + 2", before)  # documents keep coming, polled
    assert polled
    wait_js(page, "() => dashboard.mode === 'live'")  # the socket is back
    # deltas are RFC 7386 merge patches: objects merge, null removes, arrays replace
    merged = page.evaluate("() => mergePatch({a: {b: 1, c: 2}, d: [1, 2]}, {a: {b: null, e: {f: 3}}, d: [3]})")
    assert merged == {"a": {"c": 2, "e": {"f": 3}}, "d": [3]}
    assert errors == []
    page.close()


def test_history_opens_the_charts_and_a_history_file_replays(browser, live, tmp_path):
    with live.http() as h:
        assert wait_for(lambda: len(h.get("/metrics/history").json()["data"]) >= 5)
        lines = h.get("/metrics/history.jsonl").text.splitlines()[-20:]
    page, errors = open_dashboard(browser, live)
    # the charts open with the server's history: more points than the page has had documents live
    assert page.evaluate("() => dashboard.charts['gpu-util'].times.length") >= 5
    exported = tmp_path / "history.jsonl"
    exported.write_text("\n".join(lines) + "\n")
    page.select_option("#replay-speed", "100")
    page.set_input_files("#replay-file", str(exported))
    wait_js(page, "(n) => dashboard.mode === 'replay' && document.getElementById('status').textContent"
                  ".includes(`${n}/${n}`)", len(lines))
    times = page.evaluate("() => dashboard.charts['gpu-util'].times")
    assert times == [orjson.loads(line)["time"] for line in lines]  # exactly the file's entries, in order
    page.click("#live")
    wait_js(page, "() => dashboard.mode === 'live'")
    assert errors == []
    page.close()


def test_keys_from_the_page_open_metrics_and_controls_with_auth_on(browser):
    with run_server("--api-key", "sk-dash-user", "--admin-key", "sk-dash-admin") as s:
        page = browser.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        sockets: list[str] = []
        page.on("websocket", lambda ws: sockets.append(ws.url))

        def with_key(route):  # the page itself goes through the guard: a proxy could add this
            route.continue_(headers={**route.request.headers, "authorization": "Bearer sk-dash-user"})

        page.route(re.compile(r".*/dashboard(/.*)?(\?.*)?$"), with_key)
        page.goto(s.base_url + "/dashboard")
        # no keys yet: the metrics and the admin API refuse, and the page says so
        wait_js(page, "() => dashboard.mode === 'down'")
        wait_js(page, "() => document.querySelector('#form-latency .feedback').textContent.includes('401')")
        assert page.evaluate("() => dashboard.documents") == 0
        page.fill("#api-key", "sk-dash-user")
        page.press("#api-key", "Tab")  # leaving the field commits it (a change event)
        wait_js(page, "() => dashboard.documents > 0 && ['live', 'polling'].includes(dashboard.mode)")
        assert any("api_key=sk-dash-user" in url for url in sockets)  # browsers cannot give a socket headers
        page.fill("#admin-key", "sk-dash-admin")
        page.press("#admin-key", "Tab")  # leaving the field commits it (a change event)
        wait_js(page, "() => document.querySelector('#form-cluster [name=max_num_seqs]').value === '256'")
        page.fill("#form-cluster [name=max_num_seqs]", "64")
        assert _apply(page, "form-cluster") == "ok"
        with httpx.Client(base_url=s.base_url, headers={"authorization": "Bearer sk-dash-admin"}) as h:
            assert h.get("/cluster", headers={"authorization": "Bearer sk-dash-user"}).json()["config"]["max_num_seqs"] == 64
        assert page.evaluate("() => [sessionStorage.getItem('fakeai.api-key'), sessionStorage.getItem('fakeai.admin-key')]") \
            == ["sk-dash-user", "sk-dash-admin"]
        assert errors == []
        page.close()


# -- the control panel -----------------------------------------------------------------------------

def _apply(page, form: str) -> str:
    """Submit a panel form; the feedback's state ("ok" or "error") once the server answered."""
    page.click(f"#{form} button[type=submit]")
    wait_js(page, "(f) => ['ok', 'error'].includes(document.querySelector(`#${f} .feedback`).dataset.state)", form)
    return page.get_attribute(f"#{form} .feedback", "data-state")


def _gaps(server) -> list[float]:
    payload = {"model": MODEL, "stream": True, "max_tokens": 30, "ignore_eos": True,
               "messages": [{"role": "user", "content": "hi"}]}
    times = []
    with httpx.Client(base_url=server.base_url, timeout=30) as c, c.stream("POST", "/v1/chat/completions",
                                                                          json=payload) as r:
        for line in r.iter_lines():
            if '"content":"' in line and '"content":""' not in line:
                times.append(time.perf_counter())
    return [b - a for a, b in itertools.pairwise(times)]


def test_latency_control_reaches_the_server(browser, live):
    page, errors = open_dashboard(browser, live)
    wait_js(page, "() => document.querySelector('#form-latency [name=itl_ms]').value === '10'")  # read from the server
    page.fill("#form-latency [name=itl_ms]", "45")
    assert _apply(page, "form-latency") == "ok"
    assert "itl_ms = 45" in page.text_content("#form-latency .feedback")
    with live.http() as h:
        assert h.get("/cluster").json()["config"]["itl_ms"] == 45
    assert 0.040 <= statistics.median(_gaps(live)) < 0.060  # a timed request shows it
    page.fill("#form-latency [name=itl_ms]", "10")
    assert _apply(page, "form-latency") == "ok"
    assert errors == []
    page.close()


def test_worker_count_control_reaches_the_server_and_the_tables(browser, live):
    page, errors = open_dashboard(browser, live)
    with live.http() as h:
        before = h.get("/cluster").json()["workers"]
        models = {w["model"] for w in before}
        page.fill("#form-cluster [name=workers_per_model]", "3")
        assert _apply(page, "form-cluster") == "ok"
        after = h.get("/cluster").json()["workers"]
    serving = [w for w in after if w["status"] == "serving"]
    assert len(serving) == 3 * len(models)
    wait_js(page, "(n) => document.querySelectorAll('#workers tbody tr').length === n", len(after))
    page.fill("#form-cluster [name=workers_per_model]", "2")
    assert _apply(page, "form-cluster") == "ok"
    assert errors == []
    page.close()


def test_fault_controls_show_errors_and_reach_the_server(browser, live):
    page, errors = open_dashboard(browser, live)
    wait_js(page, "() => document.querySelector('#form-faults [name=fault_rate]').value === '0'")
    for box in page.query_selector_all("#form-faults input[type=checkbox]"):
        box.uncheck()
    page.fill("#form-faults [name=fault_rate]", "0.5")
    assert _apply(page, "form-faults") == "error"  # a rate with no fault type: the server's 400, shown
    assert "400" in page.text_content("#form-faults .feedback")
    with live.http() as h:
        assert h.get("/admin/config").json()["settings"]["fault_rate"] == 0
        page.check("#form-faults input[value='503']")
        page.fill("#form-faults [name=fault_rate]", "1")
        assert _apply(page, "form-faults") == "ok"
        settings = h.get("/admin/config").json()["settings"]
        assert settings["fault_rate"] == 1 and settings["fault_types"] == ["503"]
        client = live.client()
        with pytest.raises(openai.InternalServerError):
            client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hi"}])
        wait_js(page, "() => Number(document.querySelector('#faults tr[data-key=\"503\"] td[data-field=count]')"
                      "?.textContent) > 0")
        wait_js(page, "() => dashboard.charts.errors.values('fault 503').some(v => v > 0)")
        page.fill("#form-faults [name=fault_rate]", "0")
        assert _apply(page, "form-faults") == "ok"
        assert wait_for(lambda: h.get("/admin/config").json()["settings"]["fault_rate"] == 0)
    assert errors == []
    page.close()
