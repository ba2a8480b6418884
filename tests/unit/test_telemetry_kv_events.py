"""vLLM-format KV events over a real ZMQ PUB/SUB pair: frames, msgpack layout, batching per
event-loop iteration, sequence numbers, and both bind and connect endpoints."""

from __future__ import annotations

import asyncio
import time

import msgpack
import zmq

from fakeai.engine.events import KVEvent
from fakeai.telemetry.kv_events import KVEventPublisher, binds
from tests.server import free_port
from tests.unit.telemetry_fakes import cluster, telemetry

MODEL = "meta-llama/Llama-3.1-8B-Instruct"


def stored(worker: int = 0, hashes=(11, 2**64 - 1), parent=None) -> KVEvent:
    return KVEvent(worker=worker, model=MODEL, kind="stored", block_hashes=list(hashes), parent_hash=parent,
                   token_ids=list(range(16 * len(hashes))), block_size=16)


def subscriber(endpoint: str, bind: bool) -> zmq.Socket:
    sub = zmq.Context.instance().socket(zmq.SUB)
    sub.setsockopt(zmq.SUBSCRIBE, b"kv@")
    sub.setsockopt(zmq.LINGER, 0)
    (sub.bind if bind else sub.connect)(endpoint)
    return sub


def until_joined(pub: KVEventPublisher, sub: zmq.Socket) -> None:
    """PUB drops messages until the subscription reaches it: send probes until one arrives,
    then drain whatever probes are still in flight."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        pub.publish(KVEvent(worker=9, model="probe", kind="cleared", block_hashes=[]))
        pub.flush()  # inside a running loop the flush would wait for the next iteration
        if sub.poll(50):
            break
    else:
        raise AssertionError("the subscriber never joined")
    while sub.poll(100):
        sub.recv_multipart()


def receive(sub: zmq.Socket) -> tuple[str, int, list]:
    assert sub.poll(5000), "no message"
    topic, seq, payload = sub.recv_multipart()
    return topic.decode(), int.from_bytes(seq, "big"), msgpack.unpackb(payload)


def test_bound_publisher_frames_and_layout():
    port = free_port()
    pub = KVEventPublisher(f"tcp://*:{port}", "10.0.0.7", 8000)
    sub = subscriber(f"tcp://127.0.0.1:{port}", bind=False)
    try:
        until_joined(pub, sub)
        pub.publish(stored(worker=1, parent=7))  # no running loop: each publish goes out at once
        pub.publish(KVEvent(worker=1, model=MODEL, kind="removed", block_hashes=[11]))
        pub.publish(KVEvent(worker=1, model=MODEL, kind="cleared", block_hashes=[]))
        t0 = time.time()
        topic, seq1, batch = receive(sub)
        assert topic == f"kv@10.0.0.7:8000@{MODEL}"
        ts, events, rank = batch
        assert abs(ts - t0) < 5 and rank == 1
        assert events == [["BlockStored", [11, 2**64 - 1], 7, list(range(32)), 16, None, "GPU", None]]
        _, seq2, (_, events, _) = receive(sub)
        assert events == [["BlockRemoved", [11], "GPU"]]
        _, seq3, (_, events, _) = receive(sub)
        assert events == [["AllBlocksCleared"]]
        assert seq2 == seq1 + 1 and seq3 == seq2 + 1
    finally:
        pub.close()
        sub.close()


def test_connecting_publisher_batches_one_loop_iteration_per_worker():
    port = free_port()
    sub = subscriber(f"tcp://127.0.0.1:{port}", bind=True)
    pub = KVEventPublisher(f"tcp://127.0.0.1:{port}", "host", 1)

    async def one_step():
        # what one scheduler step raises: three workers' changes, interleaved
        for w in (0, 1, 0, 2, 0):
            pub.publish(stored(worker=w, hashes=(w * 100 + len(pub._pending),)))
        await asyncio.sleep(0.01)

    try:
        until_joined(pub, sub)
        asyncio.run(one_step())
        got = [receive(sub) for _ in range(3)]
        assert not sub.poll(200)
        seqs = [seq for _, seq, _ in got]
        assert seqs == sorted(seqs) and seqs[-1] - seqs[0] == 2
        by_rank = {batch[2]: [e[1] for e in batch[1]] for _, _, batch in got}
        assert by_rank == {0: [[0], [2], [4]], 1: [[101]], 2: [[203]]}
    finally:
        pub.close()
        sub.close()


def test_endpoint_mode_follows_vllm():
    assert binds("tcp://*:5557") and binds("tcp://[::]:5557") and binds("ipc:///tmp/kv")
    assert not binds("tcp://127.0.0.1:5557") and not binds("tcp://router.svc:5557")


def test_telemetry_publishes_the_buses_kv_events_when_enabled():
    port = free_port()
    sub = subscriber(f"tcp://127.0.0.1:{port}", bind=True)

    async def main():
        t = telemetry(cluster(workers=2), kv_events_endpoint=f"tcp://127.0.0.1:{port}", host="0.0.0.0",
                      port=8123)
        await t.start()
        try:
            assert t.engine.events.wants_kv
            until_joined(t.kv_events, sub)
            t.engine.events.kv(stored(worker=1))
            await asyncio.sleep(0.01)
            return receive(sub)
        finally:
            await t.stop()

    try:
        topic, _, (_, events, rank) = asyncio.run(main())
        assert topic == f"kv@sim-node-0:8123@{MODEL}"  # a wildcard host is named by the cluster's host
        assert rank == 1 and events[0][0] == "BlockStored"
    finally:
        sub.close()


def test_disabled_by_default():
    async def main():
        t = telemetry(cluster(workers=1))
        await t.start()
        await t.stop()
        return t

    t = asyncio.run(main())
    assert t.kv_events is None and not t.engine.events.wants_kv
