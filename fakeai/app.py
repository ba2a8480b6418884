"""``create_app(settings)``: the whole server, built from one settings object."""

from __future__ import annotations

import asyncio
import gc
import logging
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from . import __version__
from .api import (anthropic, audio, chat, completions, embeddings, errors, health, images, models,
                  moderations, rerank)
from .api.body import body_components
from .api.fastpath import FastPath
from .api.middleware import RequestMeta
from .config import Settings
from .engine.core import Engine
from .engine.text import get_text_generator
from .registry import ModelRegistry
from .services.jobs import Jobs
from .store import open_store
from .telemetry.usage import UsageRecorder

log = logging.getLogger("fakeai")

_ROUTERS = (health, models, chat, completions, embeddings, rerank, images, audio, moderations, anthropic)


def _warm(encodings: list[str]) -> None:
    """Load tokenizers and text generators off the event loop, most used first.

    Then freeze what is alive: the vocabularies are millions of long-lived objects,
    and leaving them to the cyclic GC makes every full collection a pause of tens
    of milliseconds on the event loop, which would show as token-timing jitter.
    """
    for enc in encodings:
        get_text_generator(enc)
    gc.collect()
    gc.freeze()


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    registry = ModelRegistry.load(extra_paths=settings.models_file)
    engine = Engine(settings, registry)
    store = open_store(settings)
    jobs = Jobs(store)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        # Serving at once; the default family's tokenizer (o200k_base: GPT-4o, 4.1, 5,
        # o-series) warms in the background and /health/ready waits for it. Other
        # vocabularies load on first use (~0.1-0.25 s once); none is ever approximated.
        warm = asyncio.get_running_loop().run_in_executor(None, _warm, ["o200k_base"])
        app.state.warm = warm
        await store.open()
        jobs.begin()
        try:
            yield
        finally:
            await jobs.stop()
            await store.close()

    app = FastAPI(
        title="fakeai",
        version=__version__,
        description="A simulator of an OpenAI-compatible LLM inference service.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.engine = engine
    app.state.store = store
    app.state.jobs = jobs
    app.state.usage = UsageRecorder()
    app.state.version = __version__
    errors.install(app)
    for module in _ROUTERS:
        app.include_router(module.router)
    app.add_middleware(FastPath, routes=_fast_routes(), fastapi_app=app)
    app.add_middleware(RequestMeta, max_body=settings.max_request_bytes)
    app.openapi = lambda: _openapi(app)
    return app


def _fast_routes() -> dict:
    """The hottest routes, answered by FastPath ahead of FastAPI's routing."""
    return {
        ("POST", "/v1/chat/completions"): chat.create_chat_completion,
        ("POST", "/v1/completions"): completions.create_completion,
        ("GET", "/v1/models"): models.list_models,
        ("POST", "/v1/embeddings"): embeddings.create_embedding,
        ("POST", "/v1/moderations"): moderations.create_moderation,
    }


def _openapi(app: FastAPI) -> dict:
    """FastAPI's document plus the request schemas of routes that parse their own bodies."""
    if app.openapi_schema is None:
        doc = get_openapi(title=app.title, version=app.version, description=app.description,
                          routes=app.routes)
        doc.setdefault("components", {}).setdefault("schemas", {}).update(body_components())
        app.openapi_schema = doc
    return app.openapi_schema
