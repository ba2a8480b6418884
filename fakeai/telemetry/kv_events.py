"""vLLM-format KV cache events over ZMQ PUB, so an external router can follow each worker's cache.

Wire format (vLLM's ``ZmqEventPublisher``): three frames per message --
topic ``kv@<host>:<port>@<model>``, an 8-byte big-endian sequence number, and a
msgpack ``KVEventBatch`` -- the positional array ``[ts, events, data_parallel_rank]``
whose events are tagged arrays:

    ["BlockStored", block_hashes, parent_block_hash, token_ids, block_size, lora_id, medium, lora_name]
    ["BlockRemoved", block_hashes, medium]
    ["AllBlocksCleared"]

Each simulated worker is one data-parallel rank (its index). Events raised
while one event-loop iteration runs (one scheduler step) go out together,
one batch per (model, worker). Like vLLM, an endpoint with ``*`` (or ``::``,
``ipc://``, ``inproc://``) binds; any other connects. zmq is imported only here,
and this module only when events are enabled.
"""

from __future__ import annotations

import asyncio
import time

import msgpack
import zmq

from ..engine.events import KVEvent

MEDIUM = "GPU"


def endpoint_for_rank(endpoint: str, rank: int) -> str:
    """The endpoint of server process ``rank`` (``--workers``), as vLLM offsets its data-parallel
    ranks': a TCP port plus the rank, an ``ipc://``/``inproc://`` name plus ``_dp<rank>``."""
    if rank == 0:
        return endpoint
    if endpoint.startswith("tcp://"):
        base, _, port = endpoint.rpartition(":")
        return f"{base}:{int(port) + rank}"
    return f"{endpoint}_dp{rank}"


def encode_event(e: KVEvent) -> list:
    if e.kind == "stored":
        return ["BlockStored", e.block_hashes, e.parent_hash, e.token_ids or [], e.block_size, None,
                MEDIUM, None]
    if e.kind == "removed":
        return ["BlockRemoved", e.block_hashes, MEDIUM]
    return ["AllBlocksCleared"]


def binds(endpoint: str) -> bool:
    return "*" in endpoint or "::" in endpoint or endpoint.startswith(("ipc://", "inproc://"))


class KVEventPublisher:
    def __init__(self, endpoint: str, host: str, port: int) -> None:
        self._prefix = f"kv@{host}:{port}@"
        self._ctx = zmq.Context.instance()
        self._sock = self._ctx.socket(zmq.PUB)
        self._sock.setsockopt(zmq.SNDHWM, 100_000)
        self._sock.setsockopt(zmq.LINGER, 0)
        if binds(endpoint):
            self._sock.bind(endpoint)
        else:
            self._sock.connect(endpoint)
        self._seq = 0
        self._pending: list[KVEvent] = []
        self._scheduled = False
        self.sent = 0  # batches

    def publish(self, event: KVEvent) -> None:
        """Queue ``event``; everything queued in this loop iteration is flushed right after it."""
        self._pending.append(event)
        if self._scheduled:
            return
        try:
            asyncio.get_running_loop().call_soon(self.flush)
            self._scheduled = True
        except RuntimeError:  # no loop (direct use): send at once
            self.flush()

    def flush(self) -> None:
        self._scheduled = False
        pending, self._pending = self._pending, []
        if not pending:
            return
        groups: dict[tuple[str, int], list[list]] = {}
        for e in pending:
            groups.setdefault((e.model, e.worker), []).append(encode_event(e))
        ts = time.time()
        for (model, worker), events in groups.items():
            payload = msgpack.packb([ts, events, worker], use_bin_type=True)
            frames = ((self._prefix + model).encode(), self._seq.to_bytes(8, "big"), payload)
            self._seq += 1
            try:
                self._sock.send_multipart(frames, flags=zmq.NOBLOCK)
                self.sent += 1
            except zmq.Again:  # no peer or high-water mark reached: PUB drops, as vLLM's would
                pass

    def close(self) -> None:
        self.flush()
        self._sock.close(linger=0)
