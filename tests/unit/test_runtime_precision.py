"""Precision resolution and capability decisions on recorded /proc/cpuinfo flag sets.

The machines this project runs on come with different CPUs; these tests decide for each
recorded kind (AVX2 only, AVX-512 without and with BF16, AMX), whatever CPU runs them.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from engine.config import MODEL_PRECISIONS
from models.runtime import (
    PRECISIONS,
    CpuFeatures,
    PrecisionUnsupportedError,
    resolve_precision,
    runtime_description,
)
from tests.capabilities import RECORDED_CPUINFO, machine_capabilities, skip_reason

REPO_ROOT = Path(__file__).resolve().parents[2]
CPU = torch.device("cpu")
AMD_AVX2 = RECORDED_CPUINFO / "amd_epyc_avx2.txt"
INTEL_AVX512 = RECORDED_CPUINFO / "intel_xeon_avx512_no_bf16.txt"
INTEL_AVX512_BF16 = RECORDED_CPUINFO / "intel_xeon_avx512_bf16.txt"
INTEL_AMX = RECORDED_CPUINFO / "intel_xeon_amx.txt"

# recorded file -> (what "auto" resolves to, whether an explicit "bf16" runs)
EXPECTED = {
    AMD_AVX2: ("fp32", False),
    INTEL_AVX512: ("int8", True),  # bf16 emulated by oneDNN: allowed, not chosen; VNNI: int8
    INTEL_AVX512_BF16: ("int8", True),  # AVX512-BF16 without AMX: bf16 measured slower
    INTEL_AMX: ("bf16", True),
}


def recorded(path: Path) -> CpuFeatures:
    return CpuFeatures.read(path)


def test_recorded_flag_sets_parse():
    amd, amx = recorded(AMD_AVX2), recorded(INTEL_AMX)
    assert amd.model_name.startswith("AMD EPYC") and "avx2" in amd.flags
    assert not any(flag.startswith(("avx512", "amx")) for flag in amd.flags)
    assert {"amx_bf16", "amx_tile", "avx512_bf16"} <= amx.flags
    assert "avx2" in amd.relevant_flags() and "fpu" not in amd.relevant_flags()


@pytest.mark.parametrize("path", list(EXPECTED), ids=lambda path: path.stem)
def test_auto_and_explicit_precision_per_cpu(path):
    cpu = recorded(path)
    auto, runs_bf16 = EXPECTED[path]
    assert resolve_precision("auto", CPU, cpu) == auto
    assert resolve_precision("fp32", CPU, cpu) == "fp32"
    if runs_bf16:
        assert resolve_precision("bf16", CPU, cpu) == "bf16"
    else:
        with pytest.raises(PrecisionUnsupportedError) as refused:
            resolve_precision("bf16", CPU, cpu)
        message = str(refused.value)
        assert "AMD EPYC" in message and "avx512bw, avx512vl, avx512dq" in message
        assert "\n" not in message and "MODENGINE_PRECISION" in message


@pytest.mark.parametrize("path", list(EXPECTED), ids=lambda path: path.stem)
def test_explicit_int8_runs_on_every_cpu_and_auto_takes_it_only_with_vnni(path):
    cpu = recorded(path)
    assert resolve_precision("int8", CPU, cpu) == "int8"
    assert cpu.fast_int8 == ("avx512_vnni" in cpu.flags or "avx_vnni" in cpu.flags)
    assert (resolve_precision("auto", CPU, cpu) == "int8") == (cpu.fast_int8 and not cpu.fast_bf16)


def test_int8_is_refused_off_the_cpu():
    with pytest.raises(PrecisionUnsupportedError, match="CPU only"):
        resolve_precision("int8", torch.device("meta"), recorded(INTEL_AMX))


def test_settings_accept_exactly_the_models_precisions():
    assert MODEL_PRECISIONS == PRECISIONS


def test_alternative_bf16_flag_is_enough():
    cpu = CpuFeatures("a CPU with AVX-NE-CONVERT", frozenset({"avx2", "avx_ne_convert"}))
    assert cpu.runs_bf16 and not cpu.fast_bf16
    assert resolve_precision("bf16", CPU, cpu) == "bf16"


def test_unreadable_cpuinfo_means_no_flags(tmp_path):
    cpu = CpuFeatures.read(tmp_path / "missing")
    assert cpu.flags == frozenset() and not cpu.fast_bf16
    assert resolve_precision("auto", CPU, cpu) == "fp32"


@pytest.mark.parametrize("path", list(EXPECTED), ids=lambda path: path.stem)
def test_bf16_tests_run_or_skip_per_cpu(path):
    """What tests marked `bf16` and `gpu` do on each kind of CPU without a GPU."""
    cpu = recorded(path)
    _, runs_bf16 = EXPECTED[path]
    reason = skip_reason("bf16", cpu, has_cuda=False)
    assert (reason is None) == runs_bf16
    if reason:
        assert "avx512bw" in reason and cpu.model_name in reason
    assert skip_reason("bf16", cpu, has_cuda=True, cuda_bf16=True) is None  # a bf16 GPU
    assert skip_reason("gpu", cpu, has_cuda=False) == "needs a CUDA GPU"
    assert skip_reason("gpu", cpu, has_cuda=True) is None


def test_a_recorded_cpuinfo_replaces_this_machines():
    cpu, has_cuda, _ = machine_capabilities({"MODENGINE_TEST_CPUINFO": str(AMD_AVX2)})
    assert cpu == recorded(AMD_AVX2) and not has_cuda


def test_runtime_description_names_cpu_flags_threads_and_precision():
    described = runtime_description("auto", CPU, recorded(AMD_AVX2))
    assert described["cpu_model"].startswith("AMD EPYC") and "avx2" in described["cpu_flags"]
    assert described["precision"] == "fp32" and described["torch_threads"] >= 1
    refused = runtime_description("bf16", CPU, recorded(AMD_AVX2))
    assert refused["precision"] is None and "avx512bw" in refused["precision_error"]
    assert runtime_description("auto", CPU, recorded(INTEL_AMX))["precision"] == "bf16"


def run_python(code: str, **env: str) -> subprocess.CompletedProcess:
    environ = {**os.environ, "PYTHONPATH": str(REPO_ROOT), **env}
    return subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, env=environ,
                          capture_output=True, text=True, timeout=120, check=False)


def test_cli_refuses_bf16_on_an_avx2_cpu_with_one_line(tmp_path):
    """`MODENGINE_PRECISION=bf16 modengine moderate clip.mp4` as on the AMD CPU: the CLI reads
    the recorded AMD flags instead of this machine's, and must refuse before Ray starts."""
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(b"not reached: the precision is refused first")
    code = ("import sys, pathlib, models.runtime as runtime; "
            f"runtime.CPUINFO = pathlib.Path({str(AMD_AVX2)!r}); "
            "from engine.cli import main; "
            f"sys.exit(main(['moderate', {str(clip)!r}, '--data-dir', {str(tmp_path)!r}]))")
    done = run_python(code, MODENGINE_PRECISION="bf16")
    assert done.returncode == 3, done.stderr
    assert done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("modengine: precision 'bf16' cannot run on this CPU (AMD EPYC")
    assert "avx512bw" in lines[0] and "Traceback" not in done.stderr


