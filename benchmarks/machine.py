"""What every benchmark records beside its figures: the machine they were measured on.

The machines of one kind differ (an Intel CPU with AVX-512/AMX, an AMD EPYC with AVX2 only),
and the model's speed depends on it and on the precision actually used, so each JSON carries
the CPU model, its speed-relevant flags, the core and thread counts and the resolved precision.
"""

from __future__ import annotations

import os
import platform

import torch

from models.runtime import runtime_description


def machine_record(precision: str = "auto") -> dict:
    """The CPU, flags, threads, device and resolved precision (for `precision` requested)."""
    return {
        **runtime_description(precision),
        "cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "cuda": torch.cuda.is_available(),
    }


def machine_line(machine: dict) -> str:
    """One line for a table caption: 'CPU (flags), N cores, precision P'."""
    flags = [flag for flag in machine.get("cpu_flags", ())
             if flag in ("avx2", "avx512f", "avx512_bf16", "amx_bf16")]
    precision = machine.get("precision") or "n/a"
    return (f"{machine.get('cpu_model', 'unknown CPU')} ({', '.join(flags) or 'no AVX flags'}), "
            f"{machine.get('cpus', '?')} cores, {machine.get('torch_threads', '?')} torch threads, "
            f"precision {precision}")


def cpu_jiffies() -> tuple[int, int]:
    """(busy, total) jiffies of all cores from /proc/stat, (0, 0) where there is none: the
    difference over an interval is how busy the whole machine was, every process counted."""
    try:
        with open("/proc/stat", encoding="ascii") as stat:
            fields = [int(value) for value in stat.readline().split()[1:]]
    except (OSError, ValueError):
        return 0, 0
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return sum(fields) - idle, sum(fields)


def busy_fraction(before: tuple[int, int], after: tuple[int, int]) -> float | None:
    """Share of all cores' time that was busy between two cpu_jiffies() readings."""
    total = after[1] - before[1]
    return round((after[0] - before[0]) / total, 3) if total > 0 else None
