"""The FastAPI application: routes, middleware, error handlers, and start-up/shut-down of every part."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
import uuid
from collections.abc import Awaitable, Callable
from contextlib import asynccontextmanager
from typing import TypeVar

from fastapi import Depends, FastAPI, Header, Query, Request, Response
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from opentelemetry import trace
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.exceptions import HTTPException as StarletteHTTPException

from service.auth import AuthError, TokenVerifier
from service.db import Database, NewGeneration
from service.errors import (
    DEPENDENCY_REASONS,
    IdempotencyConflict,
    PoolExhausted,
    ServiceUnavailable,
    UserLimitReached,
)
from service.fal_gateway import FalGateway
from service.health import HealthMonitor
from service.json_safety import MAX_JSON_DEPTH
from service.logs import user_id_var
from service.metrics import Metrics
from service.middleware import BodySizeLimit, RequestObserver
from service.resilience import Dependencies, ResilienceProfile, build_profile
from service.schemas import Generation, GenerationPage, GenerationRequest, Problem, Readiness
from service.settings import Settings
from service.storage_gateway import StorageGateway
from service.telemetry import FASTAPI_TELEMETRY_OFF, current_traceparent, service_version, setup_tracing
from service.upstream import upstream_call
from service.worker import Worker

log = logging.getLogger(__name__)
MAX_IDEMPOTENCY_KEY_CHARS = 255
T = TypeVar("T")

# What the OpenAPI schema promises besides success, so clients (and the fuzz tests) can rely on it.
_UNAVAILABLE = {"model": Problem, "description": "A dependency is unavailable; see Retry-After.",
                "headers": {"Retry-After": {"schema": {"type": "integer"}},
                            "X-Genchaos-503-Reason": {"schema": {"type": "string"}}}}
_API_ERRORS = {400: {"model": Problem, "description": "More than one Authorization header."},
               401: {"model": Problem, "description": "Missing or invalid access token."},
               413: {"model": Problem, "description": "Request body too large."},
               422: {"model": Problem, "description": "Invalid request."}, 503: _UNAVAILABLE}


def create_app(settings: Settings | None = None) -> FastAPI:
    """The service as an ASGI app; everything starts in the lifespan (so importing it is cheap)."""
    settings = settings or Settings()
    metrics = Metrics()
    metrics.build_info.labels(service_version(), settings.profile).set(1)
    verifier = TokenVerifier(settings.supabase_jwt_secret, settings.supabase_jwt_issuer,
                             settings.legacy_tokens_enabled, settings.max_token_bytes)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        db = await Database.connect(
            settings.database_url, min_size=settings.db_pool_min_size, max_size=settings.db_pool_max_size,
            connect_timeout_s=settings.db_connect_timeout_s, command_timeout_s=settings.db_command_timeout_s,
            startup_timeout_s=settings.startup_timeout_s)
        fal = FalGateway(key=settings.fal_key, model_id=settings.fal_model_id, metrics=metrics,
                         poll_interval_s=settings.fal_poll_interval_s,
                         download_timeout_s=settings.download_timeout_s)
        storage = await StorageGateway.create(
            url=settings.supabase_url, service_key=settings.supabase_service_key, bucket=settings.storage_bucket,
            metrics=metrics, timeout_s=settings.storage_timeout_s,
            signed_url_expires_s=settings.signed_url_expires_s)

        async def check_database() -> None:
            try:
                async with upstream_call(metrics, "database", "check"):
                    depth = await db.count_unfinished(10**9)
            except PoolExhausted:
                return  # every connection busy answering requests: the database is up, the service is busy
            metrics.queue_depth.set(depth)

        health = HealthMonitor(
            {"database": check_database, "fal": lambda: fal.check(settings.dependency_check_timeout_s),
             "storage": storage.check},
            metrics, interval_s=settings.health_refresh_interval_s, timeout_s=settings.dependency_check_timeout_s)
        await health.refresh()  # creates the bucket when storage is up; otherwise the first upload will
        profile = build_profile(Dependencies(settings, metrics, db, fal, storage, health))
        worker = Worker(profile)
        app.state.profile, app.state.worker, app.state.health = profile, worker, health
        tasks = [asyncio.create_task(health.run(), name="health"), asyncio.create_task(worker.run(), name="worker")]
        log.info("service started", extra={"profile": settings.profile})
        try:
            yield
        finally:
            log.info("shutting down: stop claiming, finish or release in-flight generations")
            await worker.stop()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await fal.close()
            await storage.close()
            await db.close()
            tracing.shutdown()

    tracing = setup_tracing(settings)
    app = FastAPI(title="genchaos reference generation service", lifespan=lifespan,
                  telemetry=FASTAPI_TELEMETRY_OFF)
    app.state.settings, app.state.metrics = settings, metrics
    _install_handlers(app, metrics)
    _install_routes(app, settings, metrics, verifier)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    tracing.instrument(app)
    return app


def _install_handlers(app: FastAPI, metrics: Metrics) -> None:
    app.add_middleware(RequestObserver, metrics=metrics)

    @app.exception_handler(ServiceUnavailable)
    async def unavailable(request: Request, error: ServiceUnavailable) -> JSONResponse:
        metrics.http_503.labels(error.reason.value).inc()
        trace.get_current_span().set_attribute("genchaos.503_reason", error.reason.value)
        log.warning("503 %s", error.reason.value, extra={"reason": error.reason.value})
        return JSONResponse({"detail": error.message}, 503, headers=error.headers())

    @app.exception_handler(AuthError)
    async def unauthorized(request: Request, error: AuthError) -> JSONResponse:
        log.info("rejected credentials: %s", error.message)
        return JSONResponse({"detail": error.message}, error.status_code,
                            headers={"WWW-Authenticate": error.www_authenticate()})

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, error: RequestValidationError) -> JSONResponse:
        problems = [{"field": ".".join(str(p) for p in e["loc"][1:]) or "body", "message": e["msg"]}
                    for e in error.errors()]
        message = "; ".join(f"{p['field']}: {p['message']}" for p in problems)
        return JSONResponse({"detail": f"Invalid request: {message}", "errors": problems}, 422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException) -> Response:
        if isinstance(error.__cause__, RecursionError):  # FastAPI's JSON parser hit Python's recursion limit
            return JSONResponse({"detail": "Invalid request: the body nests objects or arrays too deeply "
                                           f"(at most {MAX_JSON_DEPTH} levels are accepted)."}, 400)
        return await http_exception_handler(request, error)

    @app.exception_handler(UserLimitReached)
    async def too_many(request: Request, error: UserLimitReached) -> JSONResponse:
        retry_after = max(1, math.ceil(request.app.state.settings.unavailable_retry_after_s))
        return JSONResponse({"detail": f"Too many generations in progress: {error}. Wait for one to finish, "
                                       "then try again."}, 429, headers={"Retry-After": str(retry_after)})

    @app.exception_handler(IdempotencyConflict)
    async def conflict(request: Request, error: IdempotencyConflict) -> JSONResponse:
        return JSONResponse({"detail": str(error)}, 409)


def _install_routes(app: FastAPI, settings: Settings, metrics: Metrics, verifier: TokenVerifier) -> None:
    async def current_user(request: Request, authorization: str | None = Header(
            default=None, description="Bearer <Supabase access token>; exactly one such header.")) -> uuid.UUID:
        # `authorization` documents the header; every copy is read from the request so that two are refused.
        user_id = verifier.user_id_from_headers(request.headers.getlist("authorization"))
        user_id_var.set(str(user_id))
        return user_id

    async def profile_of(request: Request) -> ResilienceProfile:
        return request.app.state.profile

    @app.post("/api/v1/generations", status_code=202, response_model=Generation,
              responses={**_API_ERRORS, 200: {"model": Generation, "description": "Same Idempotency-Key: the "
                                              "generation created earlier."},
                         400: {"model": Problem, "description": "The body cannot be parsed (e.g. nested too "
                               "deep), or more than one Authorization header."},
                         409: {"model": Problem, "description": "Idempotency-Key reused for another request."},
                         429: {"model": Problem, "description": "Hardened profile: this user already has "
                               "GENCHAOS_MAX_UNFINISHED_PER_USER unfinished generations; see Retry-After.",
                               "headers": {"Retry-After": {"description": "Seconds to wait before retrying.",
                                                           "schema": {"type": "integer"}}}}})
    async def create_generation(
        body: GenerationRequest, response: Response, user_id: uuid.UUID = Depends(current_user),
        profile: ResilienceProfile = Depends(profile_of),
        idempotency_key: str | None = Header(default=None, min_length=1, max_length=MAX_IDEMPOTENCY_KEY_CHARS),
    ) -> Generation:
        fingerprint = hashlib.sha256(body.fingerprint_source().encode()).hexdigest()
        new = NewGeneration(
            user_id=user_id, model_id=body.model_id, prompt=body.prompt, negative_prompt=body.negative_prompt,
            reference_image_url=str(body.reference_image_url) if body.reference_image_url else None,
            parameters=body.parameters.as_sent(), idempotency_key=idempotency_key, request_fingerprint=fingerprint,
            traceparent=current_traceparent())

        async def admit_and_insert() -> tuple[dict, bool]:
            await profile.admit()
            return await profile.insert(new)

        row, created = await _as_503(profile, admit_and_insert)
        if not created:
            if row["request_fingerprint"] != fingerprint:
                raise IdempotencyConflict("Idempotency-Key was already used for a different request.")
            response.status_code = 200
        else:
            app.state.worker.notify()
        return Generation.from_row(row)

    @app.get("/api/v1/generations/{generation_id}", response_model=Generation,
             responses={**_API_ERRORS, 404: {"model": Problem, "description": "No such generation of yours."}})
    async def get_generation(generation_id: str, user_id: uuid.UUID = Depends(current_user),
                             profile: ResilienceProfile = Depends(profile_of)) -> Generation | JSONResponse:
        try:
            wanted = uuid.UUID(generation_id)
        except ValueError:
            return _not_found()
        row = await _as_503(profile, lambda: profile.query(lambda: profile.deps.db.get_generation(user_id, wanted)))
        return Generation.from_row(row) if row else _not_found()

    @app.get("/api/v1/generations", response_model=GenerationPage, responses=_API_ERRORS)
    async def list_generations(
        user_id: uuid.UUID = Depends(current_user), profile: ResilienceProfile = Depends(profile_of),
        limit: int = Query(20, ge=1, le=100), offset: int = Query(0, ge=0, le=1_000_000),
    ) -> GenerationPage:
        rows, total = await _as_503(
            profile, lambda: profile.query(lambda: profile.deps.db.list_generations(user_id, limit, offset)))
        return GenerationPage(items=[Generation.from_row(r) for r in rows], limit=limit, offset=offset, total=total)

    @app.get("/healthz")
    async def healthz() -> dict:
        return {"status": "ok"}

    @app.get("/readyz", response_model=Readiness, responses={503: {**_UNAVAILABLE, "model": Readiness}})
    async def readyz(request: Request) -> JSONResponse:
        health: HealthMonitor = request.app.state.health
        profile: ResilienceProfile = request.app.state.profile
        dependencies = {name: h.as_dict() for name, h in health.health.items()}
        down = [name for name, h in health.health.items() if h.up is False]
        body = {"status": "unavailable" if down else "ready", "profile": profile.name,
                "dependencies": dependencies, "breakers": profile.breaker_snapshots(),
                "timings": settings.published_timings()}
        if not down:
            return JSONResponse(body)
        # Same headers as every 503, but not counted in genchaos_http_503_total: only API refusals are.
        unavailable = ServiceUnavailable(DEPENDENCY_REASONS[down[0]], settings.unavailable_retry_after_s)
        return JSONResponse(body, 503, headers=unavailable.headers())

    @app.get("/metrics", response_class=Response,
             responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}},
                              "description": "Prometheus text exposition."}})
    async def prometheus_metrics() -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)


async def _as_503(profile: ResilienceProfile, work: Callable[[], Awaitable[T]]) -> T:
    """Run request work, turning dependency failures into the profile's 503 (never a 500 for an outage)."""
    try:
        return await work()
    except ServiceUnavailable:
        raise
    except Exception as error:
        unavailable = profile.to_unavailable(error)
        if unavailable is None:
            raise
        log.warning("request refused: %s", type(error).__name__, extra={"error": str(error)[:200]})
        raise unavailable from error


def _not_found() -> JSONResponse:
    return JSONResponse({"detail": "Generation not found."}, 404)
