"""One typed, frozen settings object for the whole engine.

This is the only module that reads the environment (`MODENGINE_*`) or a TOML file; everything
else receives an `EngineSettings` (or the part of it it needs) as an argument, including Ray
tasks and actors.
"""

from __future__ import annotations

import dataclasses
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

# models.runtime.PRECISIONS, spelled out so that reading settings never imports torch (a test
# keeps the two equal).
MODEL_PRECISIONS = ("auto", "fp32", "bf16", "int8")

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ENV_PREFIX = "MODENGINE_"


class SettingsError(ValueError):
    """A setting has a value the engine cannot use; the message names each problem."""


@dataclass(frozen=True)
class EngineSettings:
    """Every knob of the engine, with its default and bound in the docstring of each field."""

    data_dir: Path = Path.home() / ".modengine"
    """Where job state (SQLite), the embedded object store and the weight cache live."""

    model: str = "default"
    """Which classifier: "default" (the shipped hierarchical model) or "module:callable"."""

    model_version: str = "7.0"
    """ModerationModelVersion reported to clients (the taxonomy version they expect)."""

    weights_cache_dir: Path | None = None
    """Where converted weights are cached as safetensors; default <data_dir>/weights."""

    sample_interval_ms: int = 1000
    """Time between sampled frames, >= 1."""

    segment_length_s: float = 20.0
    """Target length of one decode segment; segments start at keyframes. > 0."""

    decode_mode: str = "accurate"
    """"accurate" (exact frame at each sample time) or "keyframes" (snap to keyframes)."""

    hwaccel: str = "auto"
    """Video decoding: "auto" (NVDEC where a CUDA device works, else software), "cuda"
    (NVDEC or fail) or "none" (software)."""

    preprocess: str = "auto"
    """Where decoded frames are converted and resized: "auto" (NVDEC frames stay on the GPU
    and go through the Triton kernel when torch sees the GPU and Triton is installed, else
    swscale on the CPU), "kernel" (the kernels package wherever the frames are, also on the
    CPU) or "swscale" (always swscale; NVDEC frames are downloaded)."""

    ray_address: str | None = None
    """Address of an existing Ray cluster; None starts a local one."""

    ray_num_cpus: int | None = None
    """CPUs for a local Ray; None lets Ray decide."""

    ray_log_level: str = "ERROR"
    """Level of Ray's own start-up logging in this process (DEBUG, INFO, WARNING, ERROR)."""

    inference_actors: int = 1
    """Inference actors when the cluster has no GPU. >= 1. With GPUs: one actor per GPU."""

    inference_actor_cpus: float = 0.0
    """Ray CPUs reserved by each CPU inference actor. 0 by default: on a CPU node the model
    shares the cores with the decoders (which are the bottleneck) instead of idling a core."""

    use_gpus: str = "auto"
    """"auto": one inference actor per GPU the cluster has (none -> CPU actors); "never"."""

    max_batch_size: int = 16
    """Largest frame batch an inference actor runs at once. >= 1."""

    max_batch_wait_ms: float = 10.0
    """How long an actor waits to fill a batch before running a smaller one. >= 0."""

    torch_threads: int | None = None
    """Intra-op threads for the classifier; None lets torch decide."""

    precision: str = "auto"
    """Classifier precision: "auto" (bf16 where it is faster than fp32: a bf16 GPU, a CPU with
    AMX; else int8 on a CPU with VNNI; else fp32), "fp32", "bf16" or "int8" (onnxruntime
    graphs of the backbones, built once into the weight cache: models/onnx_int8.py). An
    explicit "bf16" that the hardware cannot run (an AVX2-only CPU) or an "int8" on a GPU is
    refused at start; int8 without onnxruntime installed runs fp32 and logs why."""

    segment_task_cpus: float = 1.0
    """Ray CPUs reserved by each segment decode task (> 0). A task keeps its reservation while
    its frames are classified; 0.5 lets two tasks share a core so that one decodes while the
    other waits, which was faster for one 1080p job alone but slower for 360p/720p and for two
    jobs at once on 2 cores (`make bench`, 2026-11-22), so 1.0 stays the default."""

    decode_threads: int = 0
    """FFmpeg threads per segment task; 0 = as many as the task reserves CPUs (at least 1)."""

    segment_chunk_frames: int = 8
    """Decoded frames a segment task sends to the inference actor at once, while it decodes
    on (>= 1): smaller chunks start the model sooner, larger ones cost more calls."""

    max_segments_in_flight: int | None = None
    """Segment tasks one job keeps submitted at once (backpressure); None = as many as all
    jobs together may run: cluster CPUs / segment_task_cpus, plus one (a task waiting for
    its scores gives its CPU back to Ray, so more would only add decoders fighting the model
    for cores)."""

    default_min_confidence: float = 50.0
    """MinConfidence when a request gives none (0..100)."""

    host: str = "127.0.0.1"
    """Address `modengine serve` listens on; non-loopback needs api_auth_enabled."""
    port: int = 8080
    """Port `modengine serve` listens on."""

    max_concurrent_jobs: int = 20
    """Jobs one account may have IN_PROGRESS at once (the real service: 20); more get
    LimitExceededException. The job threads of a server are this many too."""
    max_object_bytes: int = 10 * 1024**3
    """Largest video object accepted (the real service: 10 GB); larger get VideoTooLarge."""
    max_duration_s: float = 6 * 3600
    """Longest video accepted (the real service: 6 h); longer ones end FAILED."""
    result_retention_s: float = 7 * 24 * 3600
    """How long finished jobs and their results are kept (the real service: 7 days)."""

    max_image_bytes: int = 5 * 1024 * 1024
    """DetectModerationLabels: largest Image.Bytes, raw (before base64); AWS: 5 MB. >= 1."""
    max_image_object_bytes: int = 15 * 1024 * 1024
    """DetectModerationLabels: largest Image.S3Object; AWS: 15 MB. >= 1."""
    max_image_side_px: int = 10_000
    """DetectModerationLabels: largest image width and height; AWS: 10,000 pixels. >= 1."""
    max_image_pixels: int = 100_000_000
    """DetectModerationLabels: largest width x height decoded (checked on the header, before
    any pixel is); decoding takes about 6 bytes a pixel while it runs. >= 1."""
    max_concurrent_image_decodes: int = 4
    """DetectModerationLabels requests that decode at once (more wait), bounding the memory
    that large images take on the API host. >= 1."""

    adapter_min_examples: int = 5
    """CreateProjectVersion: fewest training images showing each adapted label, and fewest
    showing none of it, before augmentation. >= 1."""
    adapter_testing_share: float = 0.2
    """TestingData.AutoCreate: the share of each kind of training image (same labels) held out
    for testing and calibration. Strictly between 0 and 1."""
    adapter_max_images: int = 5000
    """CreateProjectVersion: most images in the training and testing manifests together. >= 1."""
    max_concurrent_trainings: int = 2
    """Adapter trainings of one account in progress at once (more: LimitExceededException),
    and training threads of the server. >= 1."""
    media_analysis_max_images: int = 10_000
    """StartMediaAnalysisJob: most images (manifest lines) in one job. >= 1."""
    max_concurrent_media_jobs: int = 2
    """Media analysis jobs of one account queued or running at once (more:
    LimitExceededException), and media analysis threads of the server. >= 1."""

    s3_endpoint: str | None = None
    """S3-compatible endpoint (host:port or URL); None uses the embedded local store."""
    s3_access_key: str | None = field(default=None, repr=False)
    """Access key for s3_endpoint."""
    s3_secret_key: str | None = field(default=None, repr=False)
    """Secret key for s3_endpoint (never printed)."""
    s3_secure: bool = False
    """Use HTTPS for s3_endpoint."""
    s3_region: str = "us-east-1"
    """Region used to sign S3 requests."""
    object_access_grants: str | None = None
    """Buckets or key prefixes an account may read (and write outputs to) besides its own
    (engine/storage/access.py): `ACCOUNT=bucket/prefix,ACCOUNT=bucket` or a JSON object
    {"ACCOUNT": ["bucket/prefix", ...]}. How tenants reach objects of an S3 backend, which the
    server reads with its own keys; without a grant only the default account reads there."""

    sns_endpoint: str | None = None
    """SNS-compatible endpoint URL for completion messages; None uses boto3's default."""
    sns_region: str | None = None
    """Region for SNS; None falls back to s3_region."""
    sns_access_key: str | None = field(default=None, repr=False)
    """Access key for SNS; None uses boto3's usual credential chain."""
    sns_secret_key: str | None = field(default=None, repr=False)
    """Secret key for SNS (never printed)."""
    webhooks: str | None = None
    """Topic ARN -> webhook URL: "ARN=URL,ARN=URL" or a JSON object."""
    notify_max_attempts: int = 5
    """Deliveries tried per completion message (SNS publish or webhook POST)."""
    notify_initial_backoff_s: float = 0.5
    """Wait before the first retry of a delivery; doubles after each failure."""
    notify_timeout_s: float = 10.0
    """Timeout of one delivery attempt."""
    notify_signing_cert_url: str | None = None
    """SigningCertURL put in signed webhook deliveries: where receivers fetch the certificate
    that verifies them (the server serves it at /sns/signing-cert.pem). None: http://HOST:PORT
    of `host` and `port`; set it when receivers reach the server by another name."""
    page_token_lifetime_s: float = 86400.0
    """How long a NextToken stays valid (the real service: 24 h)."""

    api_auth_enabled: bool = True
    """Verify SigV4 on every request; false only for local development (serve then refuses
    non-loopback hosts)."""
    api_credentials_file: Path | None = None
    """Extra access keys/accounts (shared-credentials INI, `modengine_account` per profile),
    besides the generated <data_dir>/credentials."""
    api_key_rotation_grace_s: float = 86400.0
    """`modengine keys rotate`: how long a rotated-out key stays valid beside its new one, so
    clients can switch over; >= 0."""
    api_clock_skew_s: float = 900.0
    """Largest allowed difference between X-Amz-Date and the server clock (AWS: 15 min), > 0."""
    api_max_body_bytes: int = 1024 * 1024
    """Largest request body, >= 1024; larger ones get 413 before they are read."""
    api_start_rate_per_s: float = 20.0
    """StartContentModeration calls/s per account; <= 0 means no limit."""
    api_start_burst: int = 50
    """StartContentModeration calls an idle account may make at once, >= 1."""
    api_get_rate_per_s: float = 500.0
    """GetContentModeration calls/s per account; <= 0 means no limit."""
    api_get_burst: int = 1000
    """GetContentModeration calls an idle account may make at once, >= 1."""
    api_detect_rate_per_s: float = 50.0
    """DetectModerationLabels calls/s per account; <= 0 means no limit."""
    api_detect_burst: int = 100
    """DetectModerationLabels calls an idle account may make at once, >= 1."""

    log_format: str = "text"
    """Log lines of `modengine serve` and `modengine moderate -v`: "text" (for people) or "json"
    (one object per line: time, level, logger, message, request_id, job_id, extra fields)."""
    metrics_auth_enabled: bool = False
    """Require a SigV4 signature (an API key) on GET /metrics. Off by default, as Prometheus
    targets usually are: it serves aggregate counts only; keep the port on a private network
    or turn this on. GET /healthz is never authenticated."""

    def __post_init__(self) -> None:
        self._paths_from_text()
        problems = []
        if self.sample_interval_ms < 1:
            problems.append("sample_interval_ms must be >= 1")
        if self.segment_length_s <= 0:
            problems.append("segment_length_s must be > 0")
        if self.decode_mode not in ("accurate", "keyframes"):
            problems.append("decode_mode must be 'accurate' or 'keyframes'")
        if self.hwaccel not in ("auto", "cuda", "none"):
            problems.append("hwaccel must be 'auto', 'cuda' or 'none'")
        if self.preprocess not in ("auto", "kernel", "swscale"):
            problems.append("preprocess must be 'auto', 'kernel' or 'swscale'")
        if self.use_gpus not in ("auto", "never"):
            problems.append("use_gpus must be 'auto' or 'never'")
        if self.inference_actors < 1:
            problems.append("inference_actors must be >= 1")
        if self.segment_task_cpus <= 0:
            problems.append("segment_task_cpus must be > 0")
        if self.max_batch_size < 1:
            problems.append("max_batch_size must be >= 1")
        if self.segment_chunk_frames < 1:
            problems.append("segment_chunk_frames must be >= 1")
        if self.max_batch_wait_ms < 0:
            problems.append("max_batch_wait_ms must be >= 0")
        if self.precision not in MODEL_PRECISIONS:
            problems.append(f"precision must be one of {', '.join(MODEL_PRECISIONS)}")
        if not 0 <= self.default_min_confidence <= 100:
            problems.append("default_min_confidence must be within 0..100")
        image_limits = ("max_image_bytes", "max_image_object_bytes", "max_image_side_px",
                        "max_image_pixels", "max_concurrent_image_decodes",
                        "adapter_min_examples", "adapter_max_images", "max_concurrent_trainings",
                        "media_analysis_max_images", "max_concurrent_media_jobs")
        problems.extend(f"{name} must be >= 1" for name in image_limits if getattr(self, name) < 1)
        if self.api_key_rotation_grace_s < 0:
            problems.append("api_key_rotation_grace_s must be >= 0")
        if not 0 < self.adapter_testing_share < 1:
            problems.append("adapter_testing_share must be strictly between 0 and 1")
        if self.log_format not in ("text", "json"):
            problems.append("log_format must be 'text' or 'json'")
        if problems:
            raise SettingsError("invalid settings: " + "; ".join(problems))

    def _paths_from_text(self) -> None:
        """Path settings given as text (`EngineSettings(data_dir="/srv/x")`, as people type
        them in notebooks) become Paths here, not a TypeError deep inside a Ray actor."""
        for setting in fields(self):
            value = getattr(self, setting.name)
            if isinstance(value, str) and "Path" in str(setting.type):
                object.__setattr__(self, setting.name, Path(value).expanduser())

    @property
    def weights_dir(self) -> Path:
        return self.weights_cache_dir or self.data_dir / "weights"

    @property
    def effective_decode_threads(self) -> int:
        return self.decode_threads or max(1, round(self.segment_task_cpus))

    def replace(self, **changes: Any) -> EngineSettings:
        return dataclasses.replace(self, **changes)


