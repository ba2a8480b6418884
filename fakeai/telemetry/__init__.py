"""Metrics derived from the simulated cluster: vLLM, Dynamo and DCGM series, KV events.

Telemetry observes the engine (its event bus and ``engine.cluster``) and never
drives it. ``hub.Telemetry`` is the one object an app builds for the metrics routes.
"""
