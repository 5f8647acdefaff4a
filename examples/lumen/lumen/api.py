"""HTTP API: submit a generation, read one, list yours, and a liveness check.

Before accepting a job, every POST checks the breaker and then, live, the database, FAL and
storage (the report's per-request dependency checks); a failure is a 503 with the report's sentence.
"""

from __future__ import annotations

import logging
import math
import uuid
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from fastapi import Depends, FastAPI, HTTPException, Request
from pydantic import BaseModel, Field, field_validator

from lumen.auth import current_user
from lumen.breaker import Breaker
from lumen.config import Config
from lumen.jobs import Jobs
from lumen.upstreams import Fal, Storage
from lumen.worker import Worker

log = logging.getLogger("lumen.api")

FAL_DOWN = "AI generation service temporarily unavailable. Please try again later."
DATABASE_DOWN = "Database service temporarily unavailable. Please try again later."
STORAGE_DOWN = "File storage service temporarily unavailable. Please try again later."
HIGH_LOAD = "AI generation service is experiencing high load. Please try again in a few minutes."


@dataclass
class Lumen:
    config: Config
    jobs: Jobs
    fal: Fal
    storage: Storage
    breaker: Breaker
    worker: Worker


class NewImage(BaseModel):
    model: str = Field(min_length=1, max_length=200)
    prompt: str = Field(min_length=1, max_length=4000)

    @field_validator("model", "prompt")
    @classmethod
    def storable(cls, value: str) -> str:
        if "\x00" in value:
            raise ValueError("must not contain NUL characters")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError("must be valid Unicode text") from None
        return value


def unavailable(sentence: str, retry_after_s: float) -> HTTPException:
    return HTTPException(status_code=503, detail=sentence,
                         headers={"Retry-After": str(max(1, math.ceil(retry_after_s)))})


def lumen_of(request: Request) -> Lumen:
    return request.app.state.lumen


async def check_dependencies(lumen: Lumen) -> None:
    """The report's checks, one after the other, on every submission."""
    retry_after = lumen.config.retry_after_s
    checks = (("database", lumen.jobs.ping, DATABASE_DOWN),
              ("fal", lumen.fal.reachable, FAL_DOWN),
              ("storage", lumen.storage.check, STORAGE_DOWN))
    for name, check, sentence in checks:
        try:
            await check()
        except Exception as error:
            log.warning("dependency check %s failed: %r", name, error)
            raise unavailable(sentence, retry_after) from None


async def database(lumen: Lumen, call: Any) -> Any:
    """Run a read or write; losing the database is a 503, not a 500."""
    try:
        return await call
    except Exception as error:
        log.warning("database call failed: %r", error)
        raise unavailable(DATABASE_DOWN, lumen.config.retry_after_s) from None


def create_app(config: Config) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI):
        jobs = await Jobs.open(config.db_dsn, config.db_timeout_s)
        if jobs.requeued:
            log.info("put %d unfinished jobs back in the queue", jobs.requeued)
        storage = await Storage.connect(config.supabase_url, config.supabase_key, config.bucket,
                                        config.storage_timeout_s)
        try:
            await storage.ensure_bucket()
        except Exception as error:  # the worker creates it before its first upload
            log.warning("could not create bucket %s yet: %r", config.bucket, error)
        fal = Fal(config.fal_check_timeout_s)
        breaker = Breaker(config.breaker_threshold, config.breaker_reset_s)
        worker = Worker(config, jobs, fal, storage, breaker)
        app.state.lumen = Lumen(config, jobs, fal, storage, breaker, worker)
        worker.start()
        log.info("lumen ready (model %s, bucket %s)", config.model, config.bucket)
        try:
            yield
        finally:
            await worker.stop()
            await fal.close()
            await storage.close()
            await jobs.close()

    app = FastAPI(title="lumen", lifespan=lifespan)

    @app.get("/health")
    async def health() -> dict[str, bool]:
        return {"ok": True}

    @app.post("/v2/images", status_code=202)
    async def submit(body: NewImage, request: Request, user: str = Depends(current_user)) -> dict[str, Any]:
        lumen = lumen_of(request)
        if body.model != lumen.config.model:
            raise HTTPException(status_code=422, detail=f"Unknown model {body.model!r}")
        if lumen.breaker.state == "open":
            raise unavailable(HIGH_LOAD, lumen.breaker.seconds_until_half_open())
        await check_dependencies(lumen)
        job = await database(lumen, lumen.jobs.add(user, body.model, body.prompt))
        lumen.worker.poke()
        return {"job_id": job["job_id"], "state": job["state"]}

    @app.get("/v2/images/{job_id}")
    async def get_one(job_id: str, request: Request, user: str = Depends(current_user)) -> dict[str, Any]:
        lumen = lumen_of(request)
        try:
            wanted = uuid.UUID(job_id)
        except ValueError:
            raise HTTPException(status_code=404, detail="Image job not found") from None
        job = await database(lumen, lumen.jobs.one(user, wanted))
        if job is None:
            raise HTTPException(status_code=404, detail="Image job not found")
        return job

    @app.get("/v2/images")
    async def list_mine(request: Request, user: str = Depends(current_user)) -> dict[str, Any]:
        lumen = lumen_of(request)
        return {"data": await database(lumen, lumen.jobs.of_owner(user))}

    return app
