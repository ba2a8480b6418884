"""The prefix cache (radix.PrefixCache) and the block pool around it (kv.KVCache).

Property tests drive random admit / commit / grow / release / reset sequences through a
small pool and check after every step: capacity is never exceeded, pinned blocks are
never evicted, a match is a prefix, and the trie's bookkeeping is consistent.
"""

from __future__ import annotations

from types import SimpleNamespace

from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from fakeai.engine.cluster import kvhash
from fakeai.engine.cluster.kv import KVCache
from fakeai.engine.cluster.radix import PrefixCache
from fakeai.engine.cluster.sequence import Seq
from fakeai.engine.events import EventBus

BS = 4


def make_seq(ids: list[int], output: list[int] | None = None, n: int = 1) -> Seq:
    out = output or []
    gen = SimpleNamespace(model=SimpleNamespace(id="m"), prompt_tokens=len(ids), steps=len(out),
                          choices=[SimpleNamespace(ids=out)] * n, prompt_ids=ids, endpoint="chat")
    seq = Seq(gen, "chat", False, 0.0, None, None)
    seq.hashes = kvhash.sequence_hashes(ids, BS)
    return seq


def chain(*blocks: int) -> list[int]:
    return kvhash.sequence_hashes([t for b in blocks for t in [b] * BS], BS)


# -- the trie on its own ------------------------------------------------------------------------

def test_match_insert_acquire_release():
    c = PrefixCache()
    a = chain(1, 2, 3)
    blocks, created = c.insert(None, a)
    assert created == [0, 1, 2] and len(c) == 3 and c.pinned == 3
    assert c.match(a) == 3 and c.match(chain(1, 2, 9)) == 2 and c.match(chain(9)) == 0
    assert c.match(a, limit=1) == 1
    assert c.evict(10) == []  # pinned: nothing goes
    c.release(blocks)
    assert c.pinned == 0 and c.reclaimable == 3
    got = c.acquire(chain(1, 2, 7))
    assert [b.hash for b in got] == a[:2] and c.pinned == 2
    assert c.evict(10) == [a[2]]  # only the unpinned leaf
    c.release(got)
    assert sorted(c.evict(10)) == sorted(a[:2]) and len(c) == 0


def test_eviction_is_least_recently_used_leaf_first():
    c = PrefixCache()
    x, y = chain(1, 2), chain(1, 3)  # share the first block
    bx, _ = c.insert(None, x)
    c.release(bx)
    by, created = c.insert(c.blocks[y[0]], y[1:])
    assert created == [0]
    c.release(by)
    assert c.evict(1) == [x[1]]  # x's leaf was released first
    c.release(c.acquire(y))  # touch y again
    assert c.evict(1) == [y[1]]
    assert c.evict(1) == [x[0]]  # the shared block became a leaf last


def test_stale_heap_entries_stay_bounded():
    c = PrefixCache()
    blocks, _ = c.insert(None, chain(1, 2, 3))
    c.release(blocks)
    for _ in range(5000):  # pin and release the same path over and over
        c.release(c.acquire(chain(1, 2, 3)))
    assert len(c._heap) <= 2 * len(c) + 1024 + 1


# -- the pool ----------------------------------------------------------------------------------

def test_admit_pins_the_cached_prefix_but_never_the_whole_prompt():
    kv = KVCache(100, BS)
    ids = [1] * 16  # exactly 4 blocks
    first = make_seq(ids)
    assert kv.admit(first, 0)
    assert first.cached == 0 and first.private == 4
    kv.commit(first)
    assert len(kv.tree) == 4 and first.private == 0 and kv.used == 4
    kv.release(first)
    again = make_seq(ids)
    assert kv.admit(again, 0)
    assert again.cached == 12  # 3 of 4 blocks: the last token is always computed
    assert again.private == 1 and kv.used == 5  # the recomputed block is its own until committed
    kv.commit(again)
    assert kv.used == 4  # ...then it is the cached one


def test_the_next_turn_reuses_the_previous_prompt():
    kv = KVCache(100, BS)
    turn1 = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]
    seq = make_seq(turn1, [20, 21, 22, 23, 24])
    assert kv.admit(seq, 5)
    kv.commit(seq)
    kv.release(seq)
    assert kv.private == 0 and len(kv.tree) == 2  # the prompt's full blocks, not the answer's
    turn2 = make_seq(turn1 + [20, 21, 22, 23, 24] + [30, 31, 32, 33])
    assert kv.tree.match(turn2.hashes) == 2


def test_taking_blocks_evicts_lru_cached_ones_and_fails_when_pinned():
    kv = KVCache(8, BS)
    a = make_seq([1] * 16)
    kv.admit(a, 0)
    kv.commit(a)
    kv.release(a)  # 4 cached, unpinned
    b = make_seq([2] * 24)
    assert kv.admit(b, 0)  # 6 blocks: 2 free + 4 evicted... only as many as needed
    assert kv.used == 8 and kv.evicted == 2
    c = make_seq([3] * 16)
    assert not kv.admit(c, 0)  # b's 6 are held; 2 cached left, 4 needed
    assert c.nodes == [] and c.private == 0 and kv.used == 8


