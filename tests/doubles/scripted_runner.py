"""Test double of engine.cluster.ClusterRunner: no Ray, no decoding.

A "video" is a JSON file (a script) saying how long it is and which labels appear when:

    {"duration_ms": 10000, "labels": {"3000": {"Weapons": 90.0}, "4000": {"Weapons": 80.0}},
     "fail": "optional message: run_segments raises VideoError with it",
     "delay_s": 0.0}

Samples are taken every `sample_interval_ms` from 0; segments are `segment_ms` long. Anything
that is not such a JSON file makes `probe` raise VideoError, like a real unreadable video.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from engine.cluster.types import SegmentOutcome
from engine.video.types import Segment, VideoError, VideoMetadata, VideoProbe
from models.base import ModelInfo
from models.taxonomy import load_taxonomy


def write_script(
    path: Path, duration_ms: int, labels: dict[int, dict[str, float]] | None = None, **extra
) -> Path:
    """Write a scripted video file for ScriptedRunnerDouble."""
    document = {
        "duration_ms": duration_ms,
        "labels": {str(k): v for k, v in (labels or {}).items()},
        **extra,
    }
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(document))
    return Path(path)


class ScriptedRunnerDouble:
    """Implements probe / plan / run_segments / classify_frames / shutdown over scripted JSON
    videos (and, for images, the colour test double)."""

    def __init__(self, sample_interval_ms: int = 1000, segment_ms: int = 4000) -> None:
        self.sample_interval_ms = sample_interval_ms
        self.segment_ms = segment_ms
        self.decode_modes: list[str | None] = []
        """The decode_mode of each run_segments call, in order."""
        self.taxonomy = load_taxonomy()
        self.model_info = ModelInfo(
            name="scripted-runner-double", version="test", input_size=(8, 8)
        )
        self.segments_run: list[int] = []
        self.frames_classified: list[np.ndarray] = []
        """Every frame batch classify_frames was given (images), for tests to inspect."""
        self.shut_down = False
        self.entered = threading.Event()
        """Set when run_segments starts: lets a test act while a job is mid-flight."""
        self.release = threading.Event()
        self.release.set()
        """Cleared by a test to hold run_segments (after the first segment) until it is set."""
        self.adapters_used: list[str | None] = []
        """The adapter_path of each run_segments call, in order."""
        self.trainings_started = 0
        self.release_training = threading.Event()
        self.release_training.set()
        """Cleared by a test to hold train_adapter until it is set."""

    def probe(self, source: str) -> VideoProbe:
        script = self._script(source)
        metadata = VideoMetadata(
            codec="h264",
            duration_ms=int(script["duration_ms"]),
            format="QuickTime / MOV",
            frame_rate=25.0,
            frame_height=360,
            frame_width=640,
            color_range="LIMITED",
        )
        keyframes = tuple(range(0, int(script["duration_ms"]), self.segment_ms))
        return VideoProbe(
            metadata=metadata, keyframes_ms=keyframes or (0,), start_ms=0, rotation_degrees=0
        )

    def plan(self, probe: VideoProbe) -> list[Segment]:
        duration_ms = probe.metadata.duration_ms
        starts = list(range(0, max(duration_ms, 1), self.segment_ms))
        return [
            Segment(i, start, min(start + self.segment_ms, duration_ms))
            for i, start in enumerate(starts)
        ]

    def run_segments(
        self, source: str, probe: VideoProbe, segments: Sequence[Segment],
        on_segment_done: Callable[[Segment, SegmentOutcome], None], decode_mode=None,
        adapter_path: str | None = None,
    ) -> list[SegmentOutcome]:
        """With an adapter, each scripted frame's scores are its features (as for images)."""
        self.decode_modes.append(decode_mode)
        self.adapters_used.append(adapter_path)
        script = self._script(source)
        self.entered.set()
        outcomes = []
        for number, segment in enumerate(segments):
            if number == 1:
                self.release.wait()
            time.sleep(float(script.get("delay_s", 0.0)))
            if script.get("fail"):
                raise VideoError(script["fail"])
            self.segments_run.append(segment.index)
            outcome = self._outcome(script, segment)
            if adapter_path is not None and len(outcome.confidences):
                from dataclasses import replace

                from models.adapter import merge_adapter

                adapter = self._adapter(adapter_path)
                merged = merge_adapter(self.taxonomy, self.taxonomy, outcome.confidences,
                                       adapter, adapter.confidences(outcome.confidences / 100))[1]
                outcome = replace(outcome, confidences=merged)
            outcomes.append(outcome)
            on_segment_done(segment, outcomes[-1])
        return outcomes

    def classify_frames(self, frames: np.ndarray, adapter_path: str | None = None) -> np.ndarray:
        """Images (DetectModerationLabels) are scored by the colour test double: the dominant
        colour of a frame's top quarter decides its one label (tests/doubles/colour_classifier).
        An adapter is merged in as the inference actors do it (models/adapter.py), over the
        double's features (its label confidences / 100)."""
        from models.adapter import merge_adapter, outputs_and_features

        self.frames_classified.append(np.array(frames, copy=True))
        classifier = self._classifier()
        outputs, features = outputs_and_features(classifier, frames)
        if adapter_path is None:
            return outputs.labels
        adapter = self._adapter(adapter_path)
        return merge_adapter(self.taxonomy, self.taxonomy, outputs.labels, adapter,
                             adapter.confidences(features))[1]

    @property
    def adaptable_taxonomy(self):
        return self.taxonomy

    def taxonomy_for(self, adapter_path: str | None):
        from models.adapter import merged_taxonomy

        if adapter_path is None:
            return self.taxonomy
        return merged_taxonomy(self.taxonomy, self.taxonomy, self._adapter(adapter_path))[0]

    def train_adapter(self, request):
        """Trains in this thread (no Ray) with the engine's own training code."""
        from engine.cluster.adapter_training import train_adapter
        from engine.video.image import ImageLimits
        from models.adapter import model_identity, outputs_and_features

        classifier = self._classifier()
        self.trainings_started += 1
        self.release_training.wait()
        return train_adapter(request, lambda frames: outputs_and_features(classifier, frames)[1],
                             self.model_info.input_size, ImageLimits(10**8, 10**4, 10**8),
                             model_identity(classifier))

    @staticmethod
    def _classifier():
        from tests.doubles.colour_classifier import ColourTestDoubleClassifier

        return ColourTestDoubleClassifier()

    def _adapter(self, path: str):
        from models.adapter import Adapter

        return Adapter.from_bytes(Path(path).read_bytes())

    def shutdown(self) -> None:
        self.shut_down = True

    def _outcome(self, script: dict, segment: Segment) -> SegmentOutcome:
        first = -(-segment.start_ms // self.sample_interval_ms) * self.sample_interval_ms
        timestamps = tuple(range(first, segment.stop_ms, self.sample_interval_ms))
        scores = np.zeros((len(timestamps), len(self.taxonomy)), dtype=np.float32)
        for confidences, timestamp_ms in zip(scores, timestamps):
            for name, confidence in script["labels"].get(str(timestamp_ms), {}).items():
                label = self.taxonomy.find(name)
                confidences[label.index] = confidence
                for ancestor in self.taxonomy.ancestors(label.index):
                    confidences[ancestor.index] = max(confidences[ancestor.index], confidence)
        return SegmentOutcome(segment.index, timestamps, scores)

    @staticmethod
    def _script(source: str) -> dict:
        try:
            script = json.loads(Path(source).read_text())
            int(script["duration_ms"])
            return script
        except (OSError, ValueError, KeyError, TypeError):
            raise VideoError("The file is not a video this service can read") from None


def scripted_job_system(
    data_dir: Path, runner: ScriptedRunnerDouble | None = None, notify_settings=None,
    access=None, **overrides
):
    """A job system over the local store in `data_dir`, driven by a ScriptedRunnerDouble.

    `access` is the store's AccessPolicy; by default none is enforced: these job-behaviour tests
    call with made-up accounts, and the access rules have their own tests
    (tests/integration/test_object_access.py) through a real server.
    Returns (job_system, runner, settings); the caller starts and stops the job system.
    """
    from engine.config import EngineSettings
    from engine.jobs import open_job_system
    from engine.storage import AccessPolicy, open_object_store

    settings = EngineSettings(data_dir=Path(data_dir), **overrides)
    runner = runner or ScriptedRunnerDouble(sample_interval_ms=settings.sample_interval_ms)
    objects = open_object_store(settings, access or AccessPolicy(enforced=False))
    jobs = open_job_system(
        settings, lambda: runner, objects=objects, notify_settings=notify_settings, worker_count=4
    )
    return jobs, runner, settings


def synthetic_detections(count: int, seed: int) -> list:
    """`count` TIMESTAMPS-mode detections cycling through every taxonomy label, ten per
    100 ms timestamp, with seeded confidences in [50, 100): rows for paging and load tests."""
    import random

    from engine.results.types import Detection

    taxonomy = load_taxonomy()
    generator = random.Random(seed)
    rows = []
    for number in range(count):
        label = taxonomy.labels[number % len(taxonomy)]
        rows.append(Detection(number // 10 * 100, label.name, taxonomy.parent_name(label),
                              label.level, generator.uniform(50, 100), label.index))
    return rows
