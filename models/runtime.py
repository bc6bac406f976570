"""Choosing where and in what precision the classifier runs, from what the hardware can do.

Machines of one kind come with different CPUs (an Intel CPU with AVX-512 and AMX, an AMD EPYC
with AVX2 only), so nothing here assumes the CPU: it is read from /proc/cpuinfo flags into a
`CpuFeatures`, and every decision is a pure function of that value, so it can be tested on
recorded flag sets as well as on the machine at hand.

- "auto" precision means bfloat16 where the hardware makes it faster than fp32: CUDA GPUs that
  support it, and CPUs with AMX (AMX-BF16 tiles: the default model measured 3x its fp32 speed,
  at about 0.5% relative error); fp32 everywhere else. AVX512-BF16 alone is not enough: on an
  Intel Xeon with AVX512-BF16 and no AMX the default model ran 26 frames/s in bf16 against 34
  in fp32 (batch 16, 2 cores, 2026-12-01), so "auto" stays fp32 there.
- "auto" is "int8" on the other CPUs with VNNI (AVX512-VNNI or AVX-VNNI: int8 dot products in
  one instruction): the CNN backbones run as statically quantised onnxruntime graphs
  (models/onnx_int8.py). Where VNNI is missing (an AVX2-only AMD EPYC) "auto" stays fp32; an
  explicit "int8" still runs there (onnxruntime emulates the dot products), only slower. This
  decision reads the flags only; a worker without onnxruntime falls back to fp32 at load and
  logs why (models/default.py).
- An explicit "bf16" is honoured wherever it can run, even emulated: oneDNN's bf16 convolutions
  need AVX512-BW/VL/DQ or AVX-NE-CONVERT. Where it cannot run (an AVX2-only CPU), it is refused
  with PrecisionUnsupportedError naming the missing features, before any model is built,
  instead of a oneDNN RuntimeError from inside a job.
"""

from __future__ import annotations

import platform
from dataclasses import dataclass
from pathlib import Path

import torch

INT8 = "int8"
PRECISIONS = ("auto", "fp32", "bf16", INT8)
CPUINFO = Path("/proc/cpuinfo")
FAST_BF16_FLAGS = ("amx_bf16",)
FAST_INT8_FLAGS = ("avx512_vnni", "avx_vnni")
# What torch's oneDNN asks of a CPU before it runs a bf16 convolution (its error message says
# "needs the cpu support avx_ne_convert or avx512bw, avx512vl and avx512dq").
ONEDNN_BF16_AVX512_FLAGS = ("avx512bw", "avx512vl", "avx512dq")
ONEDNN_BF16_ALTERNATIVE_FLAG = "avx_ne_convert"
# The flags recorded next to every benchmark figure: the ones that change the model's speed.
RELEVANT_FLAG_PREFIXES = ("avx2", "avx512", "amx", "avx_vnni", "avx_ne_convert", "fma")


class PrecisionUnsupportedError(ValueError):
    """The requested precision cannot run on this device; the message says what is missing."""


@dataclass(frozen=True)
class CpuFeatures:
    """A CPU's model name and instruction-set flags, as /proc/cpuinfo lists them."""

    model_name: str
    flags: frozenset[str]

    @classmethod
    def from_cpuinfo_text(cls, text: str) -> CpuFeatures:
        """Parse the first processor's "model name" and "flags" lines (x86 Linux format)."""
        model_name, flags = "", frozenset()
        for line in text.splitlines():
            key, _, value = line.partition(":")
            key = key.strip()
            if key == "model name" and not model_name:
                model_name = value.strip()
            elif key == "flags" and not flags:
                flags = frozenset(value.split())
        return cls(model_name or platform.processor() or "unknown", flags)

    @classmethod
    def read(cls, cpuinfo: Path | None = None) -> CpuFeatures:
        """This machine's CPU (from CPUINFO, looked up at call time so a test can point it at a
        recorded file); no flags where it is unreadable (not Linux)."""
        cpuinfo = CPUINFO if cpuinfo is None else cpuinfo
        try:
            return cls.from_cpuinfo_text(cpuinfo.read_text(encoding="ascii", errors="ignore"))
        except OSError:
            return cls(platform.processor() or "unknown", frozenset())

    @property
    def fast_bf16(self) -> bool:
        """bf16 faster than fp32 here (AMX-BF16 tiles): "auto" picks bf16."""
        return any(flag in self.flags for flag in FAST_BF16_FLAGS)

    @property
    def fast_int8(self) -> bool:
        """int8 dot products in one instruction (VNNI): "auto" picks int8 without fast bf16."""
        return any(flag in self.flags for flag in FAST_INT8_FLAGS)

    def missing_for_bf16(self) -> tuple[str, ...]:
        """The flags this CPU lacks for bf16 convolutions at all; () when it can run them."""
        if ONEDNN_BF16_ALTERNATIVE_FLAG in self.flags:
            return ()
        return tuple(flag for flag in ONEDNN_BF16_AVX512_FLAGS if flag not in self.flags)

    @property
    def runs_bf16(self) -> bool:
        """bf16 convolutions run here (natively, or emulated on AVX-512)."""
        return not self.missing_for_bf16()

    def relevant_flags(self) -> list[str]:
        """The speed-relevant flags, sorted: what a benchmark records beside its figures."""
        return sorted(flag for flag in self.flags if flag.startswith(RELEVANT_FLAG_PREFIXES))