def test_events_describe_the_cache():
    bus = EventBus()
    seen = []
    bus.on_kv(seen.append)
    kv = KVCache(6, BS, events=bus, worker=3, model="m")
    a = make_seq(list(range(10)))  # 2 full blocks
    kv.admit(a, 0)
    kv.commit(a)
    (stored,) = seen
    assert (stored.kind, stored.worker, stored.model, stored.block_size) == ("stored", 3, "m", BS)
    assert stored.block_hashes == a.hashes and stored.parent_hash is None
    assert stored.token_ids == list(range(8))
    kv.release(a)
    b = make_seq([50] * 20)
    kv.admit(b, 0)  # needs 5 of 6: evicts one cached block
    assert seen[-1].kind == "removed" and seen[-1].block_hashes == [a.hashes[1]]
    kv.release(b)
    kv.clear()
    assert seen[-1].kind == "cleared" and len(kv.tree) == 0


# -- properties --------------------------------------------------------------------------------

class PoolMachine(RuleBasedStateMachine):
    """Random traffic on a 24-block pool; prompts share prefixes from a tiny alphabet."""

    @initialize()
    def setup(self):
        self.kv = KVCache(24, BS)
        self.running: list[Seq] = []

    @rule(blocks=st.lists(st.integers(0, 2), min_size=1, max_size=6), tail=st.integers(0, BS - 1),
          reserve=st.integers(0, 6), out=st.integers(0, 9), n=st.integers(1, 2))
    def admit(self, blocks, tail, reserve, out, n):
        ids = [t for b in blocks for t in [b] * BS] + [99] * tail
        seq = make_seq(ids, list(range(100, 100 + out)), n)
        before = {h: b for h, b in self.kv.tree.blocks.items() if b.refs}
        if self.kv.admit(seq, reserve):
            self.running.append(seq)
            hit = self.kv.tree.match(seq.hashes)
            assert seq.cached == len(seq.nodes) * BS <= max(len(ids) - 1, 0)
            assert len(seq.nodes) <= hit
        for h, b in before.items():  # pinned blocks were not evicted
            assert self.kv.tree.blocks.get(h) is b

    @precondition(lambda self: self.running)
    @rule(i=st.integers(0, 100))
    def commit(self, i):
        self.kv.commit(self.running[i % len(self.running)])

    @precondition(lambda self: self.running)
    @rule(i=st.integers(0, 100), tokens=st.integers(0, 12))
    def grow(self, i, tokens):
        seq = self.running[i % len(self.running)]
        before = seq.blocks
        if self.kv.grow(seq, tokens):
            assert seq.blocks >= before

    @precondition(lambda self: self.running)
    @rule(i=st.integers(0, 100))
    def release(self, i):
        seq = self.running.pop(i % len(self.running))
        self.kv.release(seq)
        assert seq.nodes == [] and seq.private == 0

    @rule()
    def reset(self):
        self.kv.clear()
        assert len(self.kv.tree) == self.kv.tree.pinned

    @invariant()
    def consistent(self):
        kv, tree = self.kv, self.kv.tree
        assert 0 <= kv.used <= kv.total
        assert kv.private == sum(s.private for s in self.running)
        refs: dict[int, int] = {}
        for s in self.running:
            for b in s.nodes:
                refs[b.hash] = refs.get(b.hash, 0) + 1
                assert tree.blocks.get(b.hash) is b  # pinned blocks are in the cache
        children: dict[int, int] = {}
        for h, b in tree.blocks.items():
            assert b.refs == refs.get(h, 0)
            if b.parent is not None:
                assert tree.blocks.get(b.parent.hash) is b.parent  # no orphans
                assert b.parent.refs >= b.refs  # a pin covers the whole path to the root
                children[b.parent.hash] = children.get(b.parent.hash, 0) + 1
        assert all(b.children == children.get(h, 0) for h, b in tree.blocks.items())
        assert tree.pinned == sum(1 for b in tree.blocks.values() if b.refs)

    @invariant()
    def match_is_a_prefix(self):
        tree = self.kv.tree
        for s in self.running:
            k = tree.match(s.hashes)
            assert all(h in tree for h in s.hashes[:k])
            assert k == len(s.hashes) or s.hashes[k] not in tree


PoolMachine.TestCase.settings = settings(max_examples=150, stateful_step_count=40, deadline=None)
TestPool = PoolMachine.TestCase


@given(st.lists(st.lists(st.integers(0, 3), min_size=1, max_size=8), max_size=60))
@settings(deadline=None)
def test_memory_is_bounded_by_the_pool_under_any_unique_traffic(prompts):
    kv = KVCache(10, BS)
    for i, blocks in enumerate(prompts):
        seq = make_seq([t * 7 + i for b in blocks for t in [b] * BS])  # mostly unique prompts
        if kv.admit(seq, 2):
            kv.commit(seq)
            kv.release(seq)
        assert kv.used <= 10 and len(kv.tree) <= 10
