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


def _held_at_admissions(obs: Observation) -> list[int]:
    """For each accepted generation, how many others were surely unfinished when it was admitted."""
    accepted = sorted((r for r in obs.requests + obs.flood_requests if r.accepted), key=lambda r: r.t)
    return [sum(other.t + other.latency_s < record.t and _finished_by(other) > record.t + record.latency_s
                for other in accepted if other is not record) for record in accepted]


def admitted_beyond_bound(obs: Observation) -> int | None:
    """Generations accepted while at least the claimed bound of others were surely unfinished; None without
    a bound."""
    bound = obs.timings.get("admission_bound")
    if bound is None:
        return None
    return sum(held >= bound for held in _held_at_admissions(obs))


def why_shedding_unmeasured(obs: Observation) -> str | None:
    """Why the run cannot say whether the service sheds beyond its bound: it shed nothing, and the harness
    never saw the bound's worth of generations unfinished (the burst never reached it; say, a contract that
    claims a bound but does not map the setting a scenario lowers it with)."""
    bound = obs.timings.get("admission_bound")
    if bound is None or shed_requests(obs) or max(_held_at_admissions(obs), default=0) >= bound:
        return None
    return f"the load never held {bound:g} generations unfinished, so the bound was never reached"


def shed_requests(obs: Observation) -> int:
    """POSTs refused for load: a 503 whose sentence names an overloaded queue, or a 429."""
    return sum((r.status == 503 and "overloaded" in r.causes) or r.status == 429
               for r in obs.requests + obs.flood_requests)
