"""Routes of the FAL emulator: the queue protocol, a run host, generated files and the admin API.

Queue paths follow fal-client 1.0.3 (protocol reference A.5): ``POST /{app}`` submits, and
``/{owner}/{alias}/requests/{id}[/status|/cancel]`` address a request. ``POST /_run/{app}`` is the
run host (point ``FAL_RUN_HOST`` at ``host:port/_run``); files live under ``/files/``.
"""

from __future__ import annotations

import asyncio
import functools
import json
import math
import random
import re
import secrets
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route

from chaos.emulators.admin import RequestLog, admin_routes
from chaos.emulators.fal.behaviour import Behaviour, BehaviourError
from chaos.emulators.fal.jobs import COMPLETED, IN_QUEUE, Job, JobStore, Outcome
from chaos.emulators.fal.png import gradient_png
from chaos.emulators.fal.responses import (
    IMAGE_SIZE,
    REQUEST_ID_HEADER,
    app_error,
    fal_error,
    fal_json,
    ingress_error,
    queue_urls,
    result_body,
    status_body,
)

GENERATION_ID_HEADER = "x-genchaos-generation-id"  # logged when a service sends it: a second witness only
PROMPT_LOG_CHARS = 200
JOB_KINDS = ("submit", "run")  # calls whose body asks for a job: their prompt is logged
APP_NAMESPACES = ("workflows", "comfy")  # fal keeps these prefixes in request URLs
LOGS_VALUES = {"true": True, "1": True, "false": False, "0": False}
IMAGE = gradient_png(IMAGE_SIZE, IMAGE_SIZE)
RUN_POLL_S = 0.02
MAX_BODY_BYTES = 1 << 20  # model arguments; a larger body is refused with 413 before it is all read

Handler = Callable[["Emulator", Request], Awaitable[Response]]


class Emulator:
    """The state of one emulator: behaviour, its one random generator, jobs and the request log."""

    def __init__(self, seed: int | None, api_key: str | None = None) -> None:
        self.start_seed = seed
        self.api_key = api_key
        self.jobs = JobStore()
        self.request_log = RequestLog()
        self.reset()

    def reset(self) -> dict[str, Any]:
        """Default behaviour and the start seed again (jobs are kept); returns the behaviour, which
        is what ``POST /_emulator/reset`` answers after the admin API cleared the log."""
        self.behaviour = Behaviour(seed=self.start_seed)
        self.rng = random.Random(self.start_seed)
        self.submits_since_change = 0
        return self.behaviour.model_dump()

    def change_behaviour(self, changes: Any) -> None:
        self.behaviour = self.behaviour.updated(changes)
        self.submits_since_change = 0
        if "seed" in changes:
            self.rng.seed(self.behaviour.seed)

    def chance(self, rate: float) -> bool:
        """True with probability ``rate``; draws from the generator only when the fault is on."""
        return rate > 0 and self.rng.random() < rate

    def submit_fails(self) -> bool:
        """Whether this submit gets an app error: at random, or with even spacing the n-th submit since
        the behaviour changed fails when it brings the count of failures up to floor(n x rate)."""
        rate = self.behaviour.submit_error_rate
        if self.behaviour.submit_error_spacing == "random":
            return self.chance(rate)
        self.submits_since_change += 1
        n = self.submits_since_change
        return math.floor(n * rate + 1e-9) > math.floor((n - 1) * rate + 1e-9)

    def new_job(self, app_id: str, arguments: dict[str, Any]) -> Job:
        behaviour = self.behaviour
        if self.chance(behaviour.stuck_rate):
            outcome = Outcome.STUCK
        elif self.chance(behaviour.job_failure_rate):
            outcome = Outcome.FAILURE
        else:
            outcome = Outcome.SUCCESS
        seed = arguments.get("seed")
        if not isinstance(seed, int) or isinstance(seed, bool):
            seed = self.rng.randrange(2**32)
        prompt = arguments.get("prompt")
        job = Job(
            request_id=str(uuid.uuid4()),
            app_id=app_id,
            submitted_at=time.time(),
            queue_time_s=behaviour.queue_time_s,
            processing_time_s=behaviour.processing_time_s,
            outcome=outcome,
            prompt=prompt if isinstance(prompt, str) else None,
            seed=seed,
        )
        self.jobs.add(job)
        return job


def _emulator(request: Request) -> Emulator:
    return request.app.state.emulator


def _new_request_id() -> str:
    return str(uuid.uuid4())


def _base_url(request: Request) -> str:
    """Scheme and Host header of this request: where the client connected, even through a proxy."""
    return f"{request.url.scheme}://{request.headers.get('host', request.url.netloc)}/"


