"""Which account may read (or write) which object: the one gate every caller-named object
passes before anything of it is read.

Rekognition reads S3 with the caller's own permissions, so a tenant can never analyse what it
cannot read. We read every bucket with the server's own keys, so the server itself must decide,
for the caller's account, before it looks at the object (or it would act as a confused deputy):

- a bucket of the embedded store that records an owner (`modengine put --account`, or the first
  account the server wrote output into it for) is the owner's only;
- a bucket without an owner (created before owners were recorded, or any bucket of an S3
  backend) is the server's default account's (the [default] profile of the credentials file);
- `object_access_grants` (engine/config.py) lets an account read named buckets or key prefixes
  besides: the way tenants reach objects of an S3 backend.

A refusal answers exactly as a missing object does (Rekognition's InvalidS3ObjectException and
its one message), so a caller learns nothing of objects it may not read: not whether they
exist, nor their size. Knows nothing about jobs, HTTP or credentials files.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field

from engine.config import SettingsError
from engine.errors import AccessDeniedException, InvalidS3ObjectException
from engine.storage.base import ObjectInfo, ObjectRef, ObjectStore

UNREADABLE_OBJECT_MESSAGE = (
    "Unable to get object metadata from S3. Check object key, region and/or access permissions."
)
"""Rekognition's message for an S3 object it cannot read, whatever the reason."""


@dataclass(frozen=True)
class AccessPolicy:
    """Who reads what. `enforced=False` only where callers are not authenticated (the API's
    auth disabled for local development): an unauthenticated account name proves nothing."""

    default_account: str | None = None
    """The operator's account: it reads buckets that record no owner."""
    grants: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    """Account -> "bucket" or "bucket/key-prefix" locations it may read and write besides."""
    enforced: bool = True

    def allows(self, account: str, ref: ObjectRef, owner: str | None) -> bool:
        """May `account` use `ref`, in a bucket whose recorded owner is `owner` (None: none)?"""
        if not self.enforced:
            return True
        if owner is not None and owner == account:
            return True
        if owner is None and self.default_account is not None and account == self.default_account:
            return True
        return any(_covers(location, ref) for location in self.grants.get(account, ()))


def _covers(location: str, ref: ObjectRef) -> bool:
    bucket, _, prefix = location.partition("/")
    return bucket == ref.bucket and ref.key.startswith(prefix)


def readable_object(objects: ObjectStore, account: str, ref: ObjectRef) -> ObjectInfo:
    """THE access check: `ref`'s size and version if `account` may read it, else
    InvalidS3ObjectException with Rekognition's one message, the same for an object that does
    not exist, that cannot be read and that is another account's. Call it before reading
    anything of an object a request names (videos, images, manifests, the images they list).
    """
    if objects.access.allows(account, ref, objects.bucket_owner(ref.bucket)):
        try:
            return objects.stat(ref)
        except InvalidS3ObjectException:
            pass
    raise InvalidS3ObjectException(UNREADABLE_OBJECT_MESSAGE)


def writable_location(objects: ObjectStore, account: str, bucket: str, key: str) -> None:
    """Refuse (AccessDeniedException) an output location `account` may not write; a bucket of
    the embedded store that does not exist yet becomes the account's."""
    objects.claim_bucket(bucket, account)
    if not objects.access.allows(account, ObjectRef(bucket, key), objects.bucket_owner(bucket)):
        raise AccessDeniedException(
            f"The output location s3://{bucket}/{key} cannot be written with this account's "
            "permissions")


def parse_grants(raw: Mapping[str, object] | str | None) -> dict[str, tuple[str, ...]]:
    """`object_access_grants`: a JSON object {"ACCOUNT": ["bucket", "bucket/prefix", ...]} or
    `ACCOUNT=bucket/prefix,ACCOUNT=bucket` (an account may appear more than once)."""
    if not raw:
        return {}
    if isinstance(raw, str) and raw.strip().startswith("{"):
        try:
            raw = json.loads(raw)
        except ValueError:
            raise SettingsError("object_access_grants is not a valid JSON object") from None
    grants: dict[str, list[str]] = {}
    if isinstance(raw, Mapping):
        for account, locations in raw.items():
            listed = [locations] if isinstance(locations, str) else list(locations or [])
            grants.setdefault(str(account), []).extend(str(item) for item in listed)
    else:
        for pair in filter(None, (part.strip() for part in str(raw).split(","))):
            account, separator, location = pair.partition("=")
            if not separator or not account.strip() or not location.strip():
                raise SettingsError(f"object_access_grants entry {pair!r} is not ACCOUNT=BUCKET[/PREFIX]")
            grants.setdefault(account.strip(), []).append(location.strip())
    for account, locations in grants.items():
        for location in locations:
            if not location.partition("/")[0]:
                raise SettingsError(
                    f"object_access_grants: {location!r} (account {account}) names no bucket")
    return {account: tuple(locations) for account, locations in grants.items()}
