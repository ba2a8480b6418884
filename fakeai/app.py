"""``create_app(settings)``: the whole server, built from one settings object."""

from __future__ import annotations

import logging

from fastapi import FastAPI

from . import __version__
from .api import chat, completions, errors, health, models
from .api.middleware import RequestMeta
from .config import Settings
from .engine.core import Engine
from .registry import ModelRegistry

log = logging.getLogger("fakeai")


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    registry = ModelRegistry.load(extra_paths=settings.models_file)
    engine = Engine(settings, registry)

    app = FastAPI(
        title="fakeai",
        version=__version__,
        description="A simulator of an OpenAI-compatible LLM inference service.",
    )
    app.state.settings = settings
    app.state.engine = engine
    app.state.version = __version__
    errors.install(app)
    for module in (health, models, chat, completions):
        app.include_router(module.router)
    app.add_middleware(RequestMeta, max_body=settings.max_request_bytes)
    return app
