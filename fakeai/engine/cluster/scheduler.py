"""One worker's continuous-batching scheduler, as pure bookkeeping on a given clock.

Admission (``submit``, ``admit``): a request leaves the FIFO waiting queue when fewer
than ``max_num_seqs`` run and the KV pool can hold its prompt (after its cached
prefix); the head of the queue blocks the rest, as vLLM's FCFS policy does.

A step (``plan`` then ``apply``), vLLM v1 style, with a budget of
``max_batched_tokens`` tokens:

1. every decoding sequence needs room for one more token; when the pool is out of
   blocks the most recently admitted step-loop sequence is preempted (its blocks freed,
   back to the front of the queue, its prompt and decoded tokens recomputed later);
2. decoding sequences take one token of budget each (per choice);
3. prefilling sequences take chunks of what is left, oldest first (chunked prefill).

``StepModel`` turns the batch into the step's duration; ``apply`` advances everything at
the step's end: a sequence that finishes its prefill has its first token, decoding
sequences one more. Sequences with a pinned ITL (and pinned TTFT) never wait on a step:
they only count in the batch and reserve their blocks up front, so nothing preempts them.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from .kv import KVCache
from .sequence import DECODE, DONE, JOIN, MOVING, PINNED, PREFILL, WAITING, Seq


@dataclass(slots=True)
class Step:
    decode: list[Seq] = field(default_factory=list)
    prefill: list[tuple[Seq, int]] = field(default_factory=list)
    seqs: int = 0  # sequences decoding (choices count one each)
    context: int = 0  # tokens in their KV caches
    prefill_tokens: int = 0
    duration: float = 0.0


class BatchScheduler:
    def __init__(self, kv: KVCache, max_num_seqs: int, max_batched_tokens: int,
                 role: str = "both") -> None:
        self.kv = kv
        self.max_num_seqs = max_num_seqs
        self.max_batched_tokens = max_batched_tokens
        self.role = role
        self.running: list[Seq] = []
        self.waiting: deque[Seq] = deque()
        self.outbox: list[Seq] = []  # prefilled here, to be decoded elsewhere (disaggregation)
        self.backlog = 0  # prompt tokens still to compute (queued and prefilling)
        # cumulative counters
        self.steps = 0
        self.loop_busy = 0.0  # seconds spent in steps
        self.prompt_tokens_total = 0
        self.generation_tokens = 0
        self.prefix_query_tokens = 0
        self.prefix_hit_tokens = 0
        self.preemptions = 0
        self.requests_finished = 0
        self._busy = 0.0
        self._busy_since = 0.0

    # -- admission --------------------------------------------------------------------------
    def submit(self, seq: Seq, now: float) -> bool:
        """Queue ``seq``, admitting it at once if there is room; True if admitted."""
        if not self.waiting and len(self.running) < self.max_num_seqs and self._take(seq, now):
            self._start(seq, now, immediate=True)
            return True
        seq.state = WAITING
        self.waiting.append(seq)
        self.backlog += self._todo(seq)
        return False

    def admit(self, now: float) -> list[Seq]:
        """Admit from the head of the queue while there is room; the admitted sequences."""
        out = []
        waiting = self.waiting
        while waiting and len(self.running) < self.max_num_seqs:
            seq = waiting[0]
            if not self._take(seq, now):
                break
            waiting.popleft()
            self.backlog -= self._todo(seq)
            self._start(seq, now, immediate=False)
            out.append(seq)
        return out

    def force(self, seq: Seq, now: float) -> None:
        """Run ``seq`` now whatever the limits (a pinned-ITL sequence handed over by a
        prefill worker cannot wait without breaking its schedule)."""
        self.kv.admit(seq, self._reserve(seq), force=True)
        self._start(seq, now, immediate=True)

    def _reserve(self, seq: Seq) -> int:
        return seq.total if seq.itl is not None else 0  # pinned decode: all blocks up front

    def _take(self, seq: Seq, now: float) -> bool:
        return self.kv.admit(seq, self._reserve(seq), force=not self.running)

    @staticmethod
    def _todo(seq: Seq) -> int:
        return 0 if seq.transferred or seq.remote_prefill else seq.prompt + seq.emitted

    def _start(self, seq: Seq, now: float, immediate: bool) -> None:
        if not self.running:
            self._busy_since = now
        self.running.append(seq)
        first_time = not seq.admits
        seq.admits += 1
        if first_time:
            seq.scheduled = seq.arrival if immediate else now
            if seq.ids is not None:
                self.prefix_query_tokens += seq.prompt
                self.prefix_hit_tokens += seq.cached
                seq.gen.cached_tokens = seq.cached
        if seq.transferred:  # its KV came from a prefill worker
            seq.state = PINNED if seq.itl is not None else DECODE
            if seq.first is None:
                seq.first = now
            if not seq.emitted:
                seq.emitted = 1
                self.generation_tokens += seq.n
        elif seq.ttft is not None and seq.first is None:
            start = min(seq.arrival, now) if immediate else now  # TTFT counts from arrival unless queued
            seq.first = start + seq.ttft
            self.prompt_tokens_total += max(seq.prompt - seq.cached, 0)
            self.kv.commit(seq)
            seq.state = PINNED if seq.itl is not None or self.role == "prefill" else JOIN
        else:  # (also a preempted sequence back: it recomputes its prompt and what it decoded)
            seq.state = PREFILL
            seq.prefill_left = 0 if seq.remote_prefill else seq.prompt + seq.emitted - seq.cached
            self.backlog += seq.prefill_left

    # -- steps ------------------------------------------------------------------------------
    def next_join(self) -> float | None:
        """The earliest first token of a pinned-TTFT sequence waiting to join the batch."""
        return min((s.first for s in self.running if s.state == JOIN), default=None)

    def plan(self, now: float) -> Step | None:
        """Compose the next step; None if nothing can run at ``now``."""
        bs = self.kv.block_size
        step = Step()
        decode, prefilling = step.decode, []
        seqs = context = dtoks = 0
        for seq in list(self.running):  # (a copy: preemption removes from the list)
            st = seq.state
            if st == JOIN and seq.first <= now:
                seq.state = st = DECODE
                if not seq.emitted:
                    seq.emitted = 1
            if st == DECODE:
                if not (seq.prompt + seq.emitted) % bs:  # its next token starts a block
                    self._room_for_next_token(seq, now)
                    if seq.state != DECODE:
                        continue  # preempted
                decode.append(seq)
                n = seq.n
                seqs += n
                dtoks += n
                context += (seq.prompt + seq.emitted) * n
            elif st == PREFILL:
                prefilling.append(seq)
            elif st == PINNED and seq.first is not None and seq.first <= now:
                seqs += seq.n
                context += (seq.prompt + seq.due(now)) * seq.n
        budget = self.max_batched_tokens - dtoks  # decode first, one token per sequence
        for seq in prefilling:
            if budget <= 0:
                break
            if seq.state != PREFILL:
                continue  # preempted for a decoding sequence's block
            chunk = min(seq.prefill_left, budget)
            step.prefill.append((seq, chunk))
            step.prefill_tokens += chunk
            budget -= max(chunk, 1)  # a remote-prefilled sequence still samples a token
        if not decode and not step.prefill:
            return None
        step.seqs, step.context = seqs, context
        return step

    def _room_for_next_token(self, seq: Seq, now: float) -> None:
        while not self.kv.grow(seq, seq.emitted + 1):
            victim = next((s for s in reversed(self.running) if s.state in (PREFILL, DECODE)), None)
            if victim is None or (victim is seq and self._alone(seq)):
                return  # nothing else to free: it runs over the pool (a request larger than the cache)
            self.preempt(victim, now)
            if victim is seq:
                return

    def _alone(self, seq: Seq) -> bool:
        return all(s is seq or s.state not in (PREFILL, DECODE) for s in self.running)

    def preempt(self, seq: Seq, now: float) -> None:
        """Free ``seq``'s blocks and send it back to the front of the queue."""
        if seq.state == PREFILL:
            self.backlog -= seq.prefill_left
        self._remove_running(seq, now)
        self.kv.release(seq)
        seq.state = WAITING
        seq.prefill_left = 0
        seq.committed = False
        self.waiting.appendleft(seq)
        self.backlog += self._todo(seq)
        self.preemptions += 1

    def apply(self, step: Step, end: float) -> list[Seq]:
        """Advance every sequence of ``step`` to its end at ``end``; the ones that moved."""
        self.steps += 1
        self.loop_busy += step.duration
        moved = []
        for seq in step.decode:
            if seq.state != DECODE:
                continue  # cancelled or preempted meanwhile
            seq.emitted += 1
            self.generation_tokens += seq.n
            if seq.emitted >= seq.total:
                self._done(seq, end)
            moved.append(seq)
        for seq, chunk in step.prefill:
            if seq.state != PREFILL:
                continue
            seq.prefill_left -= chunk
            self.backlog -= chunk
            self.prompt_tokens_total += chunk
            if seq.prefill_left > 0:
                continue
            self.kv.commit(seq)
            if self.role == "prefill" and seq.total:
                self._remove_running(seq, end)  # a decode worker takes it from here
                self.kv.release(seq)
                seq.state = MOVING
                self.outbox.append(seq)
                continue
            if seq.first is None:
                seq.first = end
            if seq.total:
                seq.emitted += 1  # the prefill step samples the next token
                self.generation_tokens += seq.n
            if seq.emitted >= seq.total:
                self._done(seq, end)
            else:
                seq.state = PINNED if seq.itl is not None else DECODE
            moved.append(seq)
        return moved

    def _done(self, seq: Seq, end: float) -> None:
        """Every token produced: free the sequence's slot and blocks."""
        seq.state = DONE
        seq.done_at = end
        self._remove_running(seq, end)
        self.kv.release(seq)

    # -- leaving ----------------------------------------------------------------------------
    def finish(self, seq: Seq, now: float, tokens: int) -> None:
        """``seq`` is over (finished with ``tokens`` per choice, or cancelled)."""
        st = seq.state
        if st == WAITING:
            try:
                self.waiting.remove(seq)
                self.backlog -= self._todo(seq)
            except ValueError:
                pass
        elif st != DONE and st != MOVING:
            if st == PREFILL:
                self.backlog -= seq.prefill_left
            self._remove_running(seq, now)
            self.kv.release(seq)
        if tokens > seq.emitted:
            self.generation_tokens += (tokens - seq.emitted) * seq.n
            seq.emitted = tokens
        seq.state = DONE
        self.requests_finished += 1

    def _remove_running(self, seq: Seq, now: float) -> None:
        self.running.remove(seq)
        if not self.running:
            self._busy += now - self._busy_since

    # -- reading ----------------------------------------------------------------------------
    def busy_seconds(self, now: float) -> float:
        return self._busy + (now - self._busy_since if self.running else 0.0)

    def pinned_tokens(self, now: float) -> int:
        """Tokens due on pinned schedules and not counted yet."""
        return sum((max(s.due(now) - s.emitted, 0)) * s.n for s in self.running if s.state == PINNED)
