"""Object access: an S3-compatible store (minio SDK) or the embedded local store.

A leaf: it knows buckets, keys and versions, nothing about jobs, Ray or HTTP requests.
"""

from __future__ import annotations

from engine.config import EngineSettings
from engine.storage.access import AccessPolicy, parse_grants, readable_object, writable_location
from engine.storage.base import ObjectEntry, ObjectInfo, ObjectRef, ObjectStore
from engine.storage.local import LocalObjectStore
from engine.storage.s3 import MinioObjectStore


def access_policy(
    settings: EngineSettings, default_account: str | None, enforced: bool = True
) -> AccessPolicy:
    """Who reads what on this server: `default_account` (the [default] profile's) reads the
    buckets that record no owner, `object_access_grants` adds named buckets and prefixes."""
    return AccessPolicy(default_account, parse_grants(settings.object_access_grants), enforced)


def open_object_store(settings: EngineSettings, access: AccessPolicy | None = None) -> ObjectStore:
    """The configured store: S3 when `s3_endpoint` is set, else `<data_dir>/objects`.

    `access` (default: owners and grants only, no default account) is what `readable_object`
    checks; only a server's store needs a real one."""
    access = access or access_policy(settings, None)
    if settings.s3_endpoint:
        return MinioObjectStore(
            settings.s3_endpoint,
            settings.s3_access_key,
            settings.s3_secret_key,
            secure=settings.s3_secure,
            region=settings.s3_region,
            access=access,
        )
    return LocalObjectStore(settings.data_dir / "objects", access)


__all__ = [
    "AccessPolicy",
    "LocalObjectStore",
    "MinioObjectStore",
    "ObjectEntry",
    "ObjectInfo",
    "ObjectRef",
    "ObjectStore",
    "access_policy",
    "open_object_store",
    "readable_object",
    "writable_location",
]
