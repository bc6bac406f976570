"""Hardware capabilities that some tests need, and the decision to run or skip them.

A test declares what it needs with a marker (`@pytest.mark.gpu`, `@pytest.mark.bf16`); the
conftest hook asks `skip_reason` for each, on this machine's CPU flags and CUDA. The decision
is a pure function of (CpuFeatures, CUDA), so tests/unit/test_capabilities.py checks it on
recorded /proc/cpuinfo flag sets of both kinds of CPU these machines come with, not only on
the CPU at hand. `MODENGINE_REQUIRE_<CAPABILITY>=1` (e.g. MODENGINE_REQUIRE_BF16=1 on an
AVX-512 or AMX runner) turns a skip into a failure, so a run on hardware that has the
capability cannot pass by skipping. `MODENGINE_TEST_CPUINFO=FILE` decides on a recorded flag
set instead of this machine's (to see what another CPU would run); it only ever skips more.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from models.runtime import CpuFeatures

RECORDED_CPUINFO = Path(__file__).resolve().parent / "data" / "cpuinfo"


@dataclass(frozen=True)
class Capability:
    marker: str
    description: str


CAPABILITIES = (
    Capability("gpu", "a CUDA GPU"),
    Capability("bf16", "bf16 convolutions (a CUDA GPU with bf16, or a CPU with AVX-512 BW/VL/DQ, "
                       "AVX-NE-CONVERT or AMX)"),
)


def skip_reason(marker: str, cpu: CpuFeatures, has_cuda: bool,
                cuda_bf16: bool = False) -> str | None:
    """Why a test marked `marker` cannot run on this hardware, or None when it can."""
    if marker == "gpu":
        return None if has_cuda else "needs a CUDA GPU"
    if marker == "bf16":
        if cpu.runs_bf16 or (has_cuda and cuda_bf16):
            return None
        return (f"needs bf16: this CPU ({cpu.model_name}) lacks "
                f"{', '.join(cpu.missing_for_bf16())} and there is no CUDA GPU with bf16")
    raise ValueError(f"unknown capability marker {marker!r}")


def require_switch(marker: str) -> str:
    return f"MODENGINE_REQUIRE_{marker.upper()}"


def machine_capabilities(environ=os.environ) -> tuple[CpuFeatures, bool, bool]:
    """(cpu, has_cuda, cuda_bf16) of this machine, or of MODENGINE_TEST_CPUINFO's flag set
    with no GPU."""
    recorded = environ.get("MODENGINE_TEST_CPUINFO")
    if recorded:
        return CpuFeatures.read(Path(recorded)), False, False
    try:
        import torch

        has_cuda = torch.cuda.is_available()
        cuda_bf16 = has_cuda and torch.cuda.is_bf16_supported()
    except Exception:  # noqa: BLE001 - no usable torch means no GPU
        has_cuda, cuda_bf16 = False, False
    return CpuFeatures.read(), has_cuda, cuda_bf16
