"""Ground truth for 503s: the harness knows which dependency each fault broke, so a 503 is judged
against that, not against the label the service chose.

A 503 sent while faults are on (or within the scenario's settle time after one) must name one of
the dependencies those faults break, in its reason header *and* its sentence. A 503 sent while
nothing is broken names nothing the harness broke. Generic reasons (``breaker_open``,
``overloaded``) count as attributed only where the scenario allows them.
"""

from __future__ import annotations

from dataclasses import dataclass

from chaos.run.observations import Observation, RequestRecord

# The report's exact 503 sentences by X-Genchaos-503-Reason (docs/architecture.md).
HIGH_LOAD = "AI generation service is experiencing high load. Please try again in a few minutes."
SENTENCES_503 = {
    "breaker_open": HIGH_LOAD,
    "overloaded": HIGH_LOAD,
    "database_unavailable": "Database service temporarily unavailable. Please try again later.",
    "storage_unavailable": "File storage service temporarily unavailable. Please try again later.",
    "fal_unavailable": "AI generation service temporarily unavailable. Please try again later.",
}


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
    allowed = {dependency_reason(d) for d in broken} | (set(obs.allowed_503_reasons) if broken else set())
    reason = record.reason_503
    correct = reason in allowed and record.detail == SENTENCES_503.get(reason)
    return Attribution(t=record.t, said=reason, broken=broken, correct=correct)


def attributions(obs: Observation) -> list[Attribution]:
    return [attribute(obs, r) for r in obs.requests if r.status == 503]


def misattributed_503(obs: Observation) -> int:
    return sum(not a.correct for a in attributions(obs))


def misattribution_examples(obs: Observation, limit: int = 3) -> list[str]:
    """A few wrong 503s in words, for the evidence of checks and claims."""
    wrong = [a for a in attributions(obs) if not a.correct][:limit]
    return [f"at {a.t:.1f}s said {a.said or 'no reason'} while {'+'.join(a.broken) or 'nothing'} was broken"
            for a in wrong]
