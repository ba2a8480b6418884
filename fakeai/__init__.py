"""fakeai: a realistic simulator of an OpenAI-compatible LLM inference service."""

__version__ = "0.4.0"
