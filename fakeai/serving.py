"""How uvicorn serves the app: the options built from the settings, in one place."""

from __future__ import annotations

from typing import Any

from .config import Settings


def uvicorn_options(s: Settings) -> dict[str, Any]:
    """Keyword arguments for ``uvicorn.run`` / ``uvicorn.Config`` (without the app)."""
    from .cli import log_config

    return dict(host=s.host, port=s.port, log_config=log_config(s), log_level=None,
                access_log=s.access_log, loop="uvloop", http="httptools", proxy_headers=False,
                timeout_graceful_shutdown=5)
