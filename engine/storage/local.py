"""The embedded object store: `<root>/<bucket>/<key>`, each subfolder of root a bucket.

The default when no S3 endpoint is configured. It keeps no versions: a request naming a
Version other than "null" finds nothing, exactly as an unversioned S3 bucket behaves.

Each bucket may record its owning account in `<root>/.owners/<bucket>` (written once, never
moved); bucket names start with a letter or digit, as at S3, so no bucket is ever `.owners`.
Who may read what is decided in engine/storage/access.py, from these records.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from engine.errors import InvalidS3ObjectException
from engine.storage.access import AccessPolicy
from engine.storage.base import ObjectEntry, ObjectInfo, ObjectRef

UNVERSIONED = "null"
OWNERS_DIR = ".owners"


class LocalObjectStore:
    """Objects as plain files under one root directory."""

    def __init__(self, root: Path, access: AccessPolicy | None = None) -> None:
        self.root = Path(root)
        self.access = access or AccessPolicy()

    def bucket_owner(self, bucket: str) -> str | None:
        if not _is_bucket_name(bucket):
            return None
        try:
            return (self.root / OWNERS_DIR / bucket).read_text(encoding="utf-8").strip() or None
        except OSError:
            return None

    def claim_bucket(self, bucket: str, account: str) -> None:
        if not _is_bucket_name(bucket) or (self.root / bucket).exists():
            return
        owners = self.root / OWNERS_DIR
        owners.mkdir(parents=True, exist_ok=True)
        try:
            # O_EXCL: of two accounts claiming one new bucket at once, the first one keeps it.
            descriptor = os.open(owners / bucket, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            return
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(account)

    def stat(self, ref: ObjectRef) -> ObjectInfo:
        path = self._existing_path(ref)
        try:
            size = path.stat().st_size
            with path.open("rb"):
                pass
        except OSError as error:
            raise InvalidS3ObjectException(
                f"Unable to read {ref.describe()}: {error.strerror}"
            ) from None
        return ObjectInfo(size_bytes=size, version=None)

    def source_for(self, ref: ObjectRef) -> str:
        return str(self._existing_path(ref))

    def put_file(self, local_path: Path, bucket: str, key: str) -> str | None:
        target = self._path(ObjectRef(bucket, key))
        target.parent.mkdir(parents=True, exist_ok=True)
        # Copy then rename so a reader never sees half a file.
        handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=".upload-")
        os.close(handle)
        shutil.copyfile(local_path, temporary)
        os.replace(temporary, target)
        return None

    def list_objects(self, bucket: str, prefix: str = "") -> list[ObjectEntry]:
        bucket_dir = self.root / bucket
        if not _is_bucket_name(bucket) or not bucket_dir.is_dir():
            raise InvalidS3ObjectException(f"Bucket {bucket!r} does not exist")
        found = []
        for path in bucket_dir.rglob("*"):
            key = path.relative_to(bucket_dir).as_posix()
            if path.is_file() and key.startswith(prefix) and not path.name.startswith(".upload-"):
                info = path.stat()
                found.append(ObjectEntry(key, info.st_size, f"{info.st_mtime_ns:x}-{info.st_size:x}"))
        return sorted(found, key=lambda entry: entry.key)

    def get_bytes(self, ref: ObjectRef, max_bytes: int | None = None) -> bytes:
        with self._existing_path(ref).open("rb") as handle:
            return handle.read(-1 if max_bytes is None else max_bytes)

    def put_bytes(
        self, bucket: str, key: str, data: bytes, content_type: str = "application/json"
    ) -> str | None:
        target = self._path(ObjectRef(bucket, key))
        target.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=".upload-")
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
        os.replace(temporary, target)
        return None

    def _existing_path(self, ref: ObjectRef) -> Path:
        bucket_dir = self.root / ref.bucket
        if not _is_bucket_name(ref.bucket) or not bucket_dir.is_dir():
            raise InvalidS3ObjectException(f"Bucket {ref.bucket!r} does not exist")
        path = self._path(ref)
        if not path.is_file():
            raise InvalidS3ObjectException(
                f"Object {ref.key!r} does not exist in bucket {ref.bucket!r}"
            )
        if ref.version not in (None, UNVERSIONED):
            raise InvalidS3ObjectException(
                f"Version {ref.version!r} of {ref.describe()} does not exist (the local store keeps no versions)"
            )
        return path

    def _path(self, ref: ObjectRef) -> Path:
        """Resolve a key inside its bucket, refusing keys that climb out of it."""
        if not _is_bucket_name(ref.bucket):
            raise InvalidS3ObjectException(f"Bucket {ref.bucket!r} does not exist")
        bucket_dir = (self.root / ref.bucket).resolve()
        path = (bucket_dir / ref.key).resolve()
        if bucket_dir not in path.parents:
            raise InvalidS3ObjectException(
                f"Object key {ref.key!r} is not inside bucket {ref.bucket!r}"
            )
        return path


def _is_bucket_name(bucket: str) -> bool:
    """A folder name that can be a bucket: starts with a letter or digit (S3's rule), so it is
    never `.`, `..` or the owners' folder, and holds no path separator."""
    return bool(bucket) and bucket[0].isalnum() and "/" not in bucket and "\\" not in bucket