def _coerce(name: str, raw: Any, default: Any) -> Any:
    """Turn a string (env) or TOML value into the type of the field's default."""
    if raw is None:
        return None
    annotation = {f.name: f.type for f in fields(EngineSettings)}[name]
    text = str(annotation)
    if "Path" in text:
        return Path(raw).expanduser()
    if "bool" in text:
        return raw if isinstance(raw, bool) else str(raw).strip().lower() in ("1", "true", "yes", "on")
    if text.startswith("int") or "int |" in text:
        return int(raw)
    if text.startswith("float"):
        return float(raw)
    return str(raw)


def load_settings(
    toml_path: str | Path | None = None,
    environ: Mapping[str, str] | None = None,
    **overrides: Any,
) -> EngineSettings:
    """Build settings from defaults < TOML file < MODENGINE_* env vars < explicit overrides.

    The TOML file is `toml_path`, else $MODENGINE_CONFIG if set.
    """
    environ = os.environ if environ is None else environ
    known = {f.name: f.default for f in fields(EngineSettings)}
    values: dict[str, Any] = {}
    toml_path = toml_path or environ.get(ENV_PREFIX + "CONFIG")
    if toml_path:
        for key, raw in _read_toml(Path(toml_path)).items():
            if key not in known:
                raise SettingsError(f"unknown setting {key!r} in {toml_path}")
            values[key] = _coerce_named(key, raw, known[key], f"in {toml_path}")
    for key, default in known.items():
        env_name = ENV_PREFIX + key.upper()
        if env_name in environ:
            values[key] = _coerce_named(key, environ[env_name], default, f"from ${env_name}")
    values.update({k: v for k, v in overrides.items() if v is not None})
    return EngineSettings(**values)


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise SettingsError(f"cannot read the settings file {path}: {error.strerror}") from error
    except tomllib.TOMLDecodeError as error:
        raise SettingsError(f"the settings file {path} is not valid TOML: {error}") from error
    return document.get("modengine", document)


def _coerce_named(name: str, raw: Any, default: Any, where: str) -> Any:
    try:
        return _coerce(name, raw, default)
    except (TypeError, ValueError) as error:
        raise SettingsError(f"setting {name} {where}: {raw!r} is not a valid value") from error
