"""Benign real photographs, made into a short H.264 video, raise no level-1 label at 50."""

from __future__ import annotations

from fractions import Fraction

import av
import numpy as np
import pytest
import skimage.data
import skimage.transform

from models.default import load_default_classifier

pytestmark = [pytest.mark.integration, pytest.mark.slow]

PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "hubble_deep_field",
          "immunohistochemistry", "retina", "colorwheel")
FPS = 10
WIDTH, HEIGHT = 640, 360
MIN_CONFIDENCE = 50.0
REPORT_THRESHOLDS = (1.0, 5.0, 10.0, 25.0)


def photo_frame(name: str) -> np.ndarray:
    image = getattr(skimage.data, name)()[..., :3]
    resized = skimage.transform.resize(image, (HEIGHT, WIDTH), anti_aliasing=True)
    return (resized * 255).round().astype(np.uint8)


def write_video(path, photos: list[np.ndarray]) -> None:
    """One second per photograph, H.264 in MP4."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        for photo in photos:
            for _ in range(FPS):
                frame = av.VideoFrame.from_ndarray(photo, format="rgb24")
                for packet in stream.encode(frame):
                    container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def sample_one_per_second(path, size=(224, 224)) -> list[np.ndarray]:
    """The middle frame of each second, scaled to the model's input in the decoder."""
    samples = []
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        for frame in container.decode(stream):
            seconds = frame.pts * stream.time_base
            if seconds - int(seconds) == Fraction(FPS // 2, FPS):
                samples.append(frame.to_ndarray(format="rgb24", width=size[1], height=size[0]))
    return samples


def test_benign_photographs_raise_no_top_level_label(tmp_path, tmp_path_factory):
    video = tmp_path / "benign.mp4"
    write_video(video, [photo_frame(name) for name in PHOTOS])
    frames = np.stack(sample_one_per_second(video))
    assert frames.shape == (len(PHOTOS), 224, 224, 3)

    classifier = load_default_classifier(tmp_path_factory.getbasetemp() / "model-weight-cache")
    scores = classifier.classify(frames)
    taxonomy = classifier.taxonomy
    top_level = [label for label in taxonomy.labels if label.level == 1]
    for name, row in zip(PHOTOS, scores):
        seen = {threshold: [f"{label.name}={row[label.index]:.1f}" for label in taxonomy.labels
                            if row[label.index] >= threshold]
                for threshold in REPORT_THRESHOLDS}
        print(f"{name} ({classifier.precision}): {seen}")
    flagged = [(name, label.name, float(row[label.index]))
               for name, row in zip(PHOTOS, scores) for label in top_level
               if row[label.index] >= MIN_CONFIDENCE]
    assert flagged == []