def test_cli_reports_a_bad_setting_in_one_line(tmp_path):
    code = "import sys; from engine.cli import main; sys.exit(main(['jobs', 'list']))"
    done = run_python(code, MODENGINE_PRECISION="fp16", MODENGINE_DATA_DIR=str(tmp_path))
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.strip() == ("modengine: invalid settings: precision must be one of "
                                   "auto, fp32, bf16, int8")
    done = run_python(code, MODENGINE_MAX_BATCH_SIZE="many")
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1
    assert "MODENGINE_MAX_BATCH_SIZE" in done.stderr


def test_capability_tests_skip_with_the_reason_on_recorded_avx2_flags():
    """Every unit test marked `bf16` or `gpu`, collected as on the AMD CPU (no GPU): all skip,
    each saying what is missing; none runs (a bf16 convolution would raise there)."""
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider",
         "-m", "bf16 or gpu", "tests/unit"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=300, check=False,
        env={**{name: value for name, value in os.environ.items()
                if not name.startswith("MODENGINE_REQUIRE_")},
             "MODENGINE_TEST_CPUINFO": str(AMD_AVX2)})
    assert done.returncode == 0, done.stdout[-3000:]
    summary = done.stdout.strip().splitlines()[-1]
    assert " passed" not in summary and " skipped" in summary, summary
    bf16_skips = [line for line in done.stdout.splitlines() if "needs bf16" in line]
    assert sum(int(line.split("[")[1].split("]")[0]) for line in bf16_skips) >= 3
    assert all("this CPU (AMD EPYC 7B13) lacks avx512bw" in line for line in bf16_skips)
    assert "needs a CUDA GPU" in done.stdout and "MODENGINE_REQUIRE_BF16=1" in done.stdout


def test_a_job_whose_model_cannot_run_fails_with_the_reason():
    from engine.cluster import failure_message, failure_metric_type
    from engine.cluster.model_loader import ModelCannotRunError

    reason = "precision 'bf16' cannot run on this CPU (AMD EPYC 7B13): it lacks avx512bw"
    assert failure_message(ModelCannotRunError(reason)) == (
        "The moderation model is not available: " + reason)
    assert failure_metric_type(ModelCannotRunError(reason)) == "model"
