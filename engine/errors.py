"""The contract's errors: one exception class per AWS error code, named exactly as the code.

Raised wherever the problem is found (api, jobs, storage); turned into the wire body
`{"__type": <code>, "Message": ...}` in one place only, engine/api. Nothing here knows HTTP
beyond the status code each error maps to.
"""

from __future__ import annotations


class ServiceError(Exception):
    """Base of every error a client may see. `code` is the AWS error code (the class name)."""

    http_status: int = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    @property
    def code(self) -> str:
        return type(self).__name__


class AccessDeniedException(ServiceError):
    """The caller may not perform the action (SigV4 or ownership checks)."""

    http_status = 403


class IdempotentParameterMismatchException(ServiceError):
    """A ClientRequestToken was reused with different parameters."""


class InvalidParameterException(ServiceError):
    """A request member is missing, of the wrong type, out of range or fails its pattern."""


class InvalidS3ObjectException(ServiceError):
    """The video object is missing (bucket, key or version) or cannot be read."""


class InternalServerError(ServiceError):
    """Something failed on our side; the message never carries a stack trace."""

    http_status = 500


class VideoTooLargeException(ServiceError):
    """The video object is larger than the configured maximum."""


class InvalidImageFormatException(ServiceError):
    """DetectModerationLabels: the image is not a JPEG or PNG, or is damaged, truncated or empty."""


class ImageTooLargeException(ServiceError):
    """DetectModerationLabels: the image's bytes, its S3 object or its pixel dimensions are over
    the configured limits (AWS: 5 MB raw, 15 MB in S3, 10,000 pixels a side)."""


class ProvisionedThroughputExceededException(ServiceError):
    """The caller's account went over its configured request rate for an operation
    (engine/api/ratelimit.py); boto3 treats it as a throttling error and retries it."""


class LimitExceededException(ServiceError):
    """Too many jobs are running at once."""


class ThrottlingException(ServiceError):
    """The service as a whole is overloaded; boto3 retries this error by itself. Per-account
    request-rate limits raise ProvisionedThroughputExceededException instead."""


class ResourceNotFoundException(ServiceError):
    """No such job for this caller (or its results have expired)."""


class ResourceInUseException(ServiceError):
    """The project or version exists already (its name is taken), or is in use: a version still
    training, a project that still has versions, an adapter set as an account's video default."""


class ResourceNotReadyException(ServiceError):
    """The adapter (project version) is not usable yet: still training, or its training failed."""


class InvalidManifestException(ServiceError):
    """StartMediaAnalysisJob: the input manifest has a line that is not a JSON object with a
    source-ref, or names no image."""


class InvalidPaginationTokenException(ServiceError):
    """The NextToken was not issued for this job and query, was altered, or has expired."""


class UnknownOperationException(ServiceError):
    """X-Amz-Target names no operation this service offers (AWS's protocol-level error)."""


class SerializationException(ServiceError):
    """The request body is not a JSON object (AWS's protocol-level error)."""


class UnrecognizedClientException(ServiceError):
    """The access key id is not one this service knows (AWS: "The security token included in
    the request is invalid.")."""

    http_status = 403


class MissingAuthenticationTokenException(ServiceError):
    """The request carries no Authorization header at all."""

    http_status = 403


class IncompleteSignatureException(ServiceError):
    """The Authorization header or X-Amz-Date is present but malformed or incomplete."""


class InvalidSignatureException(ServiceError):
    """The signature does not match, or X-Amz-Date is outside the allowed clock skew
    ("Signature expired" / "Signature not yet current")."""

    http_status = 403
