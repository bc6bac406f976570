"""Videos in an S3-compatible server, through the minio SDK.

At job start the API checks the object with one HEAD (stat); workers then read it themselves
through a presigned GET URL (honouring the version), so the API process never downloads video.
"""

from __future__ import annotations

import io
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlparse

import urllib3
from minio import Minio
from minio.error import S3Error

from engine.errors import InternalServerError, InvalidS3ObjectException
from engine.storage.access import AccessPolicy
from engine.storage.base import ObjectEntry, ObjectInfo, ObjectRef

PRESIGNED_URL_LIFETIME = timedelta(hours=24)
"""Long enough for the longest video a worker may still be decoding."""

SINGLE_PUT_PART_BYTES = 64 * 1024**2
_MISSING_CODES = {"NoSuchBucket", "NoSuchKey", "NoSuchVersion", "NoSuchObject", "ResourceNotFound"}


def split_endpoint(endpoint: str, secure: bool) -> tuple[str, bool]:
    """Accept `host:port` or a URL; a URL's scheme decides TLS."""
    if "://" not in endpoint:
        return endpoint.rstrip("/"), secure
    parsed = urlparse(endpoint)
    return parsed.netloc, parsed.scheme == "https"


class MinioObjectStore:
    """An S3-compatible bucket store reached through `minio.Minio`. It records no bucket owners:
    the server's keys reach every bucket, so who reads what is `access` (the default account,
    and `object_access_grants` for the others)."""

    def __init__(
        self,
        endpoint: str,
        access_key: str | None,
        secret_key: str | None,
        secure: bool = False,
        region: str | None = "us-east-1",
        access: AccessPolicy | None = None,
    ) -> None:
        self.access = access or AccessPolicy()
        host, use_tls = split_endpoint(endpoint, secure)
        http_client = urllib3.PoolManager(
            timeout=urllib3.Timeout(connect=5, read=30),
            retries=urllib3.Retry(total=2, backoff_factor=0.2, status_forcelist=(502, 503, 504)),
        )
        self.client = Minio(
            host,
            access_key=access_key,
            secret_key=secret_key,
            secure=use_tls,
            region=region,
            http_client=http_client,
        )

    def bucket_owner(self, bucket: str) -> str | None:
        return None

    def claim_bucket(self, bucket: str, account: str) -> None:
        return None

    def stat(self, ref: ObjectRef) -> ObjectInfo:
        try:
            found = self.client.stat_object(ref.bucket, ref.key, version_id=ref.version)
        except S3Error as error:
            raise self._translate(ref, error) from None
        except (urllib3.exceptions.HTTPError, OSError) as error:
            raise InternalServerError(
                f"The object store is unreachable: {type(error).__name__}"
            ) from None
        return ObjectInfo(size_bytes=int(found.size or 0), version=found.version_id)

    def source_for(self, ref: ObjectRef) -> str:
        try:
            return self.client.presigned_get_object(
                ref.bucket, ref.key, expires=PRESIGNED_URL_LIFETIME, version_id=ref.version
            )
        except S3Error as error:
            raise self._translate(ref, error) from None

    def put_file(self, local_path: Path, bucket: str, key: str) -> str | None:
        if not self.client.bucket_exists(bucket):
            self.client.make_bucket(bucket)
        written = self.client.fput_object(
            bucket, key, str(local_path), content_type="video/mp4", part_size=SINGLE_PUT_PART_BYTES
        )
        return written.version_id

    def list_objects(self, bucket: str, prefix: str = "") -> list[ObjectEntry]:
        try:
            found = [
                ObjectEntry(item.object_name, int(item.size or 0), (item.etag or "").strip('"'))
                for item in self.client.list_objects(bucket, prefix=prefix, recursive=True)
                if not item.is_dir
            ]
        except S3Error as error:
            raise self._translate(ObjectRef(bucket, prefix), error) from None
        return sorted(found, key=lambda entry: entry.key)

    def get_bytes(self, ref: ObjectRef, max_bytes: int | None = None) -> bytes:
        try:
            response = self.client.get_object(ref.bucket, ref.key, version_id=ref.version)
        except S3Error as error:
            raise self._translate(ref, error) from None
        try:
            return response.read(max_bytes)
        except (urllib3.exceptions.HTTPError, OSError) as error:
            raise InvalidS3ObjectException(
                f"Unable to read object {ref.describe()}: {type(error).__name__}"
            ) from None
        finally:
            response.close()
            response.release_conn()

    def put_bytes(
        self, bucket: str, key: str, data: bytes, content_type: str = "application/json"
    ) -> str | None:
        if not self.client.bucket_exists(bucket):
            self.client.make_bucket(bucket)
        written = self.client.put_object(
            bucket, key, io.BytesIO(data), len(data), content_type=content_type
        )
        return written.version_id

    @staticmethod
    def _translate(ref: ObjectRef, error: S3Error) -> InvalidS3ObjectException:
        if error.code in _MISSING_CODES or error.code is None:
            return InvalidS3ObjectException(
                f"Unable to get object {ref.describe()}: {error.code or 'not found'}"
            )
        return InvalidS3ObjectException(f"Unable to read object {ref.describe()}: {error.code}")
