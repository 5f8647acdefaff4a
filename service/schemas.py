"""Request and response bodies of the API, with the size limits that protect the service."""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field, field_validator

MAX_PROMPT_CHARS = 2000
MAX_PARAMETERS_JSON_BYTES = 8 * 1024
MAX_PARAMETERS_KEYS = 32

Status = Literal["pending", "processing", "completed", "failed"]


def _has_nul(value: Any) -> bool:
    """Whether a JSON value holds a NUL character in any string or key."""
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(item) for item in value)
    return False


class GenerationRequest(BaseModel):
    """Body of POST /api/v1/generations."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    model_id: str = Field(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9][A-Za-z0-9._\-/]*$")
    prompt: str = Field(min_length=1, max_length=MAX_PROMPT_CHARS)
    negative_prompt: str | None = Field(default=None, max_length=MAX_PROMPT_CHARS)
    reference_image_url: AnyHttpUrl | None = Field(default=None)
    parameters: dict[str, Any] = Field(default_factory=dict)

    @field_validator("model_id", "prompt", "negative_prompt")
    @classmethod
    def _no_nul_characters(cls, text: str | None) -> str | None:
        if _has_nul(text):  # PostgreSQL's text cannot store them
            raise ValueError("must not contain NUL characters")
        return text

    @field_validator("reference_image_url")
    @classmethod
    def _url_not_too_long(cls, url: AnyHttpUrl | None) -> AnyHttpUrl | None:
        if url is not None and len(str(url)) > 2048:
            raise ValueError("reference_image_url must be at most 2048 characters")
        return url

    @field_validator("parameters")
    @classmethod
    def _parameters_bounded(cls, parameters: dict[str, Any]) -> dict[str, Any]:
        if len(parameters) > MAX_PARAMETERS_KEYS:
            raise ValueError(f"parameters may have at most {MAX_PARAMETERS_KEYS} keys")
        encoded = json.dumps(parameters)
        if len(encoded) > MAX_PARAMETERS_JSON_BYTES:
            raise ValueError(f"parameters must be at most {MAX_PARAMETERS_JSON_BYTES} bytes as JSON")
        if _has_nul(parameters):  # PostgreSQL's jsonb cannot store them
            raise ValueError("parameters must not contain NUL characters")
        return parameters

    def fingerprint_source(self) -> str:
        """Canonical JSON of the request, to tell a retried request from a different one with the same key."""
        return json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))


class Generation(BaseModel):
    """A generation as the API returns it."""

    id: uuid.UUID
    status: Status
    model_id: str
    prompt: str
    negative_prompt: str | None
    reference_image_url: str | None
    parameters: dict[str, Any]
    image_url: str | None
    storage_path: str | None
    error: str | None
    created_at: datetime
    updated_at: datetime
    completed_at: datetime | None

    @classmethod
    def from_row(cls, row: dict) -> Generation:
        return cls.model_validate({name: row.get(name) for name in cls.model_fields})


class GenerationPage(BaseModel):
    items: list[Generation]
    limit: int
    offset: int
    total: int


class FieldProblem(BaseModel):
    field: str
    message: str


class Problem(BaseModel):
    """Every error body: a sentence a person can act on, plus the fields at fault for a 422."""

    detail: str
    errors: list[FieldProblem] | None = None


class Readiness(BaseModel):
    status: Literal["ready", "unavailable"]
    profile: str
    dependencies: dict[str, dict[str, Any]]
    breakers: dict[str, dict[str, Any]]
    timings: dict[str, float] = Field(description="the effective timings and resilience numbers this service "
                                                  "runs with, for outside checks to judge against")
