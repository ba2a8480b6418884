"""Fine-tuning through the official SDK against a real server: validation, the job
lifecycle, events (listed and followed), checkpoints, the metrics file, the ft model in
/v1/models and chat, deletion, cancel/pause/resume, pacing, and resuming after a crash."""

from __future__ import annotations

import csv
import io
import json
import tempfile
import time

import httpx
import openai
import pytest

from tests.openapi_spec import validate, validate_error
from tests.server import run_server, wait_for

FAST = ("--ttft", "0", "--itl", "0", "--fine-tune-step-ms", "1")


def example(i: int) -> dict:
    return {"messages": [{"role": "system", "content": "You answer arithmetic questions tersely."},
                         {"role": "user", "content": f"What is {i} plus {i + 3}?"},
                         {"role": "assistant", "content": f"{2 * i + 3}"}]}


def jsonl(rows) -> bytes:
    return "\n".join(json.dumps(r) for r in rows).encode()


def upload(client, rows, name: str = "train.jsonl", purpose: str = "fine-tune") -> str:
    return client.files.create(file=(name, jsonl(rows)), purpose=purpose).id


def finished(client, job_id: str, timeout: float = 20.0):
    done = ("succeeded", "failed", "cancelled")
    assert wait_for(lambda: client.fine_tuning.jobs.retrieve(job_id).status in done, timeout)
    return client.fine_tuning.jobs.retrieve(job_id)


@pytest.fixture(scope="module")
def fast():
    with run_server(*FAST) as s:
        yield s


@pytest.fixture(scope="module")
def fc(fast):
    return fast.client()


@pytest.fixture(scope="module")
def done_job(fc):
    """A finished supervised job with a validation file: (job, training rows)."""
    rows = [example(i) for i in range(12)]
    train, valid = upload(fc, rows), upload(fc, [example(i) for i in range(50, 54)], "valid.jsonl")
    job = fc.fine_tuning.jobs.create(model="gpt-4o-mini", training_file=train, validation_file=valid,
                                     suffix="adder", seed=7, metadata={"team": "math"},
                                     method={"type": "supervised", "supervised": {"hyperparameters": {
                                         "n_epochs": 3, "batch_size": 2}}})
    assert job.status == "validating_files" and job.fine_tuned_model is None
    return finished(fc, job.id), rows


class TestValidation:
    @pytest.mark.parametrize("rows,needle", [
        ([example(i) for i in range(2)] + [{"messages": [{"role": "user", "content": "hi"}]}]
         + [example(i) for i in range(10)], "line 3"),
        ([example(i) for i in range(4)] + [{"messages": [{"role": "user", "content": "x", "weight": 1},
                                                          {"role": "assistant", "content": "y"}]}]
         + [example(i) for i in range(10)], "line 5"),
        ([example(i) for i in range(5)], "at least 10 examples"),
        ([{"prompt": "a", "completion": "b"}] * 12, "line 1"),
    ])
    def test_bad_training_data_is_400_naming_the_line(self, fast, fc, rows, needle):
        file_id = upload(fc, rows)
        with fast.http() as h:
            r = h.post("/v1/fine_tuning/jobs", json={"model": "gpt-4o-mini", "training_file": file_id})
        assert r.status_code == 400, r.text
        validate_error(r.json())
        err = r.json()["error"]
        assert needle in err["message"] and err["param"] == "training_file"

    def test_wrong_purpose_unknown_file_and_model(self, fc):
        good = upload(fc, [example(i) for i in range(10)])
        other = fc.files.create(file=("notes.txt", b"some notes"), purpose="assistants").id
        with pytest.raises(openai.BadRequestError, match="purpose"):
            fc.fine_tuning.jobs.create(model="gpt-4o-mini", training_file=other)
        with pytest.raises(openai.BadRequestError, match="file-nope"):
            fc.fine_tuning.jobs.create(model="gpt-4o-mini", training_file="file-nope")
        with pytest.raises(openai.BadRequestError, match="not available for fine-tuning"):
            fc.fine_tuning.jobs.create(model="text-embedding-3-small", training_file=good)
        with pytest.raises(openai.BadRequestError):
            fc.fine_tuning.jobs.create(model="gpt-4o-mini", training_file=good,
                                       hyperparameters={"n_epochs": 0})

    def test_dpo_and_reinforcement_shapes(self, fc):
        pref = [{"input": {"messages": [{"role": "user", "content": f"Greet person {i}"}]},
                 "preferred_output": [{"role": "assistant", "content": f"Hello, person {i}!"}],
                 "non_preferred_output": [{"role": "assistant", "content": "Go away."}]} for i in range(10)]
        job = fc.fine_tuning.jobs.create(model="gpt-4o-mini", training_file=upload(fc, pref),
                                         method={"type": "dpo", "dpo": {"hyperparameters": {"beta": 0.2,
                                                                                            "n_epochs": 1}}})
        done = finished(fc, job.id)
        assert done.status == "succeeded" and done.method.dpo.hyperparameters.beta == 0.2
        with pytest.raises(openai.BadRequestError, match="line 1 .*preference"):
            fc.fine_tuning.jobs.create(model="gpt-4o-mini", training_file=upload(fc, [example(i) for i in range(10)]),
                                       method={"type": "dpo"})
        tasks = [{"messages": [{"role": "user", "content": f"Spell {i} in words"}], "answer": str(i)}
                 for i in range(10)]
        grader = {"type": "string_check", "name": "exact", "input": "{{sample.output_text}}",
                  "reference": "{{item.answer}}", "operation": "eq"}
        job = fc.fine_tuning.jobs.create(model="o4-mini", training_file=upload(fc, tasks),
                                         method={"type": "reinforcement",
                                                 "reinforcement": {"grader": grader,
                                                                   "hyperparameters": {"n_epochs": 1}}})
        assert finished(fc, job.id).status == "succeeded"


