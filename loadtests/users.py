"""The simulated users: a signed-in person who submits generations and follows each one to its end
(``GenerationUser``), and, when the scenario floods, one more who only submits, far too often
(``FloodingUser``).

Besides the HTTP calls, every generation is reported to Locust as its own request type
(``GENERATION``), so its end-to-end time and its failures sit in Locust's statistics beside the
HTTP calls. Every request carries a W3C ``traceparent``; all requests of one generation share a
trace id, which the generation's record keeps, so a failing generation can be found in the traces.
Requests are built and read by the generation protocol `genchaos run` uses too
(chaos/run/protocol.py, from the service's contract), including the idempotent replay of every 4th generation.
"""

from __future__ import annotations

import itertools
import secrets
import time
import uuid

import gevent
from gevent.pool import Group
from locust import task
from locust.contrib.fasthttp import FastHttpUser

from chaos.run import protocol
from chaos.run.observations import RequestRecord
from chaos.stack.tokens import mint_access_token
from loadtests.options import FLOODING_USERS, generation_protocol

GENERATION_REQUEST_TYPE = "GENERATION"
GENERATION_NAME = "generation"
FLOOD_RECORD = "flood_record"  # the key of a flood POST's record in its request event's context
# Every POST of a generation carries its record and its user's id in its request event's context (read by
# loadtests/accepted_log.py, so `genchaos soak` can read each accepted generation back as its owner).
SUBMITTED_RECORD, SUBMITTED_BY = "submitted_record", "submitted_by"
MAX_RETRY_AFTER_S = 60.0


class GenerationFailed(Exception):
    """How a generation went wrong, as Locust shows it in its failures table."""


def _failure_label(response, causes: tuple[str, ...] = ()) -> str:
    """Failure text grouped by Locust: a 503 by its causes (from its sentence) where known, else its
    sentence; a transport error by its kind."""
    if not response.status_code:
        return f"transport error: {type(response.error).__name__}" if response.error else "no response"
    if response.status_code == 503:
        return f"503 {'/'.join(causes) or protocol.error_detail(response) or 'without a sentence'}"
    return f"HTTP {response.status_code}"


def _new_record(trace_id: str) -> RequestRecord:
    return RequestRecord(t=time.time(), status=None, latency_s=0.0, trace_id=trace_id)


class SignedInUser(FastHttpUser):
    """What both users share: a token, requests started on a schedule and run alongside each other,
    and one way to POST a generation and record the answer (chaos/run/protocol.py)."""

    abstract = True
    network_timeout = 10.0
    connection_timeout = 5.0
    concurrency = 64  # a paced user's requests run side by side, each with its own connection
    user_id: str
    token: str

    def on_start(self) -> None:
        self.api = generation_protocol(self.environment.parsed_options.service or "")
        self._running = Group()
        self._due = time.monotonic()  # when the current task was due: paced tasks keep to this schedule

    def _sign_in(self, user_id: str) -> None:
        """Take ``user_id`` as this user's identity: its access token's subject."""
        options = self.environment.parsed_options
        self.user_id = user_id
        self.token = mint_access_token(options.jwt_secret, options.jwt_issuer, sub=user_id)

    def on_stop(self) -> None:
        """Wait for the requests still running (each ends by its timeout), so every one is reported
        before the user counts as stopped."""
        self._running.join()

    def _paced(self, rate_per_s: float) -> float:
        """Seconds until the next task is due at ``rate_per_s``, however long earlier ones took."""
        self._due += 1 / rate_per_s
        return max(0.0, self._due - time.monotonic())

    def _expected(self, record: RequestRecord) -> bool:
        """Whether Locust counts this answer to a POST a success."""
        return record.accepted

    def _submit(self, record: RequestRecord, name: str, body: dict, *, idempotent: bool = False,
                context: dict | None = None) -> str | None:
        """POST a generation and fill ``record`` from the answer; returns the failure Locust was told,
        None for an expected answer. ``context`` goes with the POST's request event."""
        started = time.perf_counter()
        context = {SUBMITTED_RECORD: record, SUBMITTED_BY: self.user_id, **(context or {})}
        with self.client.post(self.api.submit_path, name=name, catch_response=True, context=context,
                              headers=self.api.headers(self.token, record.trace_id, idempotent=idempotent),
                              json=body) as response:
            record.latency_s = time.perf_counter() - started
            if response.status_code:
                self.api.record_submission(record, response)
            else:
                record.detail = str(response.error)
            failure = None if self._expected(record) else _failure_label(response, record.causes)
            if failure:
                response.failure(failure)
            else:
                response.success()
        return failure


