"""A real redis-server on a free loopback port, for tests (installed with apt if missing)."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from contextlib import contextmanager

from tests.server import free_port


def ensure_redis_server() -> str:
    """The path of redis-server, installing Debian's package if the machine lacks it."""
    path = shutil.which("redis-server")
    if path is None:
        subprocess.run(["apt-get", "install", "-y", "-q", "redis-server"], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        path = shutil.which("redis-server")
        if path is None:
            raise RuntimeError("redis-server is not installed and apt-get could not install it")
    return path


@contextmanager
def run_redis(durable: bool = True):
    """Start redis-server on a free port (append-only, fsync always when ``durable``);
    yield its URL; stop it afterwards."""
    binary = ensure_redis_server()
    port = free_port()
    workdir = tempfile.TemporaryDirectory(prefix="fakeai-redis-")
    args = [binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", workdir.name, "--save", ""]
    args += ["--appendonly", "yes", "--appendfsync", "always"] if durable else ["--appendonly", "no"]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    try:
        _wait_ready(port, proc)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        workdir.cleanup()


def _wait_ready(port: int, proc: subprocess.Popen, timeout: float = 10.0) -> None:
    import socket

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"redis-server exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
                s.sendall(b"PING\r\n")
                if s.recv(16).startswith(b"+PONG"):
                    return
        except OSError:
            pass
        time.sleep(0.05)
    raise RuntimeError("redis-server did not start")