class TestLifecycle:
    def test_job_succeeds_with_resolved_hyperparameters(self, fast, done_job):
        job, _ = done_job
        assert job.status == "succeeded" and job.error is None and job.finished_at >= job.created_at
        assert job.hyperparameters.n_epochs == 3 and job.hyperparameters.batch_size == 2
        assert job.fine_tuned_model == f"ft:gpt-4o-mini:fakeai:adder:{job.id[-8:]}"
        with fast.http() as h:
            validate("FineTuningJob", h.get(f"/v1/fine_tuning/jobs/{job.id}").json())

    def test_trained_tokens_scale_with_epochs(self, fc, done_job):
        job, rows = done_job
        again = fc.fine_tuning.jobs.create(model="gpt-4o-mini", training_file=job.training_file,
                                           hyperparameters={"n_epochs": 1})
        one = finished(fc, again.id)
        assert job.trained_tokens == 3 * one.trained_tokens
        text = sum(len(m["content"]) for r in rows for m in r["messages"])
        assert text / 8 < one.trained_tokens < text  # real token counts of the chat examples

    def test_events_and_checkpoints(self, fast, fc, done_job):
        job, _ = done_job
        events = list(fc.fine_tuning.jobs.list_events(job.id, limit=100))  # auto-paginates
        messages = [e.message for e in reversed(events)]  # listed newest first
        assert messages[0] == f"Created fine-tuning job: {job.id}"
        assert messages[-1] == "The job has successfully completed"
        total = 3 * 6  # 12 examples in batches of 2, three epochs
        steps = [e.data["step"] for e in reversed(events) if e.type == "metrics"]
        assert steps == list(range(1, total + 1))
        assert f"Step {total}/{total}: training loss=" in " ".join(messages)
        ckpts = fc.fine_tuning.jobs.checkpoints.list(job.id).data
        assert [c.step_number for c in ckpts] == [18, 12, 6]  # the ends of the three epochs, newest first
        assert ckpts[0].fine_tuned_model_checkpoint == f"{job.fine_tuned_model}:ckpt-step-18"
        assert ckpts[0].metrics.valid_loss is not None and ckpts[0].metrics.full_valid_loss is not None
        with fast.http() as h:
            body = h.get(f"/v1/fine_tuning/jobs/{job.id}/events?limit=5").json()
            validate("ListFineTuningJobEventsResponse", body)
            assert body["has_more"] is True
            validate("ListFineTuningJobCheckpointsResponse",
                     h.get(f"/v1/fine_tuning/jobs/{job.id}/checkpoints").json())
            for event in body["data"]:
                validate("FineTuningJobEvent", event)

    def test_result_file_is_a_metrics_csv_with_a_falling_loss(self, fc, done_job):
        job, _ = done_job
        meta = fc.files.retrieve(job.result_files[0])
        assert meta.purpose == "fine-tune-results"
        rows = list(csv.DictReader(io.StringIO(fc.files.content(job.result_files[0]).text)))
        assert list(rows[0]) == ["step", "train_loss", "train_accuracy", "valid_loss", "valid_mean_token_accuracy"]
        assert [int(r["step"]) for r in rows] == list(range(1, 19))
        loss = [float(r["train_loss"]) for r in rows]
        assert sum(loss[-4:]) / 4 < sum(loss[:4]) / 4 / 2
        assert any(r["valid_loss"] for r in rows) and not all(r["valid_loss"] for r in rows)
        # the metrics events carry the same numbers as the file
        by_step = {e.data["step"]: e.data for e in fc.fine_tuning.jobs.list_events(job.id, limit=100)
                   if e.type == "metrics"}
        assert all(by_step[int(r["step"])]["train_loss"] == float(r["train_loss"]) for r in rows)

    def test_follow_events_as_sse(self, fast, fc):
        job = fc.fine_tuning.jobs.create(model="gpt-4o-mini", hyperparameters={"n_epochs": 1},
                                         training_file=upload(fc, [example(i) for i in range(10)]))
        seen = []
        with httpx.stream("GET", f"{fast.api_url}/fine_tuning/jobs/{job.id}/events?stream=true",
                          timeout=30) as r:
            assert r.headers["content-type"].startswith("text/event-stream")
            for line in r.iter_lines():
                if line.startswith("data: "):
                    seen.append(line[6:])
        assert seen[-1] == "[DONE]"
        events = [json.loads(s) for s in seen[:-1]]
        assert events[0]["message"].startswith("Created fine-tuning job")
        assert events[-1]["message"] == "The job has successfully completed"
        assert len({e["id"] for e in events}) == len(events)
        listed = [e.id for e in fc.fine_tuning.jobs.list_events(job.id, limit=100)]
        assert [e["id"] for e in events] == listed[::-1]

    def test_list_with_metadata_filter(self, fc, done_job):
        job, _ = done_job
        mine = fc.fine_tuning.jobs.list(metadata={"team": "math"}).data
        assert [j.id for j in mine] == [job.id]
        page = fc.fine_tuning.jobs.list(limit=1)
        assert len(page.data) == 1 and page.has_more
        nxt = fc.fine_tuning.jobs.list(limit=1, after=page.data[0].id)
        assert nxt.data[0].id != page.data[0].id

    def test_unknown_job_is_404(self, fc):
        with pytest.raises(openai.NotFoundError):
            fc.fine_tuning.jobs.retrieve("ftjob-missing")
        with pytest.raises(openai.NotFoundError):
            fc.fine_tuning.jobs.list_events("ftjob-missing")


