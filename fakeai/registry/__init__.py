"""The model catalog: models are data (``catalog.toml``) loaded into typed definitions.

>>> from fakeai.registry import ModelRegistry
>>> registry = ModelRegistry.load()
>>> registry.get("gpt-4o").context_window
128000
"""

from .models import (
    CAPABILITY_NAMES,
    JITTER_DISTS,
    PROVIDERS,
    TOKENIZERS,
    Capabilities,
    FieldError,
    LatencyProfile,
    ModelDef,
    Pricing,
)
from .registry import DEFAULT_CHAT_MODEL, MAX_SYNTHESIZED, ModelRegistry

__all__ = [
    "CAPABILITY_NAMES",
    "DEFAULT_CHAT_MODEL",
    "JITTER_DISTS",
    "MAX_SYNTHESIZED",
    "PROVIDERS",
    "TOKENIZERS",
    "Capabilities",
    "FieldError",
    "LatencyProfile",
    "ModelDef",
    "ModelRegistry",
    "Pricing",
]
