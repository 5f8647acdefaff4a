"""Credentials out of logs and traces: secret query values and URL user-info become REDACTED.

A client may put its token in the URL (``?access_token=...``) even though the service never reads
it there; the access log and the request span would otherwise keep it.
"""

from __future__ import annotations

import re
from typing import Any

from opentelemetry.sdk.trace import SpanProcessor

REDACTED = "REDACTED"
# Query parameters whose value is a credential: access_token, refresh_token, token, apikey, api_key, key, ...
_SECRET_QUERY_VALUE = re.compile(r"(?i)([?&;](?:[a-z0-9_.-]*token|api[_-]?key|key|secret|password|sig)=)[^&#;\s\"'\\]*")
_URL_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/?#@\s\"'\\]+@")
# Span attributes that carry a URL or its query (old and new HTTP semantic conventions).
URL_ATTRIBUTES = frozenset({"http.url", "http.target", "url.full", "url.query"})


def redact(text: str) -> str:
    """``text`` with every secret query value and URL user-info replaced by REDACTED."""
    if "=" not in text and "@" not in text:  # neither pattern can match: skip both scans (most log lines)
        return text
    text = _SECRET_QUERY_VALUE.sub(rf"\g<1>{REDACTED}", text)
    return _URL_USERINFO.sub(rf"\g<1>{REDACTED}@", text)


def _redact_query(query: str) -> str:
    """A bare query string (url.query has no leading ``?``)."""
    return redact("?" + query)[1:]


def redact_span_urls(span: Any) -> None:
    """Rewrite the URL attributes set on ``span`` so far. Most spans have none: one pass over their
    keys finds that, where a look-up of each name would raise and catch a KeyError per missing one."""
    if not span.is_recording():
        return
    attributes = getattr(span, "attributes", None) or {}
    for name in URL_ATTRIBUTES.intersection(attributes):
        value = attributes[name]
        if isinstance(value, str):
            redacted = _redact_query(value) if name == "url.query" else redact(value)
            if redacted != value:
                span.set_attribute(name, redacted)


class RedactUrlAttributes(SpanProcessor):
    """Redacts every span's URL attributes as it starts: FastAPI and the httpx instrumentation set them
    when they start a span, before any exporter can see it."""

    def on_start(self, span: Any, parent_context: Any = None) -> None:
        redact_span_urls(span)
