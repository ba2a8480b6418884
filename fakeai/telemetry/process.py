"""The server process's own figures: resident memory, open file descriptors, threads, live
asyncio tasks and uptime, for ``/health/detailed`` (its ``process`` section) and the
``process_*`` Prometheus series that vLLM's ``/metrics`` carries (prometheus_client's
process collector).

Cheap to read: on Linux two small ``/proc/self`` files and one directory listing (tens of
microseconds); elsewhere what the standard library knows, ``None`` for what it does not.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time

_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
_IMPORTED = time.monotonic()  # the fallback origin of uptime (imported at start-up by the app)
_FD_DIRS = ("/proc/self/fd", "/dev/fd")


def rss_bytes() -> int | None:
    """Resident set size now (Linux), else None."""
    try:
        with open("/proc/self/statm", "rb") as f:
            return int(f.read().split()[1]) * _PAGE
    except (OSError, ValueError, IndexError):
        return None


def open_fds() -> int | None:
    for path in _FD_DIRS:
        try:
            return len(os.listdir(path)) - 1  # the listing's own descriptor
        except OSError:
            continue
    return None


def threads() -> int:
    """OS threads of the process (Linux), else the Python threads."""
    try:
        with open("/proc/self/status", "rb") as f:
            for line in f:
                if line.startswith(b"Threads:"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return threading.active_count()


def uptime_s() -> float:
    """Seconds since the process started (Linux: its start time in /proc), else since start-up."""
    try:
        with open("/proc/self/stat", "rb") as f:
            stat = f.read()
        with open("/proc/uptime", "rb") as f:
            boot_uptime = float(f.read().split()[0])
        # the fields after the command name (which may hold spaces): starttime is field 22
        start = int(stat[stat.rindex(b")") + 2:].split()[19]) / _TICKS
        return max(boot_uptime - start, 0.0)
    except (OSError, ValueError, IndexError):
        return time.monotonic() - _IMPORTED


def snapshot() -> dict:
    """The ``process`` section of ``/health/detailed``; call it on the event loop."""
    return {"pid": os.getpid(), "rss_bytes": rss_bytes(), "open_fds": open_fds(),
            "threads": threads(), "asyncio_tasks": len(asyncio.all_tasks()), "uptime_s": round(uptime_s(), 3)}


_collector = None


def collect():
    """prometheus_client's process series (``process_resident_memory_bytes``,
    ``process_open_fds``, ``process_cpu_seconds_total``, ...), as vLLM's ``/metrics`` has them;
    nothing on platforms without ``/proc``. Imported at the first scrape."""
    global _collector
    if _collector is None:
        from prometheus_client import ProcessCollector

        _collector = ProcessCollector(registry=None)
    return iter(_collector.collect())