def _key_refusal(emulator: Emulator, request: Request) -> Response | None:
    """fal's 401 for a call without a key, with a key other than the emulator's, or while the key is
    revoked (the ``key_revoked`` behaviour); None when the call may go on."""
    match = re.fullmatch(r"Key (\S+)", request.headers.get("authorization", ""))
    if match is None:
        detail = "Authentication is required: send 'Authorization: Key <key>'"
    elif emulator.behaviour.key_revoked or (emulator.api_key is not None
                                            and not secrets.compare_digest(match[1], emulator.api_key)):
        detail = "Invalid API key: the key is unknown or has been revoked"
    else:
        return None
    return fal_error(401, detail, _new_request_id(), "unauthorized")


def protocol_call(kind: str, *, queue: bool = True) -> Callable[[Handler], Callable[[Request], Awaitable[Response]]]:
    """Wrap a protocol endpoint: added latency, the request log, and (for queue calls) ingress
    faults and the API key check, in the order a real request meets them."""

    def decorate(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        @functools.wraps(handler)
        async def endpoint(request: Request) -> Response:
            emulator = _emulator(request)
            arrived = time.time()
            request.state.request_id = request.path_params.get("request_id")
            request.state.body = await _bounded_body(request) if kind in JOB_KINDS else None
            if emulator.behaviour.latency_s:
                await asyncio.sleep(emulator.behaviour.latency_s)
            if queue and emulator.chance(emulator.behaviour.ingress_error_rate):
                response: Response = ingress_error(emulator.behaviour.ingress_error_status)
            elif queue and (refusal := _key_refusal(emulator, request)) is not None:
                response = refusal
            else:
                response = await handler(emulator, request)
            emulator.request_log.record(
                arrived, request.method, request.url.path, response.status_code, kind,
                request_id=request.state.request_id, generation_id=request.headers.get(GENERATION_ID_HEADER),
                traceparent=request.headers.get("traceparent"),
                **({"prompt": _prompt(request.state.body)} if kind in JOB_KINDS else {}),
            )
            return response

        return endpoint

    return decorate


def _app_id(app_path: str) -> str | None:
    """The ``owner/alias`` (namespace kept) that request URLs are built on; None if there is none."""
    parts = [part for part in app_path.split("/") if part]
    size = 3 if parts and parts[0] in APP_NAMESPACES else 2
    return "/".join(parts[:size]) if len(parts) >= size else None


async def _admit(emulator: Emulator, request: Request) -> Job | Response:
    """Everything a submit or run meets before a job exists: rate limits, app errors, the body."""
    app_id = _app_id(request.path_params["app"])
    if app_id is None:
        return fal_error(404, f"Application '{request.path_params['app']}' not found: expected owner/alias",
                         _new_request_id())
    behaviour = emulator.behaviour
    if emulator.chance(behaviour.rate_limit_rate):
        return fal_error(429, "Rate limit exceeded, retry later", _new_request_id(), "rate_limited")
    if emulator.submit_fails():
        return app_error(behaviour.submit_error_status, _new_request_id())
    body = request.state.body
    if body is None:
        return fal_error(413, f"Request body larger than {MAX_BODY_BYTES} bytes", _new_request_id())
    try:
        arguments = json.loads(body or b"{}")
    except ValueError as exc:
        return fal_error(422, f"Request body is not valid JSON: {exc}", _new_request_id())
    except RecursionError:
        return fal_error(422, "Request body nests objects or arrays too deeply", _new_request_id())
    if not isinstance(arguments, dict):
        return fal_error(422, "Request body must be a JSON object of model arguments", _new_request_id())
    job = emulator.new_job(app_id, arguments)
    request.state.request_id = job.request_id
    return job


async def _bounded_body(request: Request) -> bytes | None:
    """The request body, or None once it passes MAX_BODY_BYTES (read no further: memory stays bounded)."""
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def _outcome(job: Job, request: Request) -> Response:
    """A completed job's result, or the error it ended with."""
    error = job.error()
    if error is not None:
        return fal_error(error.http_status, error.detail, job.request_id, error.error_type)
    return fal_json(result_body(job, _base_url(request)), job.request_id)


def _addressed_job(emulator: Emulator, request: Request) -> Job | Response:
    """The job a by-id call names, or fal's 404 when the app has no such request."""
    request_id = request.path_params["request_id"]
    job = emulator.jobs.get(request_id)
    if job is None or job.app_id != request.path_params["app"].strip("/"):
        return fal_error(404, f"Request '{request_id}' not found", request_id)
    return job


def _prompt(body: bytes | None) -> str | None:
    """The prompt a job request carries, as the log keeps it (a long one by its start and its end, where a
    service that adds to its user's prompt leaves the user's words): how the harness finds the generation
    a job serves, since any service passes its user's prompt on to FAL."""
    try:
        prompt = json.loads(body or b"").get("prompt")
    except (ValueError, AttributeError, RecursionError):
        return None
    if not isinstance(prompt, str):
        return None
    return prompt if len(prompt) <= PROMPT_LOG_CHARS else f"{prompt[:PROMPT_LOG_CHARS // 2]}…{prompt[-PROMPT_LOG_CHARS // 2:]}"


@protocol_call("submit")
async def submit(emulator: Emulator, request: Request) -> Response:
    job = await _admit(emulator, request)
    if isinstance(job, Response):
        return job
    body = {
        "status": IN_QUEUE,
        "request_id": job.request_id,
        **queue_urls(_base_url(request), job.app_id, job.request_id),
        "queue_position": emulator.jobs.queue_position(job, time.time()),
    }
    return fal_json(body, job.request_id)


@protocol_call("status")
async def status(emulator: Emulator, request: Request) -> Response:
    job = _addressed_job(emulator, request)
    if isinstance(job, Response):
        return job
    logs = request.query_params.get("logs", "false").lower()
    if logs not in LOGS_VALUES:
        return fal_error(422, "Query parameter 'logs' must be one of true, false, 1, 0", job.request_id)
    now = time.time()
    position = emulator.jobs.queue_position(job, now) if job.phase(now) == IN_QUEUE else None
    return fal_json(status_body(job, now, _base_url(request), LOGS_VALUES[logs], position), job.request_id)


@protocol_call("result")
async def result(emulator: Emulator, request: Request) -> Response:
    job = _addressed_job(emulator, request)
    if isinstance(job, Response):
        return job
    if job.phase(time.time()) != COMPLETED:
        return fal_error(400, "Request is still in progress", job.request_id)
    return _outcome(job, request)


@protocol_call("cancel")
async def cancel(emulator: Emulator, request: Request) -> Response:
    job = _addressed_job(emulator, request)
    if isinstance(job, Response):
        return job
    if job.cancel(time.time()):
        return fal_json({"status": "CANCELLATION_REQUESTED"}, job.request_id, 202)
    return fal_json({"status": "ALREADY_COMPLETED"}, job.request_id, 400)


@protocol_call("run")
async def run(emulator: Emulator, request: Request) -> Response:
    """fal's synchronous run: the same job, answered with its result once it completes."""
    job = await _admit(emulator, request)
    if isinstance(job, Response):
        return job
    while job.phase(time.time()) != COMPLETED:  # a stuck job holds the call until it is cancelled
        await asyncio.sleep(RUN_POLL_S)
    return _outcome(job, request)


@protocol_call("file", queue=False)
async def file(emulator: Emulator, request: Request) -> Response:
    """The image of a successful job (fal serves these from its CDN, without a key)."""
    name = request.path_params["name"]
    job = emulator.jobs.get(name.removesuffix(".png")) if name.endswith(".png") else None
    if job is None or job.phase(time.time()) != COMPLETED or job.error() is not None:
        return fal_error(404, f"File '{name}' not found", _new_request_id())
    request.state.request_id = job.request_id
    return Response(IMAGE, media_type="image/png", headers={REQUEST_ID_HEADER: job.request_id})


async def behaviour(request: Request) -> Response:
    emulator = _emulator(request)
    if request.method == "PUT":
        try:
            changes = json.loads(await request.body())
            emulator.change_behaviour(changes)
        except ValueError as exc:  # BehaviourError, or a body that is not JSON
            message = str(exc) if isinstance(exc, BehaviourError) else f"body is not valid JSON: {exc}"
            return JSONResponse({"detail": message}, status_code=422)
    return JSONResponse(emulator.behaviour.model_dump())


async def _http_error(request: Request, exc: Exception) -> Response:
    """Unknown paths and wrong methods, in fal's JSON error shape."""
    assert isinstance(exc, HTTPException)
    return fal_error(exc.status_code, exc.detail, _new_request_id())


def create_app(seed: int | None = None, api_key: str | None = None) -> Starlette:
    """The emulator as an ASGI app; ``seed`` makes its fault decisions reproducible; with ``api_key``
    only that key is accepted (as fal does), without it any key is."""
    emulator = Emulator(seed, api_key)
    app = Starlette(
        routes=[
            admin_routes(emulator.request_log, emulator.reset, Route("/behaviour", behaviour, methods=["GET", "PUT"])),
            Mount("/files", routes=[Route("/{name}", file)]),
            Mount("/_run", routes=[Route("/{app:path}", run, methods=["POST"])]),
            Route("/{app:path}/requests/{request_id}/status", status),
            Route("/{app:path}/requests/{request_id}/cancel", cancel, methods=["PUT"]),
            Route("/{app:path}/requests/{request_id}", result),
            Route("/{app:path}", submit, methods=["POST"]),
        ],
        exception_handlers={HTTPException: _http_error},
    )
    app.state.emulator = emulator
    return app
