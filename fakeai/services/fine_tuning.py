"""Fine-tuning jobs: creation (with the training file checked), the simulated run as a
resumable background job, events, checkpoints, and the fine-tuned models it makes.

Stored documents:

* ``fine_tuning.job``: the public job plus ``_plan`` (examples, batch size, epochs,
  seed, tokens per epoch...), ``_step`` (the last persisted training step) and
  ``_requested`` (the hyperparameters as asked, "auto" included);
* ``fine_tuning.job.event`` and ``fine_tuning.job.checkpoint`` under their job; the
  ones the run writes have ids derived from the step, so a run replayed after a
  restart rewrites them in place rather than twice;
* ``fine_tuned_model``: each model a job created, ``deleted`` once deleted (a
  deleted ``ft:`` id stays unresolvable after restarts).

The run moves validating_files -> queued -> running -> succeeded, each of the first
two phases lasting five steps and each training step ``fine_tune_step_ms``. Pause
stops the run (status ``paused``) until resume; cancel ends it. On success the
metrics CSV becomes a file of purpose ``fine-tune-results``, and the model is
registered: listed by ``/v1/models`` and served with its base model's profile.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import logging
import os
import re
import time

from ..engine.errors import EngineError
from ..periodic import Periodic
from ..store import Doc, Page, Store
from . import files
from .fine_tuning_data import MIN_EXAMPLES, DataError, analyze
from .fine_tuning_run import Plan, checkpoint_metrics, resolve

JOB, EVENT, CHECKPOINT, MODEL = ("fine_tuning.job", "fine_tuning.job.event", "fine_tuning.job.checkpoint",
                                 "fine_tuned_model")
ORGANIZATION_ID = "org-fakeai"
ORG_SLUG = "fakeai"
ACTIVE = ("validating_files", "queued", "running")
FINISHED = ("succeeded", "failed", "cancelled")
PHASE_STEPS = 5  # validating_files and queued each last this many steps
SYNC_S = 5.0  # how often the models other replicas created are picked up

log = logging.getLogger("fakeai.fine_tuning")
_SUFFIX_BAD = re.compile(r"[^A-Za-z0-9._-]+")


def _now() -> int:
    return int(time.time())


def _error(status: int, message: str, param: str | None = None, code: str | None = None) -> EngineError:
    e = EngineError(message, param=param, code=code)
    e.status = status
    return e


def public_job(doc: Doc) -> Doc:
    return {k: v for k, v in doc.items() if not k.startswith("_")}


def _plan(doc: Doc) -> Plan:
    p = doc["_plan"]
    return Plan(p["examples"], p["batch_size"], p["n_epochs"], p["validation"], p["method"], p["seed"])


_HP = ("batch_size", "learning_rate_multiplier", "n_epochs")


def _hp_keys(kind: str) -> tuple[str, ...]:
    return (*_HP, "beta") if kind == "dpo" else _HP


def _method(kind: str, given: dict | None, hyperparameters: dict) -> dict:
    """The job's ``method`` as shown: its type, the reinforcement grader, the hyperparameters."""
    body = {"grader": given["grader"]} if kind == "reinforcement" else {}
    return {"type": kind, kind: {**body, "hyperparameters": hyperparameters}}


def _unfinished(doc: Doc) -> bool:
    """Still to run: an active job, or a succeeded one whose closing events are not all written."""
    return doc["status"] in ACTIVE or (doc["status"] == "succeeded" and not doc.get("_closed"))


def _root(model_id: str) -> str:
    """The catalog model under a fine-tune (fine-tuning an ``ft:`` model names its root)."""
    return model_id.split(":")[1] if model_id.startswith("ft:") else model_id


def _tag(job_id: str, tag: str, prefix: str) -> str:
    return f"{prefix}{job_id.removeprefix('ftjob-')}-{tag}"


