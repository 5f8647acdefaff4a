"""Settings read once from LUMEN_* environment variables.

fal-client reads its own variables (FAL_KEY, FAL_QUEUE_RUN_HOST, FAL_RUN_HOST) and httpx reads
SSL_CERT_FILE; lumen leaves those alone.
"""

from __future__ import annotations

import os
from dataclasses import dataclass


def _text(name: str, default: str | None = None) -> str:
    value = os.environ.get(name, default)
    if value is None or value == "":
        raise SystemExit(f"lumen: environment variable {name} is required")
    return value


def _number(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise SystemExit(f"lumen: {name} must be a number, got {raw!r}") from None
    if value < 0:
        raise SystemExit(f"lumen: {name} must not be negative")
    return value


def _flag(name: str) -> bool:
    return os.environ.get(name, "false").strip().lower() in {"1", "true", "yes", "on"}


@dataclass(frozen=True)
class Config:
    db_dsn: str
    supabase_url: str
    supabase_key: str
    jwt_secret: str
    jwt_issuer: str
    bucket: str
    model: str
    allow_legacy_tokens: bool
    breaker_threshold: int
    breaker_reset_s: float
    retries: int
    retry_delay_s: float
    fal_timeout_s: float
    fal_check_timeout_s: float
    retry_after_s: float
    db_timeout_s: float
    storage_timeout_s: float

    @classmethod
    def from_env(cls) -> Config:
        return cls(
            db_dsn=_text("LUMEN_DB_DSN"),
            supabase_url=_text("LUMEN_SUPABASE_URL"),
            supabase_key=_text("LUMEN_SUPABASE_KEY"),
            jwt_secret=_text("LUMEN_JWT_SECRET"),
            jwt_issuer=_text("LUMEN_JWT_ISSUER"),
            bucket=_text("LUMEN_BUCKET", "lumen-images"),
            model=_text("LUMEN_MODEL", "fal-ai/flux/dev"),
            allow_legacy_tokens=_flag("LUMEN_ALLOW_LEGACY_TOKENS"),
            breaker_threshold=max(1, int(_number("LUMEN_BREAKER_THRESHOLD", 5))),
            breaker_reset_s=_number("LUMEN_BREAKER_RESET_S", 30),
            retries=max(1, int(_number("LUMEN_RETRIES", 3))),
            retry_delay_s=_number("LUMEN_RETRY_DELAY_S", 5),
            fal_timeout_s=_number("LUMEN_FAL_TIMEOUT_S", 300),
            fal_check_timeout_s=_number("LUMEN_FAL_CHECK_TIMEOUT_S", 5),
            retry_after_s=_number("LUMEN_RETRY_AFTER_S", 60),
            db_timeout_s=_number("LUMEN_DB_TIMEOUT_S", 5),
            storage_timeout_s=_number("LUMEN_STORAGE_TIMEOUT_S", 10),
        )
