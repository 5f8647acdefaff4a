"""The simulated user: a signed-in person who submits generations and follows each one to its end.

Besides the HTTP calls, every generation is reported to Locust as its own request type
(``GENERATION``), so its end-to-end time and its failures sit in Locust's statistics beside the
HTTP calls. Every request carries a W3C ``traceparent``; all requests of one generation share a
trace id, which the generation's record keeps, so a failing generation can be found in the traces.
"""

from __future__ import annotations

import secrets
import time

import gevent
from locust import constant_throughput, task
from locust.contrib.fasthttp import FastHttpUser

from chaos.observations import TERMINAL_STATUSES, RequestRecord
from chaos.tokens import mint_access_token

GENERATIONS_PATH = "/api/v1/generations"
GENERATION_REQUEST_TYPE = "GENERATION"
GENERATION_NAME = "generation"
MODEL_ID = "fal-ai/flux/dev"
MAX_RETRY_AFTER_S = 60.0


class GenerationFailed(Exception):
    """How a generation went wrong, as Locust shows it in its failures table."""


def new_trace_id() -> str:
    return secrets.token_hex(16)


def traceparent(trace_id: str) -> str:
    """A sampled W3C trace context for one request (a fresh span) of the given trace."""
    return f"00-{trace_id}-{secrets.token_hex(8)}-01"


def _detail(response) -> str | None:
    """The error body's ``detail`` (FastAPI's shape), else the start of the body."""
    try:
        body = response.json()
    except (ValueError, TypeError):
        return (response.text or "")[:200] or None
    detail = body.get("detail") if isinstance(body, dict) else None
    return detail if isinstance(detail, str) else str(body)[:200]


def _failure_label(response) -> str:
    """Failure text grouped by Locust: a 503 by its reason header, a transport error by its kind."""
    if not response.status_code:
        return f"transport error: {type(response.error).__name__}" if response.error else "no response"
    if response.status_code == 503:
        return f"503 {response.headers.get('x-genchaos-503-reason') or 'unlabelled'}"
    return f"HTTP {response.status_code}"


class GenerationUser(FastHttpUser):
    """Weights, think times, pacing and timeouts come from the genchaos options (loadtests/options.py)."""

    network_timeout = 10.0
    connection_timeout = 5.0

    def on_start(self) -> None:
        options = self.environment.parsed_options
        self.token = mint_access_token(options.jwt_secret, options.jwt_issuer)
        self._retry_after_s = 0.0

    @classmethod
    def configure(cls, options) -> None:
        """Task weights from the options; called on every process when a test starts."""
        cls.tasks = ([cls.generate] * options.generate_weight) + ([cls.list_generations] * options.list_weight)

    def wait_time(self) -> float:
        options = self.environment.parsed_options
        if self._retry_after_s:
            delay, self._retry_after_s = self._retry_after_s, 0.0
            return delay
        if options.user_pace:
            return constant_throughput(options.user_pace)(self)
        return options.think_min + (options.think_max - options.think_min) * secrets.SystemRandom().random()

    def _headers(self, trace_id: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}", "traceparent": traceparent(trace_id)}

    @task(10)
    def generate(self) -> None:
        """Submit a generation, follow it to a terminal state, report it as one GENERATION."""
        record = RequestRecord(t=time.time(), status=None, latency_s=0.0, trace_id=new_trace_id())
        started = time.perf_counter()
        with self.client.post(GENERATIONS_PATH, name=GENERATIONS_PATH, catch_response=True,
                              headers=self._headers(record.trace_id),
                              json={"model_id": MODEL_ID, "prompt": f"load {record.trace_id[:8]}"}) as response:
            record.latency_s = time.perf_counter() - started
            record.status = response.status_code or None
            if response.status_code == 202:
                record.generation_id = response.json().get("id")
                response.success()
            else:
                record.detail = _detail(response) if response.status_code else str(response.error)
                record.retry_after = response.headers.get("retry-after") if response.headers else None
                record.reason_503 = response.headers.get("x-genchaos-503-reason") if response.headers else None
                response.failure(_failure_label(response))
        failure = self._follow(record) if record.accepted else GenerationFailed(f"rejected: {_failure_label(response)}")
        if record.status == 503:
            self._honour_retry_after(record.retry_after)
        self.environment.events.request.fire(
            request_type=GENERATION_REQUEST_TYPE, name=GENERATION_NAME,
            response_time=(time.perf_counter() - started) * 1000, response_length=0,
            exception=failure, context={"record": record}, url=GENERATIONS_PATH, response=None)

    def _follow(self, record: RequestRecord) -> GenerationFailed | None:
        """Poll until terminal or the generation timeout; the failure to report, if any."""
        options = self.environment.parsed_options
        deadline = time.monotonic() + options.generation_timeout
        while time.monotonic() < deadline:
            with self.client.get(f"{GENERATIONS_PATH}/{record.generation_id}", name=f"{GENERATIONS_PATH}/[id]",
                                 headers=self._headers(record.trace_id), catch_response=True) as response:
                if response.status_code != 200:
                    response.failure(_failure_label(response))
                else:
                    body = response.json()
                    if body.get("status") in TERMINAL_STATUSES:
                        record.final_status = body["status"]
                        record.terminal_t = time.time()
                        record.error = body.get("error")
                        if record.final_status == "completed":
                            return None
                        return GenerationFailed(f"failed: {record.error or 'no error given'}")
            gevent.sleep(options.poll_interval)
        return GenerationFailed(f"lost: not terminal after {options.generation_timeout:g}s")

    def _honour_retry_after(self, retry_after: str | None) -> None:
        if self.environment.parsed_options.honour_retry_after and retry_after and retry_after.strip().isdigit():
            self._retry_after_s = min(float(retry_after), MAX_RETRY_AFTER_S)

    @task(1)
    def list_generations(self) -> None:
        """List one's own generations, as the app's history page does."""
        with self.client.get(GENERATIONS_PATH, name=GENERATIONS_PATH, headers=self._headers(new_trace_id()),
                             catch_response=True) as response:
            if response.status_code != 200:
                response.failure(_failure_label(response))
