"""``lazy_import``: deferred until first use, and safe when threads race to that first use."""

from __future__ import annotations

import sys
import threading

import pytest

from fakeai.lazy import lazy_import


def test_first_use_from_many_threads_sees_a_whole_module(tmp_path, monkeypatch):
    (tmp_path / "slow_mod_for_lazy.py").write_text(
        "import time\nEARLY = 1\ntime.sleep(0.3)  # a long module body: racing threads arrive mid-import\n"
        "def late():\n    return 42\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    mod = lazy_import("slow_mod_for_lazy")
    assert "slow_mod_for_lazy" not in sys.modules  # nothing ran yet
    results, errors = [], []

    def use():
        try:
            results.append(mod.late())
        except Exception as e:  # noqa: BLE001 - the failure under test
            errors.append(e)

    threads = [threading.Thread(target=use) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and results == [42] * 8
    assert lazy_import("slow_mod_for_lazy") is sys.modules["slow_mod_for_lazy"]


def test_unknown_module_fails_at_once():
    with pytest.raises(ImportError):
        lazy_import("fakeai.no_such_module")
