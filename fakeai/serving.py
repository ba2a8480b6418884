"""How uvicorn serves the app: the options built from the settings, in one place."""

from __future__ import annotations

import functools
from typing import Any

from .config import Settings


def uvicorn_options(s: Settings) -> dict[str, Any]:
    """Keyword arguments for ``uvicorn.run`` / ``uvicorn.Config`` (without the app).

    The HTTP protocol is uvicorn's httptools one with fakeai's limits (``httpproto``):
    header timeout and size, connection limit, request timeout. It is given as a
    picklable ``functools.partial`` of a module-level class, so it also reaches
    uvicorn's worker processes.
    """
    from .cli import log_config
    from .httpproto import Limits, Protocol

    limits = Limits(header_timeout_s=s.header_timeout_s, max_header_bytes=s.max_header_bytes,
                    max_connections=s.max_connections, request_timeout_s=s.request_timeout_s)
    return {"host": s.host, "port": s.port, "log_config": log_config(s), "log_level": None,
            "access_log": s.access_log, "loop": "uvloop", "http": functools.partial(Protocol, limits=limits),
            "proxy_headers": False, "timeout_graceful_shutdown": 5, "timeout_keep_alive": s.keep_alive_timeout_s,
            "backlog": s.listen_backlog, "limit_concurrency": None}  # (max_connections: the protocol's own)