class GenerationUser(SignedInUser):
    """Weights, think times, pacing and timeouts come from the genchaos options (loadtests/options.py).

    A paced user (an arrival-rate scenario, ``--user-pace``) starts each generation on schedule and
    runs it alongside the others, as `genchaos run` sends an arrival rate whatever earlier requests
    are doing: running them one after the other would let slow answers lower the rate, and park the
    user through every outage that still accepts work, leaving the fault's phase without requests.
    Without a pace the user waits for each result, as a person would.
    """

    def on_start(self) -> None:
        super().on_start()
        options = self.environment.parsed_options
        self._sign_in(str(uuid.uuid4()))
        self._retry_after_s = 0.0
        self._sequence = itertools.count()
        if options.user_pace:
            # start at a random point of the first interval, so users spawned together do not arrive together
            gevent.sleep(secrets.SystemRandom().random() / options.user_pace)
            self._due = time.monotonic()

    @classmethod
    def configure(cls, options) -> None:
        """Task weights from the options; called on every process when a test starts."""
        cls.tasks = ([cls.generate] * options.generate_weight) + ([cls.list_generations] * options.list_weight)

    def wait_time(self) -> float:
        options = self.environment.parsed_options
        now = time.monotonic()
        if self._retry_after_s:
            delay, self._retry_after_s = self._retry_after_s, 0.0
            self._due = now + delay
            return delay
        if options.user_pace:
            return self._paced(options.user_pace)
        return options.think_min + (options.think_max - options.think_min) * secrets.SystemRandom().random()

    @task(10)
    def generate(self) -> None:
        """One generation: inline, or alongside the user's others when it is paced."""
        if self.environment.parsed_options.user_pace:
            self._running.spawn(self._generation)
        else:
            self._generation()

    def _generation(self) -> None:
        """Submit a generation (every 4th twice, with its Idempotency-Key), follow it to a terminal
        state, and report it as one GENERATION."""
        trace_id = protocol.new_trace_id()
        record = _new_record(trace_id)
        body = self.api.request_body(trace_id)
        idempotent = self.api.replays(next(self._sequence))
        started = time.perf_counter()
        rejection = self._submit(record, self.api.submit_path, body, idempotent=idempotent)
        if rejection:
            if record.status == 503:
                self._honour_retry_after(record.retry_after)
            failure = GenerationFailed(f"rejected: {rejection}")
        else:
            if idempotent:
                record.replay_ok = self._replay(body, trace_id, record.generation_id)
            failure = self._follow(record)
        self.environment.events.request.fire(
            request_type=GENERATION_REQUEST_TYPE, name=GENERATION_NAME,
            response_time=(time.perf_counter() - started) * 1000, response_length=0,
            exception=failure, context={"record": record}, url=self.api.submit_path, response=None)

    def _replay(self, body: dict, trace_id: str, generation_id: str) -> bool | None:
        """Send an accepted POST again with its Idempotency-Key: the same generation must come back."""
        with self.client.post(self.api.submit_path, name=f"{self.api.submit_path} (replay)", catch_response=True,
                              headers=self.api.headers(self.token, trace_id, idempotent=True), json=body) as response:
            verdict = self.api.replay_verdict(response, generation_id)
            if verdict is False:
                response.failure("idempotency violated: the replay did not return the same generation")
            elif verdict is None:
                response.failure(_failure_label(response))
        return verdict

    def _follow(self, record: RequestRecord) -> GenerationFailed | None:
        """Poll until terminal or the generation timeout; the failure to report, if any."""
        options = self.environment.parsed_options
        deadline = time.monotonic() + options.generation_timeout
        while time.monotonic() < deadline:
            with self.client.get(self.api.generation_path(record.generation_id),
                                 name=self.api.generation_path("[id]"),
                                 headers=self.api.headers(self.token, record.trace_id),
                                 catch_response=True) as response:
                if response.status_code != 200:
                    response.failure(_failure_label(response))
                elif self.api.record_terminal(record, response.json(), time.time()):
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
        """List one's own generations, as the app's history page does (when the contract has a list)."""
        if self.api.list_path is None:
            return
        with self.client.get(self.api.list_path, name=self.api.list_path,
                             headers=self.api.headers(self.token, protocol.new_trace_id()),
                             catch_response=True) as response:
            if response.status_code != 200:
                response.failure(_failure_label(response))


class FloodingUser(SignedInUser):
    """The flooding user of a scenario with ``load.flood_rate_per_s``, as `genchaos run` sends it: it
    only submits (no Idempotency-Key, no polling), at ``--flood-rate`` POSTs per second, each started
    on schedule alongside the others. What matters is how the service answers it (a bounded share,
    then 429 with Retry-After) and what it leaves for everyone else, so its POSTs are not generations:
    their records travel in the request event's context (``FLOOD_RECORD``) to the gate's flood
    requests, judged by the flood_* metrics and never in the other users' success rate or latency.

    Exactly one runs, and only when the load floods: loadtests/shape.py hands Locust this class then
    and adds its fixed count to the users. Its token's subject is the one the master picked
    (``--flood-user``), so wherever it is spawned, the service sees one user.
    """

    fixed_count = FLOODING_USERS

    def on_start(self) -> None:
        super().on_start()
        self._sign_in(self.environment.parsed_options.flood_user or str(uuid.uuid4()))

    def wait_time(self) -> float:
        return self._paced(self.environment.parsed_options.flood_rate)

    def _expected(self, record: RequestRecord) -> bool:
        """A 429 is the answer a flood is there to draw (whether it says when to retry is for the judge)."""
        return record.accepted or record.status == 429

    @task
    def flood(self) -> None:
        self._running.spawn(self._flood_request)

    def _flood_request(self) -> None:
        trace_id = protocol.new_trace_id()
        record = _new_record(trace_id)
        self._submit(record, f"{self.api.submit_path} (flood)", self.api.request_body(trace_id),
                     context={FLOOD_RECORD: record})
