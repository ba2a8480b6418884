"""Deferred imports for heavy modules that only some routes use (numpy, soundfile, PyAV,
Pillow): the module object exists at once and executes on first attribute access, so
start-up does not pay for media a server may never serve. (The stdlib's LazyLoader recipe.)"""

from __future__ import annotations

import importlib.util
import sys
from types import ModuleType


def lazy_import(name: str) -> ModuleType:
    module = sys.modules.get(name)
    if module is not None:
        return module
    spec = importlib.util.find_spec(name)
    if spec is None or spec.loader is None:
        raise ImportError(f"no module named {name!r}")
    loader = importlib.util.LazyLoader(spec.loader)
    spec.loader = loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    loader.exec_module(module)
    return module
