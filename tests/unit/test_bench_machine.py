"""The machine-wide busy share that bounds what running two jobs together can gain."""

from __future__ import annotations

import time

from benchmarks.machine import busy_fraction, cpu_jiffies


def test_a_spinning_core_shows_as_busy_and_an_empty_interval_as_unknown():
    before = cpu_jiffies()
    deadline = time.perf_counter() + 0.3
    while time.perf_counter() < deadline:  # one core busy for the whole interval
        pass
    after = cpu_jiffies()
    share = busy_fraction(before, after)
    assert share is not None and 0.0 < share <= 1.0
    assert busy_fraction(after, after) is None


def test_busy_fraction_is_busy_over_total_jiffies():
    assert busy_fraction((100, 1000), (250, 1200)) == 0.75
