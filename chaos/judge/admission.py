"""Admission under overload, from the clients' side alone: a generation admitted while the harness can
prove the service already held its claimed bound of unfinished generations, and the POSTs it shed.

"Surely unfinished" is conservative both ways: a generation counts towards the bound at a new request's
admission only if its own POST was answered before that request was sent, and it was seen terminal at
least ``FINISH_MARGIN_S`` after the new request was answered (a poll sees a generation terminal at most
one poll interval and one poll's round trip after it ended). So a service that keeps its bound is never
blamed for it; one that ignores it under a burst is caught as soon as the backlog passes the bound.
"""

from __future__ import annotations

import math

from chaos.run.observations import Observation, RequestRecord

FINISH_MARGIN_S = 2.0


def _finished_by(record: RequestRecord) -> float:
    """The latest time the generation may still have been unfinished, less the margin (never, if lost)."""
    return math.inf if record.terminal_t is None else record.terminal_t - FINISH_MARGIN_S


def admitted_beyond_bound(obs: Observation) -> int | None:
    """Generations accepted while at least the claimed bound of others were surely unfinished; None without
    a bound."""
    bound = obs.timings.get("admission_bound")
    if bound is None:
        return None
    accepted = sorted((r for r in obs.requests + obs.flood_requests if r.accepted), key=lambda r: r.t)
    beyond = 0
    for record in accepted:
        answered = record.t + record.latency_s
        held = sum(other.t + other.latency_s < record.t and _finished_by(other) > answered
                   for other in accepted if other is not record)
        beyond += held >= bound
    return beyond


def shed_requests(obs: Observation) -> int:
    """POSTs refused for load: a 503 whose sentence names an overloaded queue, or a 429."""
    return sum((r.status == 503 and "overloaded" in r.causes) or r.status == 429
               for r in obs.requests + obs.flood_requests)
