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


class RedisServer:
    """A redis-server on a fixed port and directory that a test may stop and start again
    (the same port and data: an outage and a recovery, as clients see them)."""

    def __init__(self, durable: bool = True) -> None:
        self.binary = ensure_redis_server()
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._workdir = tempfile.TemporaryDirectory(prefix="fakeai-redis-")
        self.dir = self._workdir.name
        self.args = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", self.dir, "--save", ""]
        self.args += ["--appendonly", "yes", "--appendfsync", "always"] if durable else ["--appendonly", "no"]
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(self.args, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        _wait_ready(self.port, self.proc)

    def stop(self) -> None:
        """Shut it down (SIGTERM: with appendonly, every acknowledged write is on disk)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def close(self) -> None:
        self.stop()
        self._workdir.cleanup()


@contextmanager
def redis_server(durable: bool = True):
    """A started ``RedisServer``, stopped and removed afterwards."""
    server = RedisServer(durable)
    try:
        server.start()
        yield server
    finally:
        server.close()


@contextmanager
def run_redis(durable: bool = True):
    """Start redis-server on a free port (append-only, fsync always when ``durable``);
    yield its URL; stop it afterwards."""
    with redis_server(durable) as server:
        yield server.url


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
