"""Deferred imports for heavy modules that only some routes use (numpy, soundfile, PyAV,
Pillow): the handle exists at once and the module is imported on first attribute access,
so start-up does not pay for media a server may never serve.

Thread-safe, unlike 3.11's ``importlib.util.LazyLoader``: the first access from several
executor threads at once goes through the import system's own per-module lock, so no
thread ever sees a half-executed module.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from types import ModuleType


class _Deferred(ModuleType):
    _real: ModuleType | None = None

    def __getattr__(self, attr: str):
        # only reached for names the handle itself lacks, i.e. all of the module's own
        real = self._real
        if real is None:
            real = self._real = importlib.import_module(self.__name__)  # returns only once loaded
        return getattr(real, attr)


def lazy_import(name: str) -> ModuleType:
    module = sys.modules.get(name)
    if module is not None:
        return module
    if importlib.util.find_spec(name) is None:
        raise ImportError(f"no module named {name!r}")
    return _Deferred(name)
