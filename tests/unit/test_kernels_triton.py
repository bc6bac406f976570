"""The Triton YUV kernel against its torch reference, on every format x matrix x range x output.

The kernel runs under Triton's CPU interpreter in a *subprocess* started with
TRITON_INTERPRET=1: triton reads that variable when a kernel is decorated, so setting it
in this process would depend on import order and would also turn every other Triton
kernel of the test session (torch.compile's on a GPU node) into an interpreted one.
The subprocess runs this very module as a script and prints one JSON line of results.

The `triton_device` tests (tests/conftest.py) run the kernel through the dispatcher on CUDA
where there is a GPU, and otherwise in this process under the interpreter on CPU tensors,
with and without antialiasing, plus P010 and a model-sized shrink of a padded batch.
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from kernels.yuv_reference import yuv_to_rgb_resized_reference

REPO_ROOT = Path(__file__).resolve().parents[2]
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# (batch, in_h, in_w, out_h, out_w, padded strides): odd sizes, up- and down-scaling, no resize.
GEOMETRIES = [
    (2, 23, 37, 23, 37, True),
    (3, 74, 130, 36, 64, True),
    (1, 48, 64, 61, 83, False),
    (2, 23, 37, 10, 17, False),
    (2, 48, 64, 24, 32, True),
    (1, 1, 1, 3, 2, False),
    (2, 5, 7, 5, 7, True),
    (1, 74, 130, 32, 32, False),
]
COMBOS = list(
    itertools.product(("nv12", "yuv420p"), ("bt601", "bt709"), ("limited", "full"), (False, True))
)


def case_id(index: int) -> str:
    fmt, matrix, colour_range, normalise = COMBOS[index]
    batch, in_h, in_w, out_h, out_w, padded = GEOMETRIES[index % len(GEOMETRIES)]
    out = "norm" if normalise else "u8"
    pad = "-pad" if padded else ""
    return f"{fmt}-{matrix}-{colour_range}-{out}-{batch}x{in_w}x{in_h}to{out_w}x{out_h}{pad}"


def make_planes(index: int, device: str = "cpu"):
    """Random planes for case `index`; padded cases are views into larger buffers.

    Random noise is the hardest input for agreement (every tap differs), and padded views
    carry a storage offset, row padding and batch padding like FFmpeg frames do. The NV12
    chroma alternates between the (N, Hc, 2*Wc) and (N, Hc, Wc, 2) spellings.
    """
    fmt = COMBOS[index][0]
    batch, in_h, in_w, _, _, padded = GEOMETRIES[index % len(GEOMETRIES)]
    generator = torch.Generator().manual_seed(1000 + index)
    chroma_h, chroma_w = (in_h + 1) // 2, (in_w + 1) // 2

    def plane(rows: int, cols: int) -> torch.Tensor:
        if not padded:
            return torch.randint(
                0, 256, (batch, rows, cols), dtype=torch.uint8, generator=generator
            )
        big = torch.randint(
            0, 256, (batch + 1, rows + 3, cols + 29), dtype=torch.uint8, generator=generator
        )
        return big[1:, 2 : rows + 2, 5 : cols + 5]

    y = plane(in_h, in_w)
    if fmt == "nv12":
        uv = plane(chroma_h, 2 * chroma_w)
        planes = (y, uv if index % 4 < 2 else uv.unflatten(-1, (chroma_w, 2)))
    else:
        planes = (y, plane(chroma_h, chroma_w), plane(chroma_h, chroma_w))
    return tuple(p.to(device) for p in planes)


def case_arguments(index: int) -> dict:
    fmt, matrix, colour_range, normalise = COMBOS[index]
    _, _, _, out_h, out_w, _ = GEOMETRIES[index % len(GEOMETRIES)]
    arguments = {
        "fmt": fmt,
        "matrix": matrix,
        "colour_range": colour_range,
        "out_size": (out_h, out_w),
    }
    if normalise:
        arguments.update(mean=IMAGENET_MEAN, std=IMAGENET_STD)
    return arguments


def level_difference(
    kernel_out: torch.Tensor, reference_out: torch.Tensor, normalised: bool
) -> float:
    """Largest difference in 0..255 levels (normalised outputs are scaled back by std*255)."""
    if kernel_out.shape != reference_out.shape or kernel_out.dtype != reference_out.dtype:
        return float("inf")
    diff = (kernel_out.cpu().double() - reference_out.cpu().double()).abs()
    if normalised:
        diff = diff * torch.tensor(IMAGENET_STD, dtype=torch.float64)[None, :, None, None] * 255.0
    return float(diff.max())


def _run_interpreter_cases() -> dict:
    """Subprocess body: run every case through the interpreted kernel, report level errors."""
    from kernels.yuv_triton import kernel_is_interpreted, yuv_to_model_input_triton

    results = {"_interpreted": kernel_is_interpreted()}
    for index in range(len(COMBOS)):
        planes, arguments = make_planes(index), case_arguments(index)
        kernel_out = yuv_to_model_input_triton(planes, **arguments)
        reference_out = yuv_to_rgb_resized_reference(planes, **arguments)
        results[case_id(index)] = {
            "level_diff": level_difference(kernel_out, reference_out, "mean" in arguments),
            "device": str(kernel_out.device),
        }
    return results


@pytest.fixture(scope="module")
def interpreter_results() -> dict:
    env = dict(os.environ, TRITON_INTERPRET="1", PYTHONPATH=str(REPO_ROOT))
    completed = subprocess.run(
        [sys.executable, "-m", "tests.unit.test_kernels_triton"],
        check=False,
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert completed.returncode == 0, completed.stderr[-4000:]
    return json.loads(completed.stdout.strip().splitlines()[-1])


def test_triton_interpret_env_is_honoured(interpreter_results):
    assert interpreter_results["_interpreted"] is True


@pytest.mark.parametrize("index", range(len(COMBOS)), ids=[case_id(i) for i in range(len(COMBOS))])
def test_interpreted_kernel_matches_reference_within_one_level(interpreter_results, index):
    result = interpreter_results[case_id(index)]
    assert result["device"] == "cpu"
    # uint8: a rounding tie may flip by one level; float: only float32 noise is allowed.
    assert result["level_diff"] <= (0.01 if COMBOS[index][3] else 1.0)


@pytest.mark.parametrize("antialias", [False, True], ids=["bilinear", "antialias"])
@pytest.mark.parametrize("index", range(len(COMBOS)), ids=[case_id(i) for i in range(len(COMBOS))])
def test_kernel_on_its_device_matches_reference(index, antialias, triton_device):
    """Compiled on a GPU node, interpreted on CPU tensors elsewhere: the dispatcher's path."""
    from kernels.yuv import yuv_to_model_input

    arguments = case_arguments(index)
    kernel_out = yuv_to_model_input(
        make_planes(index, triton_device), **arguments, antialias=antialias
    )
    reference_out = yuv_to_rgb_resized_reference(
        make_planes(index), **arguments, antialias=antialias
    )
    assert kernel_out.device.type == triton_device
    assert level_difference(kernel_out, reference_out, "mean" in arguments) <= (
        0.01 if "mean" in arguments else 1.0
    )


