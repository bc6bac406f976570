"""bench_model's ratios: each cell against fp32, and the alternating side-by-side timing."""

from __future__ import annotations

import time

import numpy as np

from benchmarks.bench_model import STATISTICS, add_ratios_to_fp32, alternating_ms_per_frame


class SleepingClassifierDouble:
    """A test double whose classify() takes a known wall time per call and no CPU."""

    def __init__(self, seconds: float) -> None:
        self.seconds, self.calls = seconds, 0

    def classify(self, frames: np.ndarray) -> None:
        self.calls += 1
        time.sleep(self.seconds)


def test_each_cell_gets_its_ratio_to_fp32_at_the_same_batch():
    cells = [{"precision": "fp32", "batch_size": 16, "frames_per_s": 20.0},
             {"precision": "int8", "batch_size": 16, "frames_per_s": 35.0},
             {"precision": "fp32", "batch_size": 1, "frames_per_s": 10.0},
             {"precision": "int8", "batch_size": 1, "frames_per_s": 12.0}]
    add_ratios_to_fp32(cells)
    assert [cell["vs_fp32"] for cell in cells] == [1.0, 1.75, 1.0, 1.2]


def test_alternating_rounds_time_every_side_each_round():
    fast, slow = SleepingClassifierDouble(0.002), SleepingClassifierDouble(0.008)
    frames = np.zeros((2, 224, 224, 3), np.uint8)
    ms = alternating_ms_per_frame({"fast": fast, "slow": slow}, frames, rounds=3)
    assert fast.calls == slow.calls == 4  # one warm-up, then one call per round
    assert set(ms["fast"]) == set(STATISTICS)
    assert ms["slow"]["best"] > 2 * ms["fast"]["best"] >= 2 * 1.0  # 1 ms per frame at least
    assert ms["fast"]["cpu_best"] < ms["fast"]["best"]  # sleeping costs no CPU
