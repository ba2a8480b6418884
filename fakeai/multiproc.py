"""``fakeai server --workers N``: N server processes on one port.

Each process listens on its own socket bound with ``SO_REUSEPORT``, so the kernel
spreads new connections evenly across the processes by their addresses. (With one
shared listening socket, uvloop's accept loop lets whichever process wakes first
take every pending connection: a load generator's 64 connections could all land on
one process.) The parent process reserves the port, starts the processes (``spawn``)
with their slot index, restarts a process that dies, and stops them all on SIGINT
or SIGTERM. The settings reach the processes as JSON, with a run directory they share
(metrics snapshots, shared counters, run-time changes); see docs/operations.md,
"Several processes on one host".
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import shutil
import signal
import socket
import tempfile
import time

from .config import Settings
from .config.process import ProcessSlot

log = logging.getLogger("fakeai")
RESTART_LIMIT = 5  # restarts of one slot within a minute before the server gives up


def serve(settings: Settings, app=None) -> None:
    """Run the server in the foreground until it is stopped (``app``: the single process's,
    if already built)."""
    import uvicorn

    from .serving import uvicorn_options

    n = settings.process_count
    if n == 1:
        if app is None:
            from .app import create_app

            app = create_app(settings)
        uvicorn.run(app, **uvicorn_options(settings))
        return
    Supervisor(settings, n).run()


def _bind(host: str, port: int) -> socket.socket:
    family, kind, proto, _, addr = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM,
                                                      flags=socket.AI_PASSIVE)[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind(addr)
    return sock


def _process_main(settings_json: str, index: int, count: int, run_dir: str, port: int) -> None:
    """One server process: its app for slot ``index``, on its own SO_REUSEPORT socket."""
    import uvicorn

    from .app import create_app
    from .serving import uvicorn_options

    settings = Settings.model_validate_json(settings_json)
    app = create_app(settings, slot=ProcessSlot(index, count, run_dir))
    sock = _bind(settings.host, port)
    options = uvicorn_options(settings)
    options["port"] = port
    uvicorn.Server(uvicorn.Config(app, **options)).run(sockets=[sock])


class Supervisor:
    def __init__(self, settings: Settings, count: int) -> None:
        self.settings = settings
        self.count = count
        self.stopping = False
        self._ctx = multiprocessing.get_context("spawn")
        self._procs: dict[int, multiprocessing.Process] = {}
        self._restarts: dict[int, list[float]] = {}

    def run(self) -> None:
        run_dir = tempfile.mkdtemp(prefix="fakeai-run-")
        reserved = _bind(self.settings.host, self.settings.port)  # the port (also when 0: any free one)
        self.port = reserved.getsockname()[1]
        self.run_dir = run_dir
        self._json = self.settings.model_dump_json()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, self._stop)
        try:
            for index in range(self.count):
                self._start(index)
            while not self.stopping:
                time.sleep(0.2)
                for index, proc in list(self._procs.items()):
                    if not proc.is_alive() and not self.stopping:
                        self._restart(index, proc.exitcode)
        finally:
            self._stop_all()
            reserved.close()
            shutil.rmtree(run_dir, ignore_errors=True)

    def _start(self, index: int) -> None:
        proc = self._ctx.Process(target=_process_main, name=f"fakeai-{index}",
                                 args=(self._json, index, self.count, self.run_dir, self.port))
        proc.start()
        self._procs[index] = proc

    def _restart(self, index: int, code: int | None) -> None:
        now = time.monotonic()
        recent = [t for t in self._restarts.get(index, []) if now - t < 60] + [now]
        self._restarts[index] = recent
        if len(recent) > RESTART_LIMIT:
            log.error("server process %d keeps dying (exit %s): stopping", index, code)
            self.stopping = True
            return
        log.warning("server process %d exited (%s): restarting it", index, code)
        self._start(index)

    def _stop(self, signum, frame) -> None:
        self.stopping = True

    def _stop_all(self) -> None:
        for proc in self._procs.values():
            if proc.is_alive():
                os.kill(proc.pid, signal.SIGTERM)  # uvicorn's graceful shutdown
        deadline = time.monotonic() + 10
        for proc in self._procs.values():
            proc.join(max(deadline - time.monotonic(), 0.1))
            if proc.is_alive():
                proc.kill()
                proc.join()
