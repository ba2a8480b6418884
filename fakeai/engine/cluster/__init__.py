"""The simulated GPU cluster: workers, batching, KV cache, routing (docs/cluster.md)."""