class TestModels:
    def test_the_fine_tuned_model_is_listed_and_chats(self, fc, done_job):
        job, _ = done_job
        name = job.fine_tuned_model
        listed = {m.id: m for m in fc.models.list().data}
        assert name in listed and listed[name].owned_by == job.organization_id
        assert fc.models.retrieve(name).id == name
        reply = fc.chat.completions.create(model=name, messages=[{"role": "user", "content": "What is 2 plus 5?"}],
                                           max_tokens=8)
        assert reply.model == name and reply.choices[0].message.content

    def test_delete_a_fine_tuned_model(self, fast, fc):
        job = finished(fc, fc.fine_tuning.jobs.create(
            model="gpt-4o-mini", hyperparameters={"n_epochs": 1},
            training_file=upload(fc, [example(i) for i in range(10)])).id)
        name = job.fine_tuned_model
        gone = fc.models.delete(name)
        assert gone.deleted and gone.id == name
        with fast.http() as h:
            validate("DeleteModelResponse", {"id": name, "object": "model", "deleted": True})
            assert h.delete(f"/v1/models/{name}").status_code == 404  # already gone
        assert name not in {m.id for m in fc.models.list().data}
        with pytest.raises(openai.NotFoundError):
            fc.chat.completions.create(model=name, messages=[{"role": "user", "content": "hi"}])

    def test_a_fine_tuned_model_can_be_fine_tuned_again(self, fc, done_job):
        job, _ = done_job
        again = finished(fc, fc.fine_tuning.jobs.create(model=job.fine_tuned_model, hyperparameters={"n_epochs": 1},
                                                        training_file=job.training_file, suffix="v2").id)
        assert again.status == "succeeded" and again.model == job.fine_tuned_model
        assert again.fine_tuned_model == f"ft:gpt-4o-mini:fakeai:v2:{again.id[-8:]}"  # named after the root
        reply = fc.chat.completions.create(model=again.fine_tuned_model, max_tokens=4,
                                           messages=[{"role": "user", "content": "hi"}])
        assert reply.model == again.fine_tuned_model

    def test_catalog_and_unknown_models_cannot_be_deleted(self, fc):
        with pytest.raises(openai.PermissionDeniedError):
            fc.models.delete("gpt-4o")
        with pytest.raises(openai.NotFoundError):
            fc.models.delete("ft:gpt-4o-mini:someone:else:12345678")
        assert "gpt-4o" in {m.id for m in fc.models.list().data}


@pytest.fixture(scope="module")
def paced():
    with run_server("--ttft", "0", "--itl", "0", "--fine-tune-step-ms", "40") as s:
        yield s


def running(client, job_id: str) -> None:
    assert wait_for(lambda: client.fine_tuning.jobs.retrieve(job_id).status == "running", 10)


