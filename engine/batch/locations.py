"""Where a batch reads videos and writes results: a local directory or an object-store prefix.

`s3://bucket/prefix/` goes through engine.storage (the settings' S3 endpoint, or the embedded
store when none is set); anything else is a directory. Inside a location every file has a
name relative to it ("sub/clip.mp4"), which is also how a video and its result are matched.
Knows nothing about Ray or moderation.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from engine.config import EngineSettings
from engine.storage import LocalObjectStore, ObjectRef, ObjectStore, open_object_store

VIDEO_EXTENSIONS = frozenset({
    ".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".mpg", ".mpeg", ".ts", ".mts", ".m2ts",
    ".3gp", ".flv", ".wmv", ".ogv",
})
"""Files a batch treats as videos (by name; a file that is not one fails its own entry)."""


@dataclass(frozen=True)
class StoredFile:
    """A file in a location: its relative name, size and change marker (ETag or mtime)."""

    name: str
    size_bytes: int
    etag: str


class Location(Protocol):
    uri: str

    def list_files(self) -> list[StoredFile]: ...

    def uri_of(self, name: str) -> str: ...

    def source_for(self, name: str) -> str:
        """What a decoder opens: a local path or a presigned URL."""
        ...

    def read(self, name: str) -> bytes: ...

    def write(self, name: str, data: bytes) -> None: ...


def open_location(uri: str, settings: EngineSettings) -> Location:
    if uri.startswith("s3://"):
        bucket, _, prefix = uri.removeprefix("s3://").partition("/")
        if not bucket:
            raise ValueError(f"expected s3://bucket/prefix/, got {uri!r}")
        return PrefixLocation(open_object_store(settings), bucket, prefix)
    return DirectoryLocation(Path(uri))


def is_video_name(name: str) -> bool:
    return Path(name).suffix.lower() in VIDEO_EXTENSIONS


class PrefixLocation:
    """Keys under `bucket/prefix/` of an object store; the prefix is a folder (a trailing
    slash is implied, so `s3://b/videos` never matches `s3://b/videos2/...`)."""

    def __init__(self, store: ObjectStore, bucket: str, prefix: str) -> None:
        self.store = store
        self.bucket = bucket
        self.prefix = prefix if not prefix or prefix.endswith("/") else prefix + "/"
        self.uri = f"s3://{bucket}/{self.prefix}"

    def list_files(self) -> list[StoredFile]:
        return [
            StoredFile(entry.key[len(self.prefix):], entry.size_bytes, entry.etag)
            for entry in self.store.list_objects(self.bucket, self.prefix)
        ]

    def uri_of(self, name: str) -> str:
        return f"s3://{self.bucket}/{self.prefix}{name}"

    def source_for(self, name: str) -> str:
        return self.store.source_for(self._ref(name))

    def read(self, name: str) -> bytes:
        return self.store.get_bytes(self._ref(name))

    def write(self, name: str, data: bytes) -> None:
        self.store.put_bytes(self.bucket, self.prefix + name, data, "application/json")

    def _ref(self, name: str) -> ObjectRef:
        return ObjectRef(self.bucket, self.prefix + name)


class DirectoryLocation(PrefixLocation):
    """A local folder (read recursively), through the embedded object store: the folder is a
    bucket of a LocalObjectStore rooted at its parent, so listing, reading and atomic writes
    are the store's own; only the folder's names and URIs are paths instead of s3:// ones."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root).expanduser().resolve()
        super().__init__(LocalObjectStore(self.root.parent), self.root.name, "")
        self.uri = str(self.root)

    def list_files(self) -> list[StoredFile]:
        if not self.root.exists():
            raise FileNotFoundError(f"no such folder: {self.root}")
        if not self.root.is_dir():
            raise NotADirectoryError(f"{self.root} is not a directory")
        return super().list_files()

    def uri_of(self, name: str) -> str:
        return str(self.root / name)
