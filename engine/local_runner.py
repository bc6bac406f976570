"""The local runner that `modengine moderate`, the notebook client (engine/client.py) and the
benchmarks share: one video, in this process's Ray session, to one finished ModerationResult.

It sits above engine.cluster: the cluster probes, plans and runs the segments and hands back
each segment's raw confidences; here they are thresholded as they arrive and assembled at the
end by engine/results (the same assembler a server job and batch use), so every path yields
the same detections. `result_options` is how all of them (batch too) read a request against
the settings. Knows nothing about HTTP, job storage or the wire.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from engine.cluster import ClusterRunner, SegmentOutcome, local_adapter_path
from engine.config import EngineSettings
from engine.results import (
    ModerationResult,
    ResultOptions,
    SegmentDetections,
    assemble_result,
    segment_detections,
)
from engine.video.types import Segment

ProgressCallback = Callable[[int, int], None]
"""(segments finished, segments planned)."""


def result_options(
    settings: EngineSettings,
    min_confidence: float | None = None,
    sort_by: str = "TIMESTAMP",
    aggregate_by: str = "TIMESTAMPS",
) -> ResultOptions:
    """A request's threshold, order and aggregation, with the settings' defaults and sampling."""
    if min_confidence is None:
        min_confidence = settings.default_min_confidence
    return ResultOptions(min_confidence, sort_by, aggregate_by, settings.sample_interval_ms)


@dataclass(frozen=True)
class LocalRun:
    """A finished video and how its segments ran (node, timings; for benchmarks and tests)."""

    result: ModerationResult
    outcomes: list[SegmentOutcome]


class LocalRunner:
    """Moderates whole videos through one ClusterRunner (its Ray connection and inference pool
    stay up between videos until `shutdown`); safe to use from several threads at once."""

    def __init__(self, settings: EngineSettings, cluster: ClusterRunner | None = None) -> None:
        self.settings = settings
        self.cluster = cluster or ClusterRunner(settings)

    def moderate(
        self,
        source: str,
        min_confidence: float | None = None,
        sort_by: str = "TIMESTAMP",
        aggregate_by: str = "TIMESTAMPS",
        on_progress: ProgressCallback | None = None,
        decode_mode: str | None = None,
        adapter: str | None = None,
    ) -> ModerationResult:
        """The whole video in one call: detections thresholded, aggregated and sorted. With
        `adapter` (a project version ARN trained into this data dir) its labels are merged in."""
        options = result_options(self.settings, min_confidence, sort_by, aggregate_by)
        return self.run(source, options, on_progress, decode_mode, adapter).result

    def run(
        self,
        source: str,
        options: ResultOptions,
        on_progress: ProgressCallback | None = None,
        decode_mode: str | None = None,
        adapter: str | None = None,
    ) -> LocalRun:
        """`moderate`, keeping the segments' outcomes."""
        cluster = self.cluster
        decode_mode = decode_mode or self.settings.decode_mode
        adapter_path = local_adapter_path(self.settings.data_dir, adapter)
        taxonomy = cluster.taxonomy_for(adapter_path)
        probe = cluster.probe(source)
        segments = cluster.plan(probe)
        outputs: list[SegmentDetections] = []

        def collect(segment: Segment, outcome: SegmentOutcome) -> None:
            outputs.append(
                segment_detections(
                    taxonomy, outcome.timestamps_ms, outcome.confidences,
                    options.min_confidence, cluster.model_info.content_types,
                )
            )
            if on_progress:
                on_progress(len(outputs), len(segments))

        if on_progress:
            on_progress(0, len(segments))
        outcomes = cluster.run_segments(source, probe, segments, collect, decode_mode=decode_mode,
                                        adapter_path=adapter_path)
        result = assemble_result(
            outputs, probe.metadata, options, model_version=self.settings.model_version,
            model_info=cluster.model_info, decode_mode=decode_mode, adapter=adapter,
        )
        return LocalRun(result, outcomes)

    def shutdown(self) -> None:
        """Stop the cluster runner: its inference actors, and a Ray it started."""
        self.cluster.shutdown()
