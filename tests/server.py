"""Run the real fakeai server as a subprocess on a free loopback port."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, proc: subprocess.Popen, port: int, log_path: str = "") -> None:
        self.proc, self.port, self.log_path = proc, port, log_path
        self.base_url = f"http://127.0.0.1:{port}"
        self.api_url = self.base_url + "/v1"

    def client(self, **kw):
        import openai

        return openai.OpenAI(base_url=self.api_url, api_key="sk-test", max_retries=0, **kw)

    def async_client(self, **kw):
        import openai

        return openai.AsyncOpenAI(base_url=self.api_url, api_key="sk-test", max_retries=0, **kw)

    def output(self) -> str:
        """Everything the server has logged so far (stdout and stderr)."""
        with open(self.log_path, "rb") as f:
            return f.read().decode(errors="replace")

    def http(self) -> httpx.Client:
        return httpx.Client(base_url=self.base_url, timeout=30)


@contextmanager
def run_server(*args: str, env: dict[str, str] | None = None, ready_timeout: float = 30.0):
    """Start ``fakeai server ARGS`` and wait until /health answers; stop it afterwards."""
    port = free_port()
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("FAKEAI_")}
    full_env.update(env or {})
    data_dir = None
    if "--data-dir" not in args and "FAKEAI_DATA_DIR" not in full_env:
        data_dir = tempfile.TemporaryDirectory(prefix="fakeai-data-")  # never the user's own
        args = ("--data-dir", data_dir.name, *args)
    cmd = [sys.executable, "-m", "fakeai", "server", "--host", "127.0.0.1", "--port", str(port),
           "--log-level", "warning", *args]
    log = tempfile.NamedTemporaryFile(prefix="fakeai-test-", suffix=".log", delete=False)
    proc = subprocess.Popen(cmd, env=full_env, stdout=log, stderr=subprocess.STDOUT)
    log.close()
    server = Server(proc, port, log.name)
    deadline = time.monotonic() + ready_timeout
    try:
        while True:
            if proc.poll() is not None:
                out = server.output()
                raise RuntimeError(f"server exited with {proc.returncode}:\n{out}")
            try:
                if httpx.get(server.base_url + "/health/ready", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("server did not become ready")
            time.sleep(0.05)
        yield server
    finally:
        stop(proc)
        os.unlink(log.name)
        if data_dir is not None:
            data_dir.cleanup()


def stop(proc: subprocess.Popen) -> None:
    """Terminate a server process, killing it if it does not exit within 10 s."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def wait_for(predicate, timeout: float = 10.0, interval: float = 0.02) -> bool:
    """Poll ``predicate`` until it is true or ``timeout`` passes; returns its last value."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)
