"""Request and response bodies of the API, with the size limits that protect the service."""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field, field_validator, model_validator

from service.json_safety import json_problem
from service.url_safety import url_problem

MAX_PROMPT_CHARS = 2000
MAX_URL_CHARS = 2048

Status = Literal["pending", "processing", "completed", "failed"]
ImageSizePreset = Literal["square_hd", "square", "portrait_4_3", "portrait_16_9", "landscape_4_3", "landscape_16_9"]


def _storable(value: Any) -> Any:
    """Refuse what PostgreSQL cannot store, before any other validation looks at the value."""
    if problem := json_problem(value):
        raise ValueError(problem)
    return value


class ImageSize(BaseModel):
    """An explicit image size in pixels (FAL accepts more; this service bounds it)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    width: int = Field(ge=64, le=2048)
    height: int = Field(ge=64, le=2048)


class FalParameters(BaseModel):
    """The model inputs a client may set, as fal-ai/flux/dev names them; each is forwarded to FAL as given.

    prompt, negative_prompt and the reference image have their own fields of the request, and
    anything not listed here is refused rather than forwarded unchecked. null means the model's default.
    """

    model_config = ConfigDict(extra="forbid", strict=True)

    num_images: int | None = Field(default=None, ge=1, le=4, description="Images to generate (the first is kept).")
    image_size: ImageSizePreset | ImageSize | None = Field(default=None, description="A preset name or width/height.")
    seed: int | None = Field(default=None, ge=0, le=2**32 - 1, description="Same seed and inputs, same image.")
    guidance_scale: float | None = Field(default=None, ge=1, le=20, allow_inf_nan=False,
                                  description="How closely the image follows the prompt.")
    num_inference_steps: int | None = Field(default=None, ge=1, le=50)
    enable_safety_checker: bool | None = None
    output_format: Literal["jpeg", "png"] | None = None
    acceleration: Literal["none", "regular", "high"] | None = None

    @model_validator(mode="before")
    @classmethod
    def _only_known_names(cls, values: Any) -> Any:
        if isinstance(values, dict):
            unknown = [key for key in values if key not in cls.model_fields]
            if unknown:
                name = unknown[0] if len(unknown[0]) <= 64 else unknown[0][:64] + "..."
                raise ValueError(f"unknown parameter {name!r}; accepted: {', '.join(cls.model_fields)}")
        return values

    def as_sent(self) -> dict[str, Any]:
        """The parameters the client set (nulls left out), as JSON values: what is stored and forwarded."""
        return self.model_dump(mode="json", exclude_none=True)


class GenerationRequest(BaseModel):
    """Body of POST /api/v1/generations."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    model_id: str = Field(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9][A-Za-z0-9._\-/]*$")
    prompt: str = Field(min_length=1, max_length=MAX_PROMPT_CHARS)
    negative_prompt: str | None = Field(default=None, max_length=MAX_PROMPT_CHARS)
    reference_image_url: AnyHttpUrl | None = Field(
        default=None, description="An http(s) image on the public internet: no credentials, no loopback, "
                                  "private, link-local or otherwise non-public address.")
    parameters: FalParameters = Field(default_factory=FalParameters)

    _storable_fields = field_validator("model_id", "prompt", "negative_prompt", "reference_image_url",
                                       "parameters", mode="before")(_storable)

    @field_validator("reference_image_url", mode="before")
    @classmethod
    def _public_url_as_sent(cls, url: Any) -> Any:
        if isinstance(url, str):
            if len(url) > MAX_URL_CHARS:
                raise ValueError(f"must be at most {MAX_URL_CHARS} characters")
            if problem := url_problem(url):
                raise ValueError(problem)
        return url

    @field_validator("reference_image_url")
    @classmethod
    def _public_url_as_parsed(cls, url: AnyHttpUrl | None) -> AnyHttpUrl | None:
        """Checked again as normalised, since that is the text forwarded to FAL."""
        if url is not None and (problem := url_problem(str(url))):
            raise ValueError(problem)
        return url

    def fingerprint_source(self) -> str:
        """Canonical JSON of the request, to tell a retried request from a different one with the same key."""
        body = {**self.model_dump(mode="json", exclude={"parameters"}), "parameters": self.parameters.as_sent()}
        return json.dumps(body, sort_keys=True, separators=(",", ":"))


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


class DependencyState(BaseModel):
    state: Literal["unknown", "up", "down"]
    checked_at: float | None = Field(description="unix time of the last check")
    latency_s: float | None
    reason: str | None = Field(description="why the last check failed: timeout, connection_refused, unreachable, "
                                           "bad_status or check_failed (the details are in the service log)")


class Readiness(BaseModel):
    status: Literal["ready", "unavailable"]
    profile: str
    dependencies: dict[str, DependencyState]
    breakers: dict[str, dict[str, Any]]
    timings: dict[str, float] = Field(description="the effective timings and resilience numbers this service "
                                                  "runs with, for outside checks to judge against")
