"""The JSON request bodies storage3 sends, validated the way storage-api's schemas do."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class _Body(BaseModel):
    model_config = ConfigDict(extra="ignore")


class BucketCreate(_Body):
    name: str = Field(min_length=1)
    id: str | None = None
    public: bool = False
    file_size_limit: int | str | None = None
    allowed_mime_types: list[str] | None = None


class BucketUpdate(_Body):
    public: bool | None = None
    file_size_limit: int | str | None = None
    allowed_mime_types: list[str] | None = None


class SignRequest(_Body):
    expiresIn: int = Field(ge=1)


class SignManyRequest(_Body):
    expiresIn: int = Field(ge=1)
    paths: list[str] = Field(min_length=1)


class SortBy(_Body):
    column: Literal["name", "created_at", "updated_at", "last_accessed_at"] = "name"
    order: Literal["asc", "desc", "ASC", "DESC"] = "asc"


class ListRequest(_Body):
    prefix: str
    limit: int = Field(default=100, ge=1)
    offset: int = Field(default=0, ge=0)
    sortBy: SortBy = SortBy()
    search: str = ""


class RemoveRequest(_Body):
    prefixes: list[str] = Field(min_length=1)


class MoveOrCopyRequest(_Body):
    bucketId: str
    sourceKey: str
    destinationKey: str
    destinationBucket: str | None = None
