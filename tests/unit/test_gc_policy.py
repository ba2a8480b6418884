"""Once warm, the server freezes what start-up made and collects the young generation far
less often than Python's default (fakeai.app._warm; docs/benchmarks.md, "The cyclic GC's
thresholds"). Checked in a fresh interpreter: the policy is process-wide."""

from __future__ import annotations

import json
import subprocess
import sys

CHECK = """
import gc, json
from fakeai import app
before = gc.get_threshold()
app._warm([])
print(json.dumps([before, gc.get_threshold(), app._GC_THRESHOLDS, gc.get_freeze_count() > 0]))
"""


def test_warming_freezes_and_raises_the_young_threshold():
    out = subprocess.run([sys.executable, "-c", CHECK], capture_output=True, text=True, check=True).stdout
    before, after, wanted, frozen = json.loads(out)
    assert before == [700, 10, 10]
    assert after == wanted and wanted[0] >= 10_000
    assert frozen
