"""Ground truth for 503s: the harness knows which dependency each fault broke, so a 503 is judged
against that, not against the label the service chose.

A 503's cause is read from its sentence (the contract gives one per cause; the report's four by
default). A 503 sent while faults are on (or within the scenario's settle time after one) must name
one of the dependencies those faults break; a 503 sent while nothing is broken names nothing the
harness broke. Generic causes (``breaker_open``, ``overloaded``) count as attributed only where the
scenario allows them (an open breaker only while something is broken). Where the contract names a cause header, it is a second witness: it must name
a cause the sentence names (``GenerationProtocol.causes``).
"""

from __future__ import annotations

from dataclasses import dataclass

from chaos.run.observations import Observation, RequestRecord


def dependency_reason(dependency: str) -> str:
    return f"{dependency}_unavailable"


@dataclass(frozen=True)
class Attribution:
    """One 503 judged: what it said, what the harness had broken, and whether the two agree."""

    t: float
    said: str | None
    broken: tuple[str, ...]
    correct: bool


def broken_during(obs: Observation, sent: float, answered: float) -> tuple[str, ...]:
    """The dependencies broken while a request was in the service (sent .. answered): faults on then,
    or ended less than the settle time before it was sent."""
    return tuple(sorted({w.dependency for w in obs.fault_windows
                         if w.start <= answered and sent < w.end + obs.settle_s}))


def attribute(obs: Observation, record: RequestRecord) -> Attribution:
    broken = broken_during(obs, record.t, record.t + record.latency_s)
    # An open breaker is only right while something is broken; an overloaded queue is load's doing, and
    # right whenever the scenario overloads the service on purpose.
    generic = set(obs.allowed_503_reasons)
    allowed = {dependency_reason(d) for d in broken} | (generic if broken else generic & {"overloaded"})
    said = record.reason_503 or "/".join(record.causes) or None
    correct = bool(set(record.causes) & allowed)
    return Attribution(t=record.t, said=said, broken=broken, correct=correct)


def attributions(obs: Observation) -> list[Attribution]:
    return [attribute(obs, r) for r in obs.requests if r.status == 503]


def misattributed_503(obs: Observation) -> int:
    return sum(not a.correct for a in attributions(obs))


def misattribution_examples(obs: Observation, limit: int = 3) -> list[str]:
    """A few wrong 503s in words, for the evidence of checks and claims."""
    wrong = [a for a in attributions(obs) if not a.correct][:limit]
    return [f"at {a.t:.1f}s said {a.said or 'no known sentence'} while {'+'.join(a.broken) or 'nothing'} was broken"
            for a in wrong]