@pytest.mark.parametrize("antialias", [False, True], ids=["bilinear", "antialias"])
def test_kernel_reads_p010_like_the_reference(antialias, triton_device):
    """P010: 10-bit samples in the high bits of uint16, NV12's layout (NVDEC's 10-bit output)."""
    from kernels.yuv import yuv_to_model_input

    generator = torch.Generator().manual_seed(11)
    y10 = torch.randint(0, 1024, (2, 48, 70), generator=generator)
    uv10 = torch.randint(0, 1024, (2, 24, 35, 2), generator=generator)
    y, uv = ((y10 << 6).to(torch.uint16), (uv10 << 6).to(torch.uint16))
    arguments = {"fmt": "p010", "matrix": "bt2020", "colour_range": "limited",
                 "out_size": (20, 30), "antialias": antialias}
    reference_out = yuv_to_rgb_resized_reference((y, uv), **arguments)
    kernel_out = yuv_to_model_input((y.to(triton_device), uv.to(triton_device)), **arguments)
    assert level_difference(kernel_out, reference_out, False) <= 1.0
    # the same picture cut to 8 bits: the lost 0.75 of a level per sample, times the matrix
    # gain on random chroma, stays within 3 levels
    eight_bit = yuv_to_rgb_resized_reference(
        ((y10 >> 2).to(torch.uint8), (uv10 >> 2).to(torch.uint8)), **{**arguments, "fmt": "nv12"}
    )
    assert level_difference(eight_bit, reference_out, False) <= 3.0


@pytest.mark.parametrize("fmt", ["nv12", "yuv420p"])
def test_kernel_on_a_padded_batch_shrunk_to_model_size(fmt, triton_device):
    """1080p batch of 8 on a GPU; a 270p batch of 2 under the interpreter (kept fast)."""
    batch, rows, cols = (8, 1080, 1920) if triton_device == "cuda" else (2, 270, 480)
    generator = torch.Generator().manual_seed(7)
    y = torch.randint(0, 256, (batch, rows, cols + 128), dtype=torch.uint8,
                      generator=generator)[..., :cols]
    if fmt == "nv12":
        planes = (y, torch.randint(0, 256, (batch, rows // 2, cols), dtype=torch.uint8,
                                   generator=generator))
    else:
        planes = (y, *(torch.randint(0, 256, (batch, rows // 2, cols // 2), dtype=torch.uint8,
                                     generator=generator) for _ in "uv"))
    arguments = {"fmt": fmt, "matrix": "bt709", "colour_range": "limited",
                 "out_size": (224, 224), "antialias": True}
    reference_out = yuv_to_rgb_resized_reference(planes, **arguments)
    from kernels.yuv import yuv_to_model_input

    device_out = yuv_to_model_input(tuple(p.to(triton_device) for p in planes), **arguments)
    assert level_difference(device_out, reference_out, False) <= 1.0


if __name__ == "__main__":
    print(json.dumps(_run_interpreter_cases()))
