"""The frames int8 quantisation is calibrated on: generated, deterministic, no files.

Static int8 quantisation fixes each activation's range from what a calibration set produces, so
the set must span what the model will see: smooth photographic gradients, flat-colour drawings
with dark outlines, skin-toned regions, fine texture and pure noise (the benchmark's frames).
Everything is drawn from a seeded generator, so every machine calibrates on the same pixels and
the cache key needs only CALIBRATION_VERSION. Nothing here knows about networks or ONNX.
"""

from __future__ import annotations

import numpy as np

CALIBRATION_VERSION = "1"  # bump when the frames change: cached int8 graphs are rebuilt
SIZE = 224
SKIN_TONES = ((224, 172, 140), (198, 134, 100), (141, 85, 54), (255, 219, 188), (92, 56, 36))


def calibration_frames(count: int = 32, seed: int = 0) -> np.ndarray:
    """uint8 (count, 224, 224, 3) RGB frames, a fixed mix of the five kinds above."""
    rng = np.random.default_rng(seed)
    makers = (_smooth_scene, _flat_drawing, _skin_scene, _texture, _noise)
    return np.stack([makers[index % len(makers)](rng) for index in range(count)])


def _grid() -> tuple[np.ndarray, np.ndarray]:
    axis = np.linspace(0.0, 1.0, SIZE, dtype=np.float32)
    return np.meshgrid(axis, axis)


def _to_uint8(image: np.ndarray) -> np.ndarray:
    return np.clip(image, 0, 255).round().astype(np.uint8)


def _smooth_scene(rng: np.random.Generator) -> np.ndarray:
    """A sum of a few low-frequency colour waves: the statistics of a defocused photograph."""
    x, y = _grid()
    image = np.zeros((SIZE, SIZE, 3), np.float32) + rng.uniform(40, 200, 3)
    for _ in range(4):
        fx, fy, phase = rng.uniform(0.5, 4.0), rng.uniform(0.5, 4.0), rng.uniform(0, 6.3)
        wave = np.sin(2 * np.pi * (fx * x + fy * y) + phase)
        image += wave[..., None] * rng.uniform(-60, 60, 3)
    return _to_uint8(image)


def _flat_drawing(rng: np.random.Generator) -> np.ndarray:
    """Flat-colour discs and boxes with black outlines on a plain ground: an illustration."""
    x, y = _grid()
    image = np.ones((SIZE, SIZE, 3), np.float32) * rng.uniform(150, 255, 3)
    for _ in range(5):
        cx, cy, radius = rng.uniform(0.1, 0.9), rng.uniform(0.1, 0.9), rng.uniform(0.05, 0.3)
        distance = np.hypot(x - cx, y - cy) if rng.random() < 0.5 else np.maximum(
            np.abs(x - cx), np.abs(y - cy))
        image[distance < radius] = rng.uniform(0, 255, 3)
        image[np.abs(distance - radius) < 0.012] = 10.0
    return _to_uint8(image)


def _skin_scene(rng: np.random.Generator) -> np.ndarray:
    """A large skin-toned ellipse with shading over a smooth background."""
    x, y = _grid()
    image = _smooth_scene(rng).astype(np.float32)
    cx, cy = rng.uniform(0.3, 0.7, 2)
    rx, ry = rng.uniform(0.15, 0.4, 2)
    inside = ((x - cx) / rx) ** 2 + ((y - cy) / ry) ** 2
    tone = np.array(SKIN_TONES[rng.integers(len(SKIN_TONES))], np.float32)
    shade = (1.15 - 0.4 * np.clip(inside, 0, 1))[..., None]
    return _to_uint8(np.where((inside < 1)[..., None], tone * shade, image))


def _texture(rng: np.random.Generator) -> np.ndarray:
    """Noise smoothed at a random scale (foliage, fabric, gravel), in a random tint."""
    scale = int(rng.choice([2, 4, 8, 16]))
    coarse = rng.uniform(0, 1, (SIZE // scale + 1, SIZE // scale + 1, 1)).astype(np.float32)
    fine = np.repeat(np.repeat(coarse, scale, axis=0), scale, axis=1)[:SIZE, :SIZE]
    return _to_uint8(fine * rng.uniform(80, 255, 3) + rng.uniform(0, 60, 3))


def _noise(rng: np.random.Generator) -> np.ndarray:
    """Uniform noise over 0..255: what benchmarks/bench_model.py times the model on."""
    return rng.integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8)
