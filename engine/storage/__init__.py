"""Object access: an S3-compatible store (minio SDK) or the embedded local store.

A leaf: it knows buckets, keys and versions, nothing about jobs, Ray or HTTP requests.
"""

from __future__ import annotations

from engine.config import EngineSettings
from engine.storage.base import ObjectEntry, ObjectInfo, ObjectRef, ObjectStore
from engine.storage.local import LocalObjectStore
from engine.storage.s3 import MinioObjectStore


def open_object_store(settings: EngineSettings) -> ObjectStore:
    """The configured store: S3 when `s3_endpoint` is set, else `<data_dir>/objects`."""
    if settings.s3_endpoint:
        return MinioObjectStore(
            settings.s3_endpoint,
            settings.s3_access_key,
            settings.s3_secret_key,
            secure=settings.s3_secure,
            region=settings.s3_region,
        )
    return LocalObjectStore(settings.data_dir / "objects")


__all__ = [
    "LocalObjectStore",
    "MinioObjectStore",
    "ObjectEntry",
    "ObjectInfo",
    "ObjectRef",
    "ObjectStore",
    "open_object_store",
]
