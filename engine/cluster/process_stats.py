"""Per-process facts that workers report back (for benchmarks and logs)."""

from __future__ import annotations

from pathlib import Path


def peak_rss_mb() -> float:
    """This process's high-water resident memory (VmHWM), in MiB; 0 where /proc is missing.

    VmHWM belongs to the process's own address space, unlike ru_maxrss, which Linux carries
    over from the parent across fork and exec.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0
