"""Structured JSON logs: one object per line, with the request, user and generation in context.

Context travels in contextvars so every log line inside a request or a generation carries it
without passing it around. Tokens are never put in context or messages, and every line is redacted
on the way out (a client may still put one in a URL, which the access log quotes).
"""

from __future__ import annotations

import json
import logging
import sys
import time
from contextvars import ContextVar

from opentelemetry import trace

from service.redaction import redact

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)
user_id_var: ContextVar[str | None] = ContextVar("user_id", default=None)
generation_id_var: ContextVar[str | None] = ContextVar("generation_id", default=None)

_CONTEXT = {"request_id": request_id_var, "user_id": user_id_var, "generation_id": generation_id_var}
# Fields a call site may pass with `extra=` and that end up in the JSON object.
EXTRA_FIELDS = ("dependency", "attempt", "operation", "reason", "status", "duration_s", "error", "profile",
                "method", "route", "fal_request_id")


class JsonFormatter(logging.Formatter):
    """Formats a record as one JSON object with the context fields that are set."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name, var in _CONTEXT.items():
            value = getattr(record, name, None) or var.get()
            if value is not None:
                entry[name] = value
        span_context = trace.get_current_span().get_span_context()
        if span_context.is_valid:
            entry["trace_id"] = format(span_context.trace_id, "032x")
        for name in EXTRA_FIELDS:
            if hasattr(record, name):
                entry[name] = getattr(record, name)
        if record.exc_info and record.exc_info[0] is not None:
            entry["exception"] = f"{record.exc_info[0].__name__}: {record.exc_info[1]}"
        return redact(json.dumps(entry, default=str))


def configure_logging(level: str = "INFO") -> None:
    """Send the service's and uvicorn's logs to stderr as JSON."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