class TestControl:
    def test_cancel_a_running_job(self, paced):
        c = paced.client()
        job = c.fine_tuning.jobs.create(model="gpt-4o-mini", hyperparameters={"n_epochs": 20},
                                        training_file=upload(c, [example(i) for i in range(10)]))
        running(c, job.id)
        cancelled = c.fine_tuning.jobs.cancel(job.id)
        assert cancelled.status == "cancelled"
        assert wait_for(lambda: c.fine_tuning.jobs.list_events(job.id, limit=1).data[0].message
                        == "Fine-tuning job cancelled", 5)
        after = c.fine_tuning.jobs.retrieve(job.id)
        assert after.status == "cancelled" and after.fine_tuned_model is None
        with pytest.raises(openai.BadRequestError, match="cancelled"):
            c.fine_tuning.jobs.cancel(job.id)

    def test_pause_and_resume(self, paced):
        c = paced.client()
        job = c.fine_tuning.jobs.create(model="gpt-4o-mini", hyperparameters={"n_epochs": 3},
                                        training_file=upload(c, [example(i) for i in range(10)]))
        with pytest.raises(openai.BadRequestError, match="resume"):
            c.fine_tuning.jobs.resume(job.id)
        running(c, job.id)
        assert c.fine_tuning.jobs.pause(job.id).status == "paused"
        assert c.fine_tuning.jobs.retrieve(job.id).status == "paused"
        assert c.fine_tuning.jobs.resume(job.id).status == "running"
        done = finished(c, job.id)
        assert done.status == "succeeded"
        messages = [e.message for e in c.fine_tuning.jobs.list_events(job.id, limit=100)]
        assert "Fine-tuning job paused" in messages and "Fine-tuning job resumed" in messages
        steps = [e.data["step"] for e in c.fine_tuning.jobs.list_events(job.id, limit=100) if e.type == "metrics"]
        assert sorted(steps) == list(range(1, 31))  # no step lost or repeated


class TestSpeed:
    def test_step_time_paces_the_run(self, paced, fc):
        c = paced.client()
        rows = [example(i) for i in range(10)]
        t0 = time.monotonic()
        job = c.fine_tuning.jobs.create(model="gpt-4o-mini", training_file=upload(c, rows),
                                        hyperparameters={"n_epochs": 2})
        finished(c, job.id)
        slow = time.monotonic() - t0
        # 20 steps plus 10 steps of validating/queued at 40 ms each
        assert slow >= 0.9 * 30 * 0.040
        t0 = time.monotonic()
        fast_job = fc.fine_tuning.jobs.create(model="gpt-4o-mini", training_file=upload(fc, rows),
                                              hyperparameters={"n_epochs": 2})
        finished(fc, fast_job.id)
        assert time.monotonic() - t0 < slow


def test_a_job_resumes_after_a_crash_and_models_persist():
    rows = [example(i) for i in range(10)]
    with tempfile.TemporaryDirectory() as data:
        with run_server("--data-dir", data, "--fine-tune-step-ms", "20") as s:
            c = s.client()
            early = finished(c, c.fine_tuning.jobs.create(model="gpt-4o-mini", hyperparameters={"n_epochs": 1},
                                                          training_file=upload(c, rows)).id)
            job = c.fine_tuning.jobs.create(model="gpt-4o-mini", hyperparameters={"n_epochs": 8}, seed=3,
                                            training_file=upload(c, rows))
            assert wait_for(lambda: any(e.type == "metrics" for e in c.fine_tuning.jobs.list_events(job.id).data), 10)
            seen = {e.data["step"]: e.data["train_loss"]
                    for e in c.fine_tuning.jobs.list_events(job.id, limit=100) if e.type == "metrics"}
            s.proc.kill()  # SIGKILL: no clean shutdown
            s.proc.wait()
        assert 0 < len(seen) < 80
        with run_server("--data-dir", data, "--fine-tune-step-ms", "1") as s:
            c = s.client()
            # the model of the job that finished before the crash is loaded from the store
            assert early.fine_tuned_model in {m.id for m in c.models.list().data}
            done = finished(c, job.id, timeout=40)  # once the dead process's lease on it lapses
            assert done.status == "succeeded" and done.trained_tokens == 8 * early.trained_tokens
            events = list(c.fine_tuning.jobs.list_events(job.id, limit=100))
            steps = [e.data["step"] for e in events if e.type == "metrics"]
            assert sorted(steps) == list(range(1, 81))  # each step once, none lost to the crash
            after = {e.data["step"]: e.data["train_loss"] for e in events if e.type == "metrics"}
            assert all(after[k] == v for k, v in seen.items())  # the same seeded curve continues
            assert done.fine_tuned_model in {m.id for m in c.models.list().data}
            c.models.delete(early.fine_tuned_model)
        with run_server("--data-dir", data) as s:  # a deleted model stays deleted
            c = s.client()
            listed = {m.id for m in c.models.list().data}
            assert done.fine_tuned_model in listed and early.fine_tuned_model not in listed
            with pytest.raises(openai.NotFoundError):
                c.models.retrieve(early.fine_tuned_model)
