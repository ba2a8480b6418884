"""``create_app(settings)``: the whole server, built from one settings object."""

from __future__ import annotations

import asyncio
import gc
import logging
from contextlib import asynccontextmanager
from functools import partial

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from . import __version__
from .api import (admin, anthropic, audio, batches, chat, chat_stored, cluster, completions, conversations,
                  dashboard, embeddings, errors, files, fine_tuning, health, images, metrics, metrics_json,
                  models, moderations, organization, realtime, rerank, responses, uploads, usage,
                  vector_stores)
from .api.body import body_components
from .api.admin_sync import OverrideSync
from .api.chaos import FaultGate
from .api.fastpath import FastPath
from .api.middleware import RequestMeta
from .api.recording import Recorder
from .config import Settings
from .config.process import SINGLE, ProcessSlot
from .engine.core import Engine
from .engine.text import get_text_generator
from .registry import ModelRegistry
from .schemas import build_deferred
from .security.auth import Guard
from .security.faults import Faults
from .security.inputs import route_limits
from .security.runtime import Security
from .services.admin_keys import StoredKeys
from .services.batch_runner import BatchRunner
from .services.fine_tuning import FineTuning
from .services.files import sweep_pending
from .services.jobs import Jobs
from .services.organization import Organization
from .services.project_keys import ProjectKeys
from .services.scenarios import Scenarios
from .services.vector_stores import VectorStores
from .store import open_store
from .telemetry import process
from .telemetry.hub import Telemetry
from .telemetry.overview import Overview
from .telemetry.usage import UsageRecorder

log = logging.getLogger("fakeai")

_ROUTERS = (health, models, chat, completions, embeddings, rerank, images, audio, moderations, anthropic,
            realtime, responses, conversations, chat_stored, files, uploads, batches, vector_stores,
            fine_tuning, organization, usage, cluster, metrics, metrics_json, dashboard)


def _warm(encodings: list[str]) -> None:
    """Load tokenizers and text generators off the event loop, most used first.

    Then freeze what is alive: the vocabularies are millions of long-lived objects,
    and leaving them to the cyclic GC makes every full collection a pause of tens
    of milliseconds on the event loop, which would show as token-timing jitter.

    And collect the youngest generation every 10,000 allocations (``_GC_THRESHOLDS``) rather than
    Python's 700: a request in flight keeps a few hundred containers alive, so with
    64 requests in flight the default threshold collected every few dozen requests
    and promoted live request state into the older generations, whose collections
    (up to 40 ms) cost 15 µs a request on average; with this threshold the cyclic
    GC costs about 3 µs a request and its pauses stay near 2 ms (docs/benchmarks.md).
    """
    for enc in encodings:
        get_text_generator(enc)
    build_deferred()  # the request models' validators (deferred at import)
    gc.collect()
    gc.freeze()
    gc.set_threshold(*_GC_THRESHOLDS)


#: the cyclic GC's thresholds once the server is warm (see ``_warm``)
_GC_THRESHOLDS = (10_000, 20, 20)


