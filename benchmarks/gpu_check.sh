#!/usr/bin/env bash
# One prepared run for a borrowed GPU machine (DESIGN.md section 8): Python 3.12 with its own
# torch (>= 2.9) and Triton, no package registry, at most 64 MiB carried, a fresh machine each
# start, about 15 minutes in all. Carry only the working tree plus, if PyAV is not installed
# there, a PyAV wheel for cp312 in wheels/ (e.g. `pip download av==18.1.0 --only-binary=:all:
# --python-version 3.12 -d wheels/` on a machine with a registry; about 40 MB).
# Backbones are random-initialised (no weights travel): figures are throughput, not accuracy.
# Writes benchmarks/results/gpu.json; stops measuring after GPU_CHECK_BUDGET_S (default 360).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
export GPU_CHECK_BUDGET_S=${GPU_CHECK_BUDGET_S:-360}
if ! "$PY" -c "import av" 2>/dev/null; then
    "$PY" -m pip install --no-index --find-links wheels/ --target .gpu_site av
    export PYTHONPATH="$PWD/.gpu_site:${PYTHONPATH:-}"
fi
export PYTHONPATH="$PWD:${PYTHONPATH:-}"
mkdir -p benchmarks/results
# The GPU tests: the kernel compiled on CUDA, NVDEC + kernel against software + swscale.
MODENGINE_REQUIRE_GPU=1 timeout 150 "$PY" -m pytest -q -p no:cacheprovider \
    tests/unit/test_kernels_triton.py tests/unit/test_video_device_scaling.py \
    tests/unit/test_video_hwdecode.py 2>&1 | tail -25 | tee benchmarks/results/gpu_tests.txt || true
timeout "$GPU_CHECK_BUDGET_S" "$PY" -m benchmarks.bench_gpu --out benchmarks/results/gpu.json