class FineTuning:
    """The fine-tuning service at ``app.state.fine_tuning``."""

    def __init__(self, state) -> None:
        self.state = state
        self.store: Store = state.store
        self._sync = Periodic(SYNC_S, self.load_models, "fine-tuned model sync")
        state.jobs.register(JOB, self._run, _unfinished)

    @property
    def step_s(self) -> float:
        return self.state.settings.fine_tune_step_ms / 1000.0

    # -- create ------------------------------------------------------------------------
    async def create(self, req: dict) -> Doc:
        engine = self.state.engine
        model = engine.registry.resolve(req["model"])
        if model is None or not (model.capabilities.chat or model.capabilities.completions):
            raise _error(400, f"Model {req['model']} is not available for fine-tuning or does not exist.",
                         "model", "model_not_available")
        method = req.get("method") or {"type": "supervised"}
        kind = method["type"]
        requested = {**(req.get("hyperparameters") or {}),
                     **((method.get(kind) or {}).get("hyperparameters") or {})}
        if kind == "reinforcement" and not (method.get("reinforcement") or {}).get("grader"):
            raise _error(400, "Missing required parameter: 'method.reinforcement.grader'.",
                         "method.reinforcement.grader", "missing_required_parameter")
        train = await self._check_file(req["training_file"], "training_file", kind, model, MIN_EXAMPLES)
        valid = None
        if req.get("validation_file"):
            valid = await self._check_file(req["validation_file"], "validation_file", kind, model, 1)
        now, job_id = _now(), "ftjob-" + os.urandom(12).hex()
        seed = req.get("seed")
        seed = int.from_bytes(os.urandom(4), "little") & 0x7FFFFFFF if seed is None else seed
        suffix = _SUFFIX_BAD.sub("-", req["suffix"]) if req.get("suffix") else ""
        shown = {k: requested.get(k, "auto") for k in _HP}
        method_out = _method(kind, method.get(kind), {k: requested.get(k, "auto") for k in _hp_keys(kind)})
        hp = resolve(requested, train.examples, kind)
        doc = {
            "object": "fine_tuning.job", "id": job_id, "model": model.id, "created_at": now,
            "finished_at": None, "fine_tuned_model": None, "organization_id": ORGANIZATION_ID,
            "result_files": [], "status": "validating_files", "validation_file": req.get("validation_file"),
            "training_file": req["training_file"], "hyperparameters": shown, "trained_tokens": None,
            "error": None, "integrations": req.get("integrations") or [], "seed": seed,
            "estimated_finish": None, "method": method_out, "metadata": req.get("metadata"),
            "user_provided_suffix": suffix or None,
            "_plan": {"examples": train.examples, "tokens": train.tokens, "validation": valid is not None,
                      "method": kind, "seed": seed, **hp},
            "_step": 0,
            "_model": f"ft:{_root(model.id)}:{ORG_SLUG}:{suffix}:{job_id[-8:]}",
        }
        await self._event(job_id, "created", f"Created fine-tuning job: {job_id}")
        await self.store.put(JOB, doc)
        self.state.jobs.start(JOB, job_id)
        return public_job(doc)

    async def _check_file(self, file_id: str, param: str, method: str, model, minimum: int):
        meta = await files.get_file(self.store, file_id)
        if meta is None:
            raise _error(400, f"Invalid {param}: no such file {file_id!r}.", param, "invalid_file")
        if meta["purpose"] != "fine-tune":
            raise _error(400, f"Invalid {param}: file {file_id} has purpose {meta['purpose']!r}, but "
                         "fine-tuning files must have purpose 'fine-tune'.", param, "invalid_file_purpose")
        data = await self.store.read_blob_bytes(file_id)
        engine = self.state.engine
        tok = engine.tokenizer(model)

        def count_chat(messages, tools):
            return engine.count_chat_prompt(model, messages, tools if isinstance(tools, list) else None)

        try:
            return await asyncio.get_running_loop().run_in_executor(
                None, analyze, data, method, model.capabilities.chat, count_chat, tok.count, minimum)
        except DataError as e:
            raise _error(400, f"Invalid {param} format: {e.message}.", param, f"invalid_{param}") from None

    # -- read ----------------------------------------------------------------------------
    async def _job(self, job_id: str) -> Doc:
        doc = await self.store.get(JOB, job_id)
        if doc is None:
            raise _error(404, f"Fine-tuning job {job_id} not found.", "fine_tuning_job_id", "not_found")
        return doc

    async def get(self, job_id: str) -> Doc:
        return public_job(await self._job(job_id))

    async def page(self, after: str | None, limit: int, metadata: dict | None, null_metadata: bool) -> Page:
        def match(d: Doc) -> bool:
            meta = d.get("metadata") or {}
            if null_metadata:
                return not meta
            return all(meta.get(k) == v for k, v in (metadata or {}).items())

        page = await self.store.page(JOB, after=after, limit=limit, order="desc", match=match)
        page.items = [public_job(d) for d in page.items]
        return page

    async def events(self, job_id: str, after: str | None, limit: int, order: str = "desc") -> Page:
        await self._job(job_id)
        return await self.store.page(EVENT, parent=job_id, after=after, limit=limit, order=order)

    async def checkpoints(self, job_id: str, after: str | None, limit: int) -> Page:
        await self._job(job_id)
        return await self.store.page(CHECKPOINT, parent=job_id, after=after, limit=limit, order="desc")

    # -- control -------------------------------------------------------------------------
    async def _transition(self, job_id: str, allowed: tuple[str, ...], status: str, verb: str, **fields) -> Doc:
        await self._job(job_id)
        seen: list[str] = []

        def change(d: Doc) -> Doc | None:
            seen.append(d["status"])
            if d["status"] not in allowed:
                return None
            d.update(status=status, **fields)
            return d

        new = await self.store.update(JOB, job_id, change)
        if new is None:
            raise _error(404, f"Fine-tuning job {job_id} not found.", "fine_tuning_job_id", "not_found")
        if seen[-1] not in allowed:
            raise _error(400, f"Cannot {verb} a job with status '{seen[-1]}'.", "fine_tuning_job_id",
                         "invalid_job_status")
        return new

    async def cancel(self, job_id: str) -> Doc:
        doc = await self._transition(job_id, (*ACTIVE, "paused"), "cancelled", "cancel",
                                     finished_at=_now(), estimated_finish=None)
        await self._event(job_id, None, "Fine-tuning job cancelled")
        return public_job(doc)

    async def pause(self, job_id: str) -> Doc:
        doc = await self._transition(job_id, ("running",), "paused", "pause", estimated_finish=None)
        await self._event(job_id, None, "Fine-tuning job paused")
        return public_job(doc)

    async def resume(self, job_id: str) -> Doc:
        doc = await self._transition(job_id, ("paused",), "running", "resume")
        await self._event(job_id, None, "Fine-tuning job resumed")
        self.state.jobs.start(JOB, job_id)
        return public_job(doc)

    # -- the run -------------------------------------------------------------------------
    async def _event(self, job_id: str, tag: str | None, message: str, level: str = "info",
                     data: dict | None = None) -> None:
        eid = _tag(job_id, tag, "ftevent-") if tag else "ftevent-" + os.urandom(12).hex()
        await self.store.put(EVENT, {"object": "fine_tuning.job.event", "id": eid, "created_at": _now(),
                                     "level": level, "message": message, "data": data or {},
                                     "type": "metrics" if data else "message"}, parent=job_id)

    async def _move(self, job_id: str, frm: str, to: str, **fields) -> bool:
        def change(d: Doc) -> Doc | None:
            if d["status"] != frm:
                return None
            d.update(status=to, **fields)
            return d

        doc = await self.store.update(JOB, job_id, change)
        return doc is not None and doc["status"] == to

    async def _run(self, job_id: str) -> None:
        while True:
            doc = await self.store.get(JOB, job_id)
            if doc is None or not _unfinished(doc):
                return
            status, phase = doc["status"], PHASE_STEPS * self.step_s
            # each phase's event goes first: a crash before the move only rewrites it in place
            if status == "succeeded":
                await self._close(doc)
                return
            elif status == "validating_files":
                await self._event(job_id, "validating", f"Validating training file: {doc['training_file']}")
                if doc["validation_file"]:
                    await self._event(job_id, "validating-v",
                                      f"Validating validation file: {doc['validation_file']}")
                if not await self._still(job_id, status, phase):
                    continue
                p, kind = doc["_plan"], doc["method"]["type"]
                method = _method(kind, doc["method"][kind], {k: p[k] for k in _hp_keys(kind)})
                await self._event(job_id, "validated", "Files validated, moving job to queued state")
                await self._move(job_id, "validating_files", "queued", method=method,
                                 hyperparameters={k: p[k] for k in _HP})
            elif status == "queued":
                if not await self._still(job_id, status, phase):
                    continue
                eta = _now() + round(_plan(doc).total_steps * self.step_s) + 1
                await self._event(job_id, "started", "Fine-tuning job started")
                await self._move(job_id, "queued", "running", estimated_finish=eta)
            elif await self._train(doc):
                await self._succeed(job_id)

    async def _still(self, job_id: str, status: str, wait_s: float) -> bool:
        """After ``wait_s``, whether the job still has ``status`` (not cancelled meanwhile)."""
        await asyncio.sleep(wait_s)
        doc = await self.store.get(JOB, job_id)
        return doc is not None and doc["status"] == status

    async def _train(self, doc: Doc) -> bool:
        """Run the remaining steps; False if the job stopped being ``running`` (paused,
        cancelled), True when every step is done."""
        job_id, plan = doc["id"], _plan(doc)
        total, marks = plan.total_steps, set(plan.checkpoint_steps())
        loop = asyncio.get_running_loop()
        step_s, due = self.step_s, loop.time()
        for step in range(doc["_step"] + 1, total + 1):
            if step_s:
                due += step_s
                await asyncio.sleep(max(0.0, due - loop.time()))
            elif step % 64 == 0:
                await asyncio.sleep(0)
            if not (plan.emits(step) or step in marks):
                continue
            # what the step produced first, then the progress: a crash in between replays the
            # step, rewriting the same (deterministic) event and checkpoint in place
            m = plan.metrics(step)
            text = f"Step {step}/{total}: training loss={m['train_loss']:.2f}"
            if "valid_loss" in m:
                text += f", validation loss={m['valid_loss']:.2f}"
            await self._event(job_id, f"m{step}", text, data={**m, "total_steps": total})
            if step in marks:
                await self._checkpoint(doc, plan, step)
            eta = _now() + round((total - step) * step_s) + 1
            if not await self._move(job_id, "running", "running", _step=step, estimated_finish=eta):
                # paused or cancelled while the step was written: it did not happen (a resumed
                # job writes it again), and a cancelled job's last event stays its cancellation
                await self._unwrite(job_id, step, step in marks)
                return False
        return True

    async def _unwrite(self, job_id: str, step: int, checkpoint: bool) -> None:
        await self.store.delete(EVENT, _tag(job_id, f"m{step}", "ftevent-"))
        if checkpoint:
            await self.store.delete(CHECKPOINT, _tag(job_id, f"{step}", "ftckpt_"))
            await self.store.delete(EVENT, _tag(job_id, f"c{step}", "ftevent-"))

    async def _checkpoint(self, doc: Doc, plan: Plan, step: int) -> None:
        job_id = doc["id"]
        await self.store.put(CHECKPOINT, {
            "object": "fine_tuning.job.checkpoint", "id": _tag(job_id, f"{step}", "ftckpt_"),
            "created_at": _now(), "fine_tuned_model_checkpoint": f"{doc['_model']}:ckpt-step-{step}",
            "step_number": step, "metrics": checkpoint_metrics(plan, step), "fine_tuning_job_id": job_id,
        }, parent=job_id)
        await self._event(job_id, f"c{step}", f"Checkpoint created at step {step}")

    async def _succeed(self, job_id: str) -> None:
        doc = await self.store.get(JOB, job_id)
        if doc is None or doc["status"] != "running":
            return
        plan = _plan(doc)
        file_id = "file-" + hashlib.blake2b(job_id.encode(), digest_size=12).hexdigest()
        await files.create_file(self.store, plan.results_csv(), filename="step_metrics.csv",
                                purpose="fine-tune-results", file_id=file_id)
        name, now = doc["_model"], _now()
        record = {"id": name, "created": now, "owned_by": ORGANIZATION_ID, "base": _root(doc["model"]),
                  "job": job_id, "deleted": False}
        await self.store.put(MODEL, record)
        self._register(record)
        trained = doc["_plan"]["tokens"] * plan.n_epochs
        if not await self._move(job_id, "running", "succeeded", fine_tuned_model=name, finished_at=now,
                                trained_tokens=trained, result_files=[file_id], estimated_finish=None):
            await self.store.put(MODEL, {**record, "deleted": True})  # cancelled at the last moment
            self.state.engine.registry.unregister(name)

    async def _close(self, doc: Doc) -> None:
        """The closing events of a succeeded job (rewritten in place if a crash interrupted them)."""
        job_id = doc["id"]
        await self._event(job_id, "model", f"New fine-tuned model created: {doc['fine_tuned_model']}")
        await self._event(job_id, "policy", "Usage policy evaluations completed, model is now enabled for sampling")
        await self._event(job_id, "done", "The job has successfully completed")
        await self._move(job_id, "succeeded", "succeeded", _closed=True)

    # -- models ------------------------------------------------------------------------
    def _register(self, record: Doc) -> None:
        registry = self.state.engine.registry
        if record.get("deleted"):
            registry.retire(record["id"])
            return
        base = registry.resolve(record["base"])
        if base is None:
            return
        registry.register(dataclasses.replace(base, id=record["id"], parent=base.id, aliases=(),
                                              owned_by=record["owned_by"], created=record["created"]))

    async def load_models(self) -> None:
        """Register the stored fine-tuned models (and forget deleted ones)."""
        registry = self.state.engine.registry
        async for record in self.store.scan(MODEL):
            if record.get("deleted"):
                if registry.is_dynamic(record["id"]):
                    registry.unregister(record["id"])
                else:
                    registry.retire(record["id"])
            elif not registry.is_dynamic(record["id"]):
                self._register(record)

    async def delete_model(self, model_id: str) -> None:
        registry = self.state.engine.registry
        record = await self.store.get(MODEL, model_id)
        if record is None or record.get("deleted"):
            if registry.get(model_id) is not None:
                raise _error(403, f"You are not allowed to delete the model '{model_id}': only fine-tuned "
                             "models your organization created can be deleted.", "model", "model_not_deletable")
            raise _error(404, f"The model '{model_id}' does not exist", "model", "model_not_found")
        await self.store.put(MODEL, {**record, "deleted": True})
        if not registry.unregister(model_id):
            registry.retire(model_id)

    async def start(self) -> None:
        await self.load_models()
        self._sync.start()

    async def stop(self) -> None:
        await self._sync.stop()
