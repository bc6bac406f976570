"""Log set-up for the processes the CLI starts: plain text for people, JSON lines for collectors.

Two context variables tie log lines to their work: `request_id` (set for each API request by
engine/api/app.py, the same id the client sees in `x-amzn-RequestId`) and `job_id` (set while a
job thread runs a job, engine/jobs/executor.py). Both formats show them; JSON lines carry them
as fields, with any `extra={...}` fields a caller passes (the access log's operation, status,
latency). A leaf module: knows nothing about HTTP, jobs or Ray.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import sys
from collections.abc import Iterator
from datetime import datetime, timezone

LOG_FORMATS = ("text", "json")

request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "modengine_request_id", default=None
)
job_id: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "modengine_job_id", default=None
)

# Attributes every LogRecord has; anything else on a record came from `extra=` and is a field.
_STANDARD_ATTRIBUTES = frozenset(
    vars(logging.LogRecord("", 0, "", 0, "", None, None)).keys() | {"message", "asctime"}
)
_TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s%(context)s: %(message)s"


@contextlib.contextmanager
def bound(variable: contextvars.ContextVar[str | None], value: str | None) -> Iterator[None]:
    """Set a context variable for the duration of a block (a request, a job), then restore it."""
    token = variable.set(value)
    try:
        yield
    finally:
        variable.reset(token)


class ContextFilter(logging.Filter):
    """Copies the current request and job ids onto every record the handler emits."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id.get()
        record.job_id = job_id.get()
        ids = [f"{name}={value}" for name, value in
               (("request", record.request_id), ("job", record.job_id)) if value]
        record.context = f" [{' '.join(ids)}]" if ids else ""
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC, ISO 8601), level, logger, message, request_id,
    job_id, exception text when there is one, and the record's `extra` fields."""

    def format(self, record: logging.LogRecord) -> str:
        document = {
            "time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", None) or request_id.get(),
            "job_id": getattr(record, "job_id", None) or job_id.get(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD_ATTRIBUTES and key not in document and key != "context":
                document[key] = value
        if record.exc_info:
            document["exception"] = self.formatException(record.exc_info)
        return json.dumps(document, default=str, separators=(",", ":"))


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever sys.stderr is at the time of each line (as logging's last-resort
    handler does), so a handler set up once keeps working when stderr is swapped later."""

    def __init__(self) -> None:
        logging.Handler.__init__(self)

    @property
    def stream(self):
        return sys.stderr


def build_handler(log_format: str, stream=None) -> logging.Handler:
    """A stream handler (stderr by default) in the given format, with the context filter."""
    if log_format not in LOG_FORMATS:
        raise ValueError(f"log_format must be one of {LOG_FORMATS}, got {log_format!r}")
    handler = logging.StreamHandler(stream) if stream is not None else _StderrHandler()
    handler.addFilter(ContextFilter())
    handler.setFormatter(JsonFormatter() if log_format == "json" else logging.Formatter(_TEXT_FORMAT))
    handler._modengine = True  # type: ignore[attr-defined] - marks the handler as ours
    return handler


def configure_logging(log_format: str = "text", level: int = logging.INFO, stream=None) -> None:
    """Send the root logger to one handler of ours; calling it again replaces that handler (the
    CLI configures logging before `serve` does), and other handlers are left alone."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_modengine", False):
            root.removeHandler(handler)
    root.addHandler(build_handler(log_format, stream))
    root.setLevel(level)
