"""Run fakeai from Python: a server on a free port with ready ``openai`` clients.

    from fakeai.client import FakeAI

    with FakeAI(ttft_ms=0, itl_ms=0) as fake:
        reply = fake.openai.chat.completions.create(model="gpt-4o-mini", messages=[...])

The server runs in a background thread of this process (``mode="thread"``,
the default: starts in well under a second) or as a separate ``fakeai server``
process (``mode="process"``: isolated, and the only choice for several
uvicorn workers). Keyword arguments are settings (see ``fakeai config``);
the store defaults to ``memory`` so tests leave nothing behind.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from functools import cached_property
from typing import Any

import httpx

from .config import Settings


class FakeAI:
    def __init__(self, mode: str = "thread", api_key: str = "sk-fakeai", ready_timeout: float = 30.0,
                 **settings: Any) -> None:
        if mode not in ("thread", "process"):
            raise ValueError("mode must be 'thread' or 'process'")
        settings.setdefault("store", "memory")
        settings.setdefault("host", "127.0.0.1")
        settings.setdefault("port", _free_port())
        settings.setdefault("log_level", "warning")
        self.settings = Settings(**settings)
        self.mode = mode
        self.api_key = api_key
        self.ready_timeout = ready_timeout
        self.base_url = f"http://{self.settings.host}:{self.settings.port}"
        self.api_url = self.base_url + "/v1"
        self._thread: threading.Thread | None = None
        self._server = None
        self._proc: subprocess.Popen | None = None
        self._log = None

    # -- lifecycle ------------------------------------------------------------------------
    def start(self) -> "FakeAI":
        if self.mode == "thread":
            self._start_thread()
        else:
            self._start_process()
        self._wait_ready()
        return self

    def _start_thread(self) -> None:
        import uvicorn

        from .app import create_app

        from .serving import uvicorn_options

        # the server's own protocol and limits; the host process keeps its logging set-up
        options = {**uvicorn_options(self.settings), "log_config": None, "log_level": self.settings.log_level,
                   "access_log": False}
        config = uvicorn.Config(create_app(self.settings), lifespan="on", **options)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name="fakeai-server", daemon=True)
        self._thread.start()

    def _start_process(self) -> None:
        args = [sys.executable, "-m", "fakeai", "server"]
        for name, value in self.settings.model_dump(exclude_defaults=True).items():
            flag = "--" + name.replace("_", "-")
            if isinstance(value, bool):
                args.append(flag if value else "--no-" + name.replace("_", "-"))
            elif isinstance(value, list):
                for v in value:
                    args += [flag, str(v)]
            else:
                args += [flag, str(value)]
        for name in ("host", "port", "store", "log_level"):  # always explicit
            if name not in self.settings.model_dump(exclude_defaults=True):
                args += ["--" + name.replace("_", "-"), str(getattr(self.settings, name))]
        env = {k: v for k, v in os.environ.items() if not k.startswith("FAKEAI_")}
        self._log = tempfile.NamedTemporaryFile(prefix="fakeai-", suffix=".log", delete=False)
        self._proc = subprocess.Popen(args, env=env, stdout=self._log, stderr=subprocess.STDOUT)

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.ready_timeout
        while True:
            if self._proc is not None and self._proc.poll() is not None:
                raise RuntimeError(f"fakeai exited with {self._proc.returncode}:\n{self.logs()}")
            if self._thread is not None and not self._thread.is_alive():
                raise RuntimeError("fakeai server thread stopped during startup")
            try:
                if httpx.get(self.base_url + "/health/ready", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"fakeai did not become ready within {self.ready_timeout} s")
            time.sleep(0.02)

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
            self._thread.join(15)
            self._server = self._thread = None
        if self._proc is not None:
            self._proc.terminate()
            try:
                self._proc.wait(10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
            self._proc = None
        if self._log is not None:
            self._log.close()
            os.unlink(self._log.name)
            self._log = None
        for name in ("openai", "async_openai", "http"):
            client = self.__dict__.pop(name, None)
            if client is not None and hasattr(client, "close") and not asyncio.iscoroutinefunction(client.close):
                client.close()

    def logs(self) -> str:
        """What a ``process`` server has printed so far."""
        if self._log is None:
            return ""
        with open(self._log.name, "rb") as f:
            return f.read().decode(errors="replace")

    def __enter__(self) -> "FakeAI":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    async def __aenter__(self) -> "FakeAI":
        await asyncio.to_thread(self.start)
        return self

    async def __aexit__(self, *exc) -> None:
        await asyncio.to_thread(self.stop)

    # -- clients ---------------------------------------------------------------------------
    @cached_property
    def openai(self):
        """An ``openai.OpenAI`` bound to this server (no retries: faults surface at once)."""
        import openai

        return openai.OpenAI(base_url=self.api_url, api_key=self.api_key, max_retries=0)

    @cached_property
    def async_openai(self):
        import openai

        return openai.AsyncOpenAI(base_url=self.api_url, api_key=self.api_key, max_retries=0)

    @cached_property
    def http(self) -> httpx.Client:
        """A plain HTTP client for the non-OpenAI routes (/metrics, /cluster, /admin ...)."""
        return httpx.Client(base_url=self.base_url, timeout=30,
                            headers={"authorization": f"Bearer {self.api_key}"})


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
