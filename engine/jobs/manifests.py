"""Ground Truth manifests of Custom Moderation: reading, checking, splitting.

A manifest is JSON lines, one image each:
`{"source-ref": "s3://bucket/key.jpg", "content-moderation-groundtruth": {"ModerationLabels":
[{"Name": "Alcohol"}]}}` (an empty list: a safe image). Every problem is an
InvalidParameterException quoting the manifest, its line and what is allowed, raised before a
version is recorded. Knows nothing about HTTP or Ray.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable

from engine.errors import InvalidParameterException, InvalidS3ObjectException, ServiceError
from engine.jobs.adapter_types import ManifestEntry
from engine.storage.base import ObjectRef, ObjectStore

MAX_MANIFEST_BYTES = 64 * 1024 * 1024
ANNOTATION = "content-moderation-groundtruth"
IMAGE_SIGNATURES = {b"\xff\xd8\xff": "JPEG", b"\x89PNG\r\n\x1a\n": "PNG"}


def parse_s3_url(url: object, where: str) -> ObjectRef:
    if not isinstance(url, str) or not url.startswith("s3://") or "/" not in url[5:]:
        raise InvalidParameterException(f"{where}: source-ref must be s3://bucket/key, got {url!r}")
    bucket, _, key = url[5:].partition("/")
    if not bucket or not key:
        raise InvalidParameterException(f"{where}: source-ref must be s3://bucket/key, got {url!r}")
    return ObjectRef(bucket, key)


def read_manifest(objects: ObjectStore, manifest: ObjectRef, annotated: bool = True
                  ) -> list[ManifestEntry]:
    """Every line of a manifest as an entry; `annotated` lines must carry the moderation labels."""
    try:
        lines = manifest_lines(objects, manifest)
    except InvalidS3ObjectException as error:
        raise InvalidParameterException(
            f"The manifest {manifest.describe()} cannot be read: {error.message}") from None
    entries = [_entry(line, number, manifest, annotated) for number, line in lines]
    if not entries:
        raise InvalidParameterException(f"The manifest {manifest.describe()} lists no image")
    return entries


def manifest_lines(objects: ObjectStore, manifest: ObjectRef,
                   invalid: type[ServiceError] = InvalidParameterException
                   ) -> list[tuple[int, str]]:
    """(1-based line number, text) of each non-blank line. InvalidS3ObjectException when the
    object cannot be read; `invalid` when it is too large or not UTF-8."""
    data = objects.get_bytes(manifest, max_bytes=MAX_MANIFEST_BYTES + 1)
    if len(data) > MAX_MANIFEST_BYTES:
        raise invalid(f"The manifest {manifest.describe()} is larger than {MAX_MANIFEST_BYTES} "
                      "bytes")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise invalid(f"The manifest {manifest.describe()} is not UTF-8 JSON lines") from None
    return [(number, line) for number, line in enumerate(text.splitlines(), start=1)
            if line.strip()]


def _entry(line: str, number: int, manifest: ObjectRef, annotated: bool) -> ManifestEntry:
    where = f"manifest {manifest.describe()} line {number}"
    try:
        document = json.loads(line)
    except ValueError:
        raise InvalidParameterException(f"{where} is not a JSON object: {line[:80]!r}") from None
    if not isinstance(document, dict):
        raise InvalidParameterException(f"{where} is not a JSON object: {line[:80]!r}")
    image = parse_s3_url(document.get("source-ref"), where)
    if not annotated:
        return ManifestEntry(manifest, number, image, ())
    annotation = document.get(ANNOTATION)
    labels = annotation.get("ModerationLabels") if isinstance(annotation, dict) else None
    if not isinstance(labels, list) or not all(
            isinstance(label, dict) and isinstance(label.get("Name"), str) for label in labels):
        raise InvalidParameterException(
            f"{where} needs {ANNOTATION!r}: {{'ModerationLabels': [{{'Name': ...}}, ...]}} "
            "(an empty list for a safe image)")
    return ManifestEntry(manifest, number, image,
                         tuple(sorted({label["Name"] for label in labels})))


def check_labels(entries: Iterable[ManifestEntry], known: set[str]) -> None:
    for entry in entries:
        unknown = [name for name in entry.labels if name not in known]
        if unknown:
            raise InvalidParameterException(
                f"manifest {entry.manifest.describe()} line {entry.line}: the label "
                f"{unknown[0]!r} is not in the moderation taxonomy (known: "
                f"{', '.join(sorted(known))})")


def check_images(objects: ObjectStore, entries: Iterable[ManifestEntry], max_bytes: int) -> None:
    """Every image exists, is at most `max_bytes`, and starts like a JPEG or PNG file."""
    for entry in entries:
        where = f"manifest {entry.manifest.describe()} line {entry.line}"
        try:
            size = objects.stat(entry.image).size_bytes
            head = objects.get_bytes(entry.image, max_bytes=8)
        except InvalidS3ObjectException as error:
            raise InvalidParameterException(
                f"{where}: the image {entry.image.describe()} cannot be read ({error.message})"
            ) from None
        if size > max_bytes:
            raise InvalidParameterException(
                f"{where}: the image {entry.image.describe()} is {size} bytes; at most "
                f"{max_bytes}")
        if not any(head.startswith(signature) for signature in IMAGE_SIGNATURES):
            raise InvalidParameterException(
                f"{where}: the image {entry.image.describe()} is not a JPEG or PNG file")


def split_for_testing(entries: list[ManifestEntry], share: float
                      ) -> tuple[list[ManifestEntry], list[ManifestEntry]]:
    """(training, testing): of each kind of image (the same labels), `share` of them (at least
    one where there are two or more) held out, chosen by a hash of the image, so the split is
    the same at every run."""
    kinds: dict[tuple[str, ...], list[ManifestEntry]] = {}
    for entry in entries:
        kinds.setdefault(entry.labels, []).append(entry)
    training, testing = [], []
    for group in kinds.values():
        group.sort(key=lambda entry: hashlib.sha256(entry.image.describe().encode()).hexdigest())
        held = 0 if len(group) < 2 else max(1, round(len(group) * share))
        testing.extend(group[:held])
        training.extend(group[held:])
    return training, testing


def check_counts(labels: list[str], training: list[ManifestEntry], testing: list[ManifestEntry],
                 min_examples: int) -> None:
    """Enough training images with and without each label, and both kinds to test on."""
    for name in labels:
        showing = sum(name in entry.labels for entry in training)
        without = len(training) - showing
        if showing < min_examples or without < min_examples:
            raise InvalidParameterException(
                f"Too few examples for {name!r}: the training data has {showing} image(s) "
                f"showing it and {without} without it; at least {min_examples} of each are "
                "needed")
        if not any(name in entry.labels for entry in testing):
            raise InvalidParameterException(
                f"Too few examples for {name!r}: the testing data has no image showing it")
    if all(entry.labels for entry in testing):
        raise InvalidParameterException(
            "Too few examples: the testing data has no image without a label")


def manifest_text(entries: Iterable[ManifestEntry]) -> bytes:
    """Entries as a manifest again (the splits written to the output location)."""
    return "".join(json.dumps({"source-ref": f"s3://{e.image.bucket}/{e.image.key}",
                               ANNOTATION: {"ModerationLabels": [{"Name": n} for n in e.labels]}})
                   + "\n" for e in entries).encode()
