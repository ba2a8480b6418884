"""The continuous-batching scheduler (cluster.scheduler) and the step-time model, on a given clock."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest

from fakeai.engine.cluster import kvhash
from fakeai.engine.cluster.kv import KVCache
from fakeai.engine.cluster.scheduler import BatchScheduler
from fakeai.engine.cluster.sequence import DECODE, DONE, JOIN, PINNED, WAITING, Seq
from fakeai.engine.latency import StepModel

BS = 16


def seq(prompt: int, out: int, *, ids: list[int] | None = None, ttft=None, itl=None, n=1,
        arrival=0.0, stream=True) -> Seq:
    gen = SimpleNamespace(model=SimpleNamespace(id="m"), prompt_tokens=prompt, steps=out,
                          choices=[SimpleNamespace(ids=list(range(out)))] * n, prompt_ids=ids,
                          endpoint="chat", cached_tokens=0)
    s = Seq(gen, "chat", stream, arrival, ttft, itl)
    if ids is not None:
        s.hashes = kvhash.sequence_hashes(ids, BS)
    return s


def sched(blocks=10_000, max_seqs=256, budget=8192, role="both") -> BatchScheduler:
    return BatchScheduler(KVCache(blocks, BS), max_seqs, budget, role)


def run_steps(s: BatchScheduler, t: float, dt: float = 0.01, limit: int = 10_000) -> float:
    """Plan and apply steps of ``dt`` each until nothing is runnable; the end time."""
    for _ in range(limit):
        step = s.plan(t)
        if step is None:
            return t
        step.duration = dt
        t += dt
        s.apply(step, t)
        s.admit(t)
    raise AssertionError("the scheduler never went idle")


# -- admission ---------------------------------------------------------------------------------

def test_fifo_queue_behind_max_num_seqs_and_slot_hand_over():
    s = sched(max_seqs=2)
    a, b, c, d = (seq(10, 5, ttft=0.1, itl=0.01, arrival=1.0) for _ in range(4))
    assert s.submit(a, 1.0) and s.submit(b, 1.0)
    assert not s.submit(c, 1.0) and not s.submit(d, 1.0)
    assert (len(s.running), len(s.waiting)) == (2, 2)
    assert c.state == WAITING and c.first is None
    s.finish(a, 2.0, 5)
    assert s.admit(2.0) == [c]
    assert c.state == PINNED and c.scheduled == 2.0
    assert c.first == pytest.approx(2.1)  # queued: the pinned TTFT counts from admission
    assert a.first == pytest.approx(1.1)  # admitted at once: from arrival
    s.finish(d, 2.0, 0)  # a waiting request that gives up leaves the queue
    assert not s.waiting and s.admit(2.0) == []
    assert s.requests_finished == 2


def test_raising_max_num_seqs_admits_the_queue():
    s = sched(max_seqs=1)
    a, b = seq(10, 5, ttft=0.0, itl=0.0), seq(10, 5, ttft=0.0, itl=0.0)
    s.submit(a, 0.0)
    s.submit(b, 0.0)
    s.max_num_seqs = 2
    assert s.admit(0.5) == [b]


def test_the_head_of_the_queue_blocks_when_its_blocks_do_not_fit():
    s = sched(blocks=10, max_seqs=8)
    big, small = seq(16 * 8, 1), seq(16 * 3, 1)
    holder = seq(16 * 4, 1)
    assert s.submit(holder, 0.0)
    assert not s.submit(big, 0.0)  # 8 blocks, 6 free
    assert not s.submit(small, 0.0)  # FCFS: waits behind it
    s.finish(holder, 1.0, 1)
    assert s.admit(1.0) == [big]  # 8 of 10 blocks
    assert list(s.waiting) == [small] and s.kv.free == 2 and len(s.running) == 1
    s.finish(big, 2.0, 1)
    assert s.admit(2.0) == [small]


def test_a_request_larger_than_the_pool_still_runs_alone():
    s = sched(blocks=4)
    huge = seq(16 * 20, 3)
    assert s.submit(huge, 0.0)
    assert s.kv.used <= s.kv.total
    end = run_steps(s, 0.0)
    assert huge.state == DONE and end > 0


# -- steps -------------------------------------------------------------------------------------

def test_chunked_prefill_within_the_token_budget():
    s = sched(budget=8192)
    long = seq(20000, 2)
    s.submit(long, 0.0)
    chunks = []
    t = 0.0
    while long.first is None:
        step = s.plan(t)
        chunks.append(step.prefill_tokens)
        t += 0.01
        s.apply(step, t)
    assert chunks == [8192, 8192, 3616]
    assert long.first == pytest.approx(0.03) and long.emitted == 1  # the last chunk samples a token
    assert s.prompt_tokens_total == 20000


def test_decode_takes_budget_first_and_prefill_shares_the_rest():
    s = sched(budget=100)
    decoders = [seq(10, 50) for _ in range(30)]
    for d in decoders:
        s.submit(d, 0.0)
    step = s.plan(0.0)
    assert step.prefill_tokens == 100  # 10 prompts of 10 tokens fit the budget...
    assert len(step.prefill) == 10
    s.apply(step, 0.01)
    step = s.plan(0.01)
    assert step.seqs == 10 and len(step.decode) == 10  # ...and decode next step, one token each
    assert step.prefill_tokens == 90
    late = seq(500, 5)
    s.submit(late, 0.01)
    s.apply(step, 0.02)
    step = s.plan(0.02)
    assert step.seqs == 19 and step.prefill_tokens == 100 - 19


def test_a_cached_prefix_is_not_prefilled_again():
    s = sched()
    ids = list(range(1000))
    first = seq(1000, 3, ids=ids)
    s.submit(first, 0.0)
    run_steps(s, 0.0)
    s.finish(first, 1.0, 3)
    again = seq(1000, 3, ids=ids)
    s.submit(again, 1.0)
    assert again.cached == 992  # 62 whole blocks; the last (partial) block is computed
    assert again.prefill_left == 8
    assert again.gen.cached_tokens == 992
    assert s.prefix_hit_tokens == 992 and s.prefix_query_tokens == 2000


def test_preemption_when_blocks_run_out_and_recompute_later():
    s = sched(blocks=12, max_seqs=8)
    seqs = [seq(16, 64) for _ in range(3)]  # each grows to 5 blocks
    for x in seqs:
        assert s.submit(x, 0.0)
    t = 0.0
    order = []
    for _ in range(2000):
        step = s.plan(t)
        if step is None:
            break
        t += 0.01
        for x in s.apply(step, t):
            if x.state == DONE:
                order.append(seqs.index(x))
        s.admit(t)
        assert s.kv.used <= s.kv.total
    assert all(x.state == DONE and x.emitted == 64 for x in seqs)
    assert s.preemptions >= 1
    assert order[0] in (0, 1)  # the newest was preempted, the oldest kept going
    assert s.generation_tokens == 3 * 64


def test_pinned_decoding_reserves_its_blocks_and_is_never_preempted():
    s = sched(blocks=12, max_seqs=8)
    pinned = seq(16, 64, itl=0.01)
    assert s.submit(pinned, 0.0)
    assert pinned.blocks == 5  # prompt + every decoded token, up front
    loop = seq(16, 64)
    assert s.submit(loop, 0.0)
    run_steps(s, 0.0)
    assert pinned.state == PINNED and loop.state == DONE
    assert pinned in s.running and pinned.blocks == 5


def test_pinned_ttft_with_a_modelled_itl_joins_the_batch_at_its_first_token():
    s = sched()
    x = seq(10, 5, ttft=0.5, arrival=0.0)
    s.submit(x, 0.0)
    assert x.state == JOIN and x.first == 0.5
    assert s.plan(0.2) is None and s.next_join() == 0.5
    step = s.plan(0.5)
    assert x.state == DECODE and step.seqs == 1
    assert x.due(0.5) == 1  # its first token is out at 0.5
    s.apply(step, 0.51)
    assert x.emitted == 2


def test_disaggregated_prefill_worker_hands_over_after_the_prompt():
    s = sched(role="prefill")
    x = seq(100, 5)
    s.submit(x, 0.0)
    step = s.plan(0.0)
    s.apply(step, 0.01)
    assert s.outbox == [x] and x not in s.running and x.first is None
    assert s.kv.used == len(s.kv.tree)  # its prompt blocks stay cached, nothing else held


# -- step time ----------------------------------------------------------------------------------

def model() -> StepModel:
    # an 8B model on an H100: 16 GB of weights, 128 KiB of KV per token
    return StepModel(itl_s=0.008, prefill_s_per_token=5e-5, weights_bytes=16e9, token_bytes=131072,
                     compute_ratio=0.0034)


def test_itl_grows_with_the_batch_and_its_context():
    m = model()
    assert m.decode_s(1, 1) == pytest.approx(0.008, rel=1e-3)
    assert m.decode_s(0, 0) == 0.0
    small, big = m.decode_s(8, 8 * 500), m.decode_s(256, 256 * 500)
    assert 0.008 < small < big
    assert m.decode_s(256, 256 * 2000) > big  # longer contexts read more KV
    assert m.decode_s(1024, 1024) == pytest.approx(0.008 * 0.0034 * 1024)  # compute-bound


def test_a_prefill_chunk_lengthens_the_step():
    m = model()
    assert m.step_s(10, 1000, 0) < m.step_s(10, 1000, 2048)
    assert m.step_s(0, 0, 2048) == pytest.approx(2048 * 5e-5)


# -- the worker's loop --------------------------------------------------------------------------

def test_worker_loop_emits_tokens_at_step_ends():
    from fakeai.engine.capacity import Deployment
    from fakeai.engine.clock import Ticker
    from fakeai.engine.cluster.worker import Worker
    from fakeai.engine.events import EventBus

    async def main():
        ticker = Ticker(0.001)
        dep = Deployment(1, 80 << 30, 16 * 10**9, 131072, BS, 1000, True)
        w = Worker(0, "m", "both", dep, [], StepModel(0.004, 1e-5, 16e9, 131072, 0.0), max_num_seqs=8,
                   max_batched_tokens=8192, caching=True, jitter=0.0, jitter_dist="normal", ticker=ticker,
                   events=EventBus(), on_handoff=lambda s, t: None)
        x = seq(100, 10)
        t0 = ticker.time()
        w.submit(x, t0)
        times = []
        while x.emitted < 10:
            await x.progress()
            times.append(ticker.time())
        assert t0 + 100 * 1e-5 <= x.first < t0 + 0.1  # one prefill step, begun at once
        assert x.first + 9 * 0.004 <= x.done_at < x.first + 0.5  # then one token per 4 ms step
        assert times[-1] >= x.done_at  # never woken before its token was due
        assert w.running == 0 and w.steps == 10
        assert w.generation_tokens_total == 10 and w.prompt_tokens_total == 100

    asyncio.run(main())


# -- one record per request ---------------------------------------------------------------------

def test_every_request_leaves_exactly_one_record():
    from fakeai.config import Settings
    from fakeai.engine.core import Engine, GenParams
    from fakeai.registry import ModelRegistry

    async def main():
        eng = Engine(Settings(ttft_ms=0, itl_ms=50, output_length="max"), ModelRegistry.load())
        records = []
        eng.events.on_finished(records.append)
        m = eng.model("gpt-4o-mini")
        ids = eng.chat_prompt(m, [{"role": "user", "content": "hello there " * 20}])
        gen = eng.generate(m, len(ids), GenParams(max_tokens=4), "hi", endpoint="chat", prompt_ids=ids)
        await eng.complete(gen)
        stream = eng.run(eng.generate(m, len(ids), GenParams(max_tokens=40), "hi", endpoint="completions",
                                      prompt_ids=ids))
        assert await stream.__anext__() == (0, 1)
        await stream.aclose()  # the client went away after the first token
        await eng.simulate(m, 12, endpoint="embeddings")
        return records

    done, cut, embed = asyncio.run(main())
    assert (done.endpoint, done.finish_reason, done.completion_tokens, done.stream) == ("chat", "length", 4, False)
    assert done.max_tokens == 4 and done.finished - done.first_token == pytest.approx(3 * 0.05, abs=0.01)
    assert done.cached_tokens == 0 and done.worker == 0 and done.scheduled == done.arrival
    assert (cut.endpoint, cut.finish_reason, cut.completion_tokens, cut.stream) == ("completions", "abort", 1, True)
    assert cut.cached_tokens > 0  # the same prompt again: its blocks were cached
    assert (embed.endpoint, embed.prompt_tokens, embed.finish_reason) == ("embeddings", 12, "stop")