def resolve_device(device: str | None) -> torch.device:
    """None picks the first CUDA device when there is one, else the CPU."""
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    resolved = torch.device(device)
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} requested but CUDA is not available")
    return resolved


def resolve_precision(precision: str, device: torch.device,
                      cpu: CpuFeatures | None = None) -> str:
    """'auto' | 'fp32' | 'bf16' | 'int8' -> 'fp32', 'bf16' or 'int8' for `device`.

    cpu: the CPU to decide for (default: this machine's); only consulted on CPU devices.
    Raises PrecisionUnsupportedError for an explicit 'bf16' the device cannot run or an
    'int8' off the CPU, and ValueError for an unknown precision.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    if precision == INT8 and device.type != "cpu":
        raise PrecisionUnsupportedError(
            f"precision 'int8' runs on the CPU only (onnxruntime's CPU kernels), not on "
            f"{device}; set precision to 'auto', 'fp32' or 'bf16' (MODENGINE_PRECISION)")
    if device.type == "cuda":
        return _resolve_on_cuda(precision, device)
    if device.type != "cpu":
        return "fp32" if precision == "auto" else precision
    cpu = cpu or CpuFeatures.read()
    if precision == "auto":
        return "bf16" if cpu.fast_bf16 else INT8 if cpu.fast_int8 else "fp32"
    if precision == "bf16" and not cpu.runs_bf16:
        raise PrecisionUnsupportedError(
            f"precision 'bf16' cannot run on this CPU ({cpu.model_name}): it lacks "
            f"{', '.join(cpu.missing_for_bf16())} (or {ONEDNN_BF16_ALTERNATIVE_FLAG}); "
            "set precision to 'auto' or 'fp32' (MODENGINE_PRECISION)"
        )
    return precision


def _resolve_on_cuda(precision: str, device: torch.device) -> str:
    supported = torch.cuda.is_bf16_supported()
    if precision == "auto":
        return "bf16" if supported else "fp32"
    if precision == "bf16" and not supported:
        raise PrecisionUnsupportedError(
            f"precision 'bf16' cannot run on {torch.cuda.get_device_name(device)}: the GPU has "
            "no bf16 support; set precision to 'auto' or 'fp32' (MODENGINE_PRECISION)"
        )
    return precision


def runtime_description(precision: str, device: torch.device | None = None,
                        cpu: CpuFeatures | None = None) -> dict:
    """What a benchmark records beside each figure: CPU model, relevant flags, threads,
    device, and the precision actually used (the resolved one, not the request)."""
    device = device or resolve_device(None)
    cpu = cpu or CpuFeatures.read()
    described = {
        "cpu_model": cpu.model_name,
        "cpu_flags": cpu.relevant_flags(),
        "cpu_fast_bf16": cpu.fast_bf16,
        "cpu_fast_int8": cpu.fast_int8,
        "torch_threads": torch.get_num_threads(),
        "device": str(device),
        "precision_requested": precision,
    }
    try:
        described["precision"] = resolve_precision(precision, device, cpu)
    except PrecisionUnsupportedError as error:
        described["precision"] = None
        described["precision_error"] = str(error)
    if device.type == "cuda":
        described["gpu"] = torch.cuda.get_device_name(device)
    return described
