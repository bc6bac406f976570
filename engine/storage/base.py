"""What the rest of the engine needs from an object store, independent of the backend.

A store answers two questions at job start (does the object exist, how big is it) and gives
workers a `source` string their decoder opens directly: a local path or a presigned GET URL.
Video bytes never travel through the API process.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from engine.storage.access import AccessPolicy


@dataclass(frozen=True)
class ObjectRef:
    """Rekognition's S3Object: bucket, key and optional version."""

    bucket: str
    key: str
    version: str | None = None

    def describe(self) -> str:
        suffix = f" (version {self.version})" if self.version else ""
        return f"s3://{self.bucket}/{self.key}{suffix}"


@dataclass(frozen=True)
class ObjectInfo:
    size_bytes: int
    version: str | None


@dataclass(frozen=True)
class ObjectEntry:
    """One object found by `list_objects`: its key, size and a change marker."""

    key: str
    size_bytes: int
    etag: str
    """The S3 ETag (changes when the content does); the local store uses mtime and size."""


class ObjectStore(Protocol):
    access: AccessPolicy
    """Who may read what (engine/storage/access.py); checked by `readable_object` only."""

    def bucket_owner(self, bucket: str) -> str | None:
        """The account recorded as the bucket's owner; None when the store records none."""
        ...

    def claim_bucket(self, bucket: str, account: str) -> None:
        """Record `account` as the owner of `bucket` if the store records owners and the bucket
        is new (neither exists nor has an owner); otherwise nothing changes."""
        ...

    def stat(self, ref: ObjectRef) -> ObjectInfo:
        """Size and version; raises InvalidS3ObjectException if missing or unreadable."""
        ...

    def source_for(self, ref: ObjectRef) -> str:
        """A string the decoder opens (path or URL); raises InvalidS3ObjectException."""
        ...

    def put_file(self, local_path: Path, bucket: str, key: str) -> str | None:
        """Store a local file (creating the bucket if needed); returns the new version id."""
        ...

    def list_objects(self, bucket: str, prefix: str = "") -> list[ObjectEntry]:
        """Every object whose key starts with `prefix`, recursively, sorted by key (batch
        moderation lists its input this way); raises InvalidS3ObjectException for no bucket."""
        ...

    def get_bytes(self, ref: ObjectRef, max_bytes: int | None = None) -> bytes:
        """A small object's content (a result document, an image; never a video): all of it,
        or at most `max_bytes` bytes, so a caller can refuse an object that is too large
        without reading it in full."""
        ...

    def put_bytes(
        self, bucket: str, key: str, data: bytes, content_type: str = "application/json"
    ) -> str | None:
        """Store a small document (creating the bucket if needed); returns the version id."""
        ...
