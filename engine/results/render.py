"""Shapes a finished moderation result the way GetContentModeration returns it, and as a table.

Used by the CLI; the API builds its pages from stored rows but with the same field names.
"""

from __future__ import annotations

from engine.config import EngineSettings
from models.base import ModelInfo


def moderation_response(result, settings: EngineSettings, sort_by: str, aggregate_by: str) -> dict:
    """A single unpaged GetContentModeration response for a finished video."""
    return {
        "JobStatus": "SUCCEEDED",
        "VideoMetadata": result.metadata.to_wire(),
        "ModerationLabels": [detection.to_wire() for detection in result.detections],
        "ModerationModelVersion": settings.model_version,
        "GetRequestMetadata": {"SortBy": sort_by, "AggregateBy": aggregate_by},
        "ModelInfo": {"Name": result.model_info.name, "Version": result.model_info.version},
        # Not a Rekognition member (boto3 ignores it): how the sampled frames were picked.
        "DecodeMode": result.decode_mode,
    }


def render_table(response: dict, model_info: ModelInfo) -> str:
    """A readable summary: video facts, then one line per detection."""
    meta = response["VideoMetadata"]
    lines = [
        (f"video: {meta['Format']}, {meta['Codec']}, {meta['FrameWidth']}x{meta['FrameHeight']}, "
        f"{meta['FrameRate']:.3f} fps, {meta['DurationMillis'] / 1000:.1f} s, {meta['ColorRange']} range"),
        (f"model: {model_info.name} {model_info.version} "
        f"(ModerationModelVersion {response['ModerationModelVersion']})"),
        "",
    ]
    labels = response["ModerationLabels"]
    if not labels:
        lines.append("no moderation labels at this confidence")
        return "\n".join(lines)
    segments = "StartTimestampMillis" in labels[0]
    header = f"{'time':>10}  {'until':>10}  " if segments else f"{'time':>10}  "
    lines.append(header + f"{'conf':>6}  {'lvl':>3}  label (parent)")
    for item in labels:
        label = item["ModerationLabel"]
        when = _clock(item["Timestamp"])
        if segments:
            when = f"{_clock(item['StartTimestampMillis'])}  {_clock(item['EndTimestampMillis'])}"
        parent = f" ({label['ParentName']})" if label["ParentName"] else ""
        indent = "  " * (label["TaxonomyLevel"] - 1)
        lines.append(f"{when:>10}  {label['Confidence']:6.2f}  {label['TaxonomyLevel']:>3}  "
                     f"{indent}{label['Name']}{parent}")
    lines.append(f"\n{len(labels)} detections")
    return "\n".join(lines)


def _clock(ms: int) -> str:
    seconds, millis = divmod(int(ms), 1000)
    minutes, seconds = divmod(seconds, 60)
    return f"{minutes:d}:{seconds:02d}.{millis:03d}"
