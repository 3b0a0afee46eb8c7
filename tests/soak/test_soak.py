"""The soak in the test suite: 1,000 tasks on 5 s tokens for 10 s, asserting counts only.

``benchmarks/soak.py`` is the soak of the benchmarks (60 s, 2,000 tasks); this test runs the
same :func:`soak` for 10 s with 1,000 tasks against an emulator of its own, which runs in this
process: half the load leaves the loop room to refresh within a 5 s token's 1.25 s window, so
"no caller waited" is a property of the code here, not of how busy the machine is. It
asserts counts, never durations:

* no call failed;
* the emulator received exactly as many token requests as the provider made fetches, key by
  key: one request per key per rollover, no duplicate, no retry;
* every refresh was ahead of time: no token served was fetched while callers waited;
* each key's rollovers lie within the bounds its refresh window allows for the time the key
  was in use: a 5 s token is refreshed no earlier than 2.5 s after its fetch started
  (``RefreshPolicy.refresh_fraction``) and before callers would wait at 3.75 s (``5 -
  margin_for(5)``), so a key in use for ``E`` seconds rolled over between ``floor(E / 3.75)``
  and ``floor(E / 2.5)`` times;
* memory does not grow: the number of live objects of aioentra's classes (not counting the
  emulator's, nor the suite's secret guard's, which keeps every log record of the test),
  counted after a ``gc.collect()`` whenever no fetch is in flight, is no larger at the end
  than at the first sample, taken after the first rollovers.

It carries the ``soak`` marker and is part of the default run while it stays about 10 s;
``pytest -m "not soak"`` leaves it out.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

from aioentra.emulator import Emulator

pytestmark = [pytest.mark.anyio, pytest.mark.soak]

SOAK = Path(__file__).resolve().parents[2] / "benchmarks" / "soak.py"


def _soak_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("aioentra_benchmarks_soak", SOAK)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


async def test_soak_counts(aioentra_private_emulator: Emulator) -> None:
    soak = _soak_module()
    report = await soak.soak(
        aioentra_private_emulator, seconds=10.0, tasks=1000, keys=4, lifetime=5
    )
    assert report.calls > report.tasks
    assert report.failed_calls == 0, report.failure_kinds
    assert report.token_requests == report.fetches
    assert sum(key.failures for key in report.keys) == 0
    assert report.late_refreshes == 0
    assert (report.opens, report.usable) == (2.5, 3.75)
    for key in report.keys:
        assert key.low <= key.rollovers <= key.high, key
        assert key.rollovers >= 1, key
    assert len(report.samples) >= 2
    assert report.object_growth <= 0, report.samples
    assert report.problems() == []
