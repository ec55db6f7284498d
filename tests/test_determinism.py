"""Determinism: the same seed gives a byte-identical results.json across two runs of every study.

Timestamps and machine details live only in provenance.json; results.json must not change between
runs with the same seed. Every study in ``STUDIES`` is run (tests/test_study_registry.py checks each has its
package and ``run()``).
"""

from __future__ import annotations

import re

import pytest

from decrimkit.studies import STUDIES
from study_runs import quick_run, shared_base

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("studies")]


@pytest.mark.parametrize("name", sorted(STUDIES))
def test_results_json_is_byte_identical_for_the_same_seed(name, tmp_path_factory):
    base = shared_base(tmp_path_factory)
    first = (quick_run(name, 0, base) / "results.json").read_bytes()
    second = (quick_run(name, 1, base) / "results.json").read_bytes()
    assert first == second, f"{name}: results.json differs between two runs with seed 0"
    # no clock time in results.json (it belongs in provenance.json)
    assert not re.search(rb"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}", first), f"{name}: results.json holds a timestamp"