def create_app(settings: Settings | None = None, slot: ProcessSlot = SINGLE) -> FastAPI:
    """The app of one server process (``slot``: which of ``--workers`` it is)."""
    settings = settings or Settings()
    registry = ModelRegistry.load(extra_paths=settings.models_file)
    engine = Engine(settings, registry, rank=slot.index, ranks=slot.count)
    store = open_store(settings)
    jobs = Jobs(store)
    telemetry = Telemetry(settings, engine, process=slot)
    usage_recorder = UsageRecorder(store, settings.usage_flush_ms)
    org = Organization(store)
    project_keys = ProjectKeys(org, usage_recorder.keys)
    usage_recorder.on_keys_used = project_keys.keys_used

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        # Serving at once; the default family's tokenizer (o200k_base: GPT-4o, 4.1, 5,
        # o-series) warms in the background and /health/ready waits for it. Other
        # vocabularies load on first use (~0.1-0.25 s once); none is ever approximated.
        warm = asyncio.get_running_loop().run_in_executor(None, _warm, ["o200k_base"])
        app.state.warm = warm
        await store.open()
        await sweep_pending(store)  # the bytes of uploads a crash cut short
        await usage_recorder.open()
        await org.open()
        await project_keys.open()
        await app.state.admin_keys.open()  # the stored admin-created keys, then followed
        await app.state.fine_tuning.start()  # the fine-tuned models, before any request
        jobs.begin()
        await telemetry.start()
        if app.state.override_sync is not None:
            await app.state.override_sync.start()
        await app.state.metrics.start()
        try:
            yield
        finally:
            await app.state.metrics.stop()
            if app.state.override_sync is not None:
                await app.state.override_sync.stop()
            await telemetry.stop()
            await jobs.stop()
            await app.state.fine_tuning.stop()
            await app.state.admin_keys.close()
            await usage_recorder.close()  # the last usage reaches the store
            await store.close()

    app = FakeAIApp(
        title="fakeai",
        version=__version__,
        description="A simulator of an OpenAI-compatible LLM inference service.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.engine = engine
    app.state.slot = slot
    app.state.security = security = Security(settings, slot.run_dir)  # hashes the configured keys
    telemetry.scrape_allowed = security.scrape_allowed  # the DCGM exporter port asks as /metrics does
    app.state.overrides = {}  # run-time changes of options (PATCH /admin/config)
    # ... which the other processes of a --workers server follow
    app.state.override_sync = None if slot.single else OverrideSync(app.state, slot.run_dir)
    app.state.store = store
    app.state.admin_keys = StoredKeys(store, security)
    app.state.jobs = jobs
    app.state.batches = BatchRunner(app, store, settings)  # runs batch jobs (registered before startup)
    app.state.batches.register(jobs)
    app.state.telemetry = telemetry
    app.state.usage = usage_recorder
    app.state.organization = org
    app.state.project_keys = project_keys
    app.state.version = __version__
    app.state.vector_stores = VectorStores(app.state)
    app.state.faults = Faults(settings)  # fault rules and counts (docs/faults-and-scenarios.md)
    telemetry.collectors.append(app.state.faults.collect)
    telemetry.collectors.append(process.collect)  # process_* series, as vLLM has them
    app.state.metrics = Overview(app.state)  # /metrics/json, history, /metrics/stream (docs/metrics-api.md)
    app.state.scenarios = Scenarios(settings)
    responses.install(app)  # stored responses, conversations, background runs
    app.state.fine_tuning = FineTuning(app.state)
    errors.install(app)
    for module in _ROUTERS:
        app.include_router(module.router)
    app.include_router(admin.router)
    # fakeai's own layers, outermost first, in front of FastAPI's (see FakeAIApp)
    front = FastPath(partial(FastAPI.__call__, app), routes=_fast_routes(), fastapi_app=app)
    if settings.cassette_dir or settings.record_upstream:
        front = Recorder(front, cassette_dir=settings.cassette_dir or f"{settings.data_dir}/cassettes",
                         upstream=settings.record_upstream, miss=settings.replay_miss)
    front = FaultGate(front, faults=app.state.faults, scenarios=app.state.scenarios, engine=engine)
    front = Guard(front, security=security)
    app.front = RequestMeta(front, max_body=settings.max_request_bytes, route_limits=route_limits(settings),
                            on_oversize=security.oversize, observer=app.state.metrics.stats)
    app.openapi = lambda: _openapi(app)
    return app


class FakeAIApp(FastAPI):
    """FastAPI with fakeai's layers in front of FastAPI's own.

    Every HTTP request and WebSocket passes ``front`` (request ids and body limits,
    the security guard, the fault gate, the recorder, then ``FastPath``); only what
    FastPath does not answer itself reaches FastAPI's middleware stack and router.
    FastAPI's per-request layers (error and telemetry middleware, body limit,
    exception middleware) cost more than a hot route's whole answer
    (docs/benchmarks.md), so the hot routes skip them: FastPath renders their
    errors itself, and RequestMeta answers any error escaping the front with
    OpenAI's 500 envelope.
    """

    front = None

    async def __call__(self, scope, receive, send):
        if self.front is None or scope["type"] == "lifespan":
            return await super().__call__(scope, receive, send)
        scope["app"] = self
        await self.front(scope, receive, send)


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
