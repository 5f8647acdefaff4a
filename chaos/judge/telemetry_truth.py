"""What the service said about itself, against what happened: its 503 counter against the 503s clients
received, its generations counter against the outcomes clients polled, its breaker states (published and
gauge) against the breaker clients ran into, its readiness against the outages the harness caused, and
the trace context FAL received against the requests that started the work. Each comparison states its
tolerance; a service that lies, or stays silent where its contract says it speaks, disagrees.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from chaos.judge import fal_log
from chaos.run.observations import BreakerSample, Observation
from chaos.run.runner import breaker_seen_by_clients
from chaos.run.traces import trace_of
from chaos.run.traffic import POLL_INTERVAL_S

DURATION_SLACK_S = 0.5  # a poll's own round trip, and the clocks' edges
GAUGE_TOLERANCE_S = 1.0  # the gauge is read every 0.5 s, published states every 0.1 s
SLO_TOLERANCE = 0.01  # rate() extrapolates at a run's edges
READINESS_GRACE_S = 1.0  # beyond the published health interval: one check's time and a sample's
DEFAULT_HEALTH_INTERVAL_S = 5.0  # the report's, for a contract that claims readiness but gives no interval
ASPECTS = {  # metric -> what it compares, in the report's words
    "miscounted_503s": "503s counted by cause", "miscounted_generations": "generations counted by outcome",
    "misreported_durations": "generation durations",
    "breaker_state_disagreements": "breaker state", "readiness_disagreements": "readiness",
    "unjoined_traces": "traces joined to requests", "unexplained_503_spans": "503 spans name their cause",
    "slo_rule_disagreements": "SLO recording rules and alerts"}
NOT_JUDGED = "the scenario does not judge the SLO rules"
NO_EVIDENCE = {  # why a comparison the contract allows could still not be made in a run
    "miscounted_503s": "the service's metrics could not be read",
    "miscounted_generations": "the service's metrics could not be read",
    "misreported_durations": "the service's metrics could not be read",
    "breaker_state_disagreements": "no breaker state or gauge could be read during the run",
    "readiness_disagreements": "the readiness endpoint could not be read during the run",
    "unjoined_traces": "no traces were read",
    "unexplained_503_spans": "no traces were read",
    "slo_rule_disagreements": NOT_JUDGED,
}


@dataclass
class Comparison:
    """One aspect of the service's telemetry: how many times it disagreed with what happened, in words."""

    metric: str  # the check's metric: how many disagreements beyond the tolerance
    service_said: str
    happened: str
    tolerance: str
    disagreements: int

    def row(self, status: str) -> dict[str, Any]:
        return {"aspect": ASPECTS[self.metric], "service_said": self.service_said, "happened": self.happened,
                "tolerance": self.tolerance, "status": status}


def _counts(values: dict[str, int]) -> str:
    return ", ".join(f"{key} {n}" for key, n in sorted(values.items()) if n) or "none"


def miscounted_503s(obs: Observation) -> Comparison | None:
    """The service's 503 counter, by the sentence its cause label stands for, against the 503s the harness
    received on every API call it made between the two scrapes."""
    if obs.counted_503s is None:
        return None
    groups = set(obs.counted_503s) | set(obs.received_503s)
    off = sum(abs(obs.counted_503s.get(g, 0) - obs.received_503s.get(g, 0)) for g in groups)
    return Comparison(
        "miscounted_503s", f"counted {_counts(obs.counted_503s)}",
        f"clients received {sum(obs.received_503s.values())}: {_counts(obs.received_503s)}",
        f"equal by cause, give or take one per unanswered call ({obs.unanswered_calls})",
        max(0, off - obs.unanswered_calls))


def _unfollowed(obs: Observation) -> int:
    """Generations the service may have finished that the harness never saw end: accepted but lost, the
    flooding user's (not followed), and those of refused requests whose prompt FAL received anyway."""
    return (sum(r.accepted and r.final_status is None for r in obs.requests)
            + sum(r.accepted for r in obs.flood_requests) + len(fal_log.refused_but_worked_on(obs)))


def miscounted_generations(obs: Observation) -> Comparison | None:
    """The service's generations counter against the terminal statuses clients polled. Each generation the
    harness accepted but never saw end (lost, or the flooding user's, which it does not follow), and each
    request refused or unanswered whose prompt FAL nevertheless received, may have ended either way: those
    widen the tolerance upwards only."""
    if obs.counted_outcomes is None:
        return None
    seen = {outcome: sum(r.final_status == outcome for r in obs.requests) for outcome in ("completed", "failed")}
    unseen = _unfollowed(obs)
    said = obs.counted_outcomes
    short = sum(max(0, seen[o] - said.get(o, 0)) for o in seen)
    extra = max(0, sum(said.values()) - sum(seen.values()) - unseen)
    return Comparison("miscounted_generations", f"counted {_counts(said)}",
                      f"clients saw {_counts(seen)}", f"at least what clients saw, at most {unseen} more "
                      "(generations not followed to the end)", short + extra)


def misreported_durations(obs: Observation) -> Comparison | None:
    """The service's histogram of generation durations against the times clients measured (POST sent to the
    generation seen completed): the same completed generations, and a mean that fits inside the client's,
    which is longer by at most the POST's own round trip, a poll interval and a poll's round trip."""
    if obs.counted_durations is None:
        return None
    count, seconds = obs.counted_durations
    done = [r for r in obs.requests if r.final_status == "completed" and r.generation_latency_s is not None]
    unseen = _unfollowed(obs)
    problems = []
    if not len(done) <= count <= len(done) + unseen:
        problems.append(f"observed {count} completed generations, clients saw {len(done)}")
    client_mean = sum(r.generation_latency_s for r in done) / len(done) if done else None
    service_mean = seconds / count if count else None
    gap = (sum(r.latency_s for r in done) / len(done) if done else 0.0) + POLL_INTERVAL_S + DURATION_SLACK_S
    if count == len(done) and client_mean is not None and service_mean is not None \
            and not client_mean - gap <= service_mean <= client_mean + DURATION_SLACK_S:
        problems.append(f"mean {service_mean:.3f}s against the clients' {client_mean:.3f}s")
    said = f"{count} completed, mean {'n/a' if service_mean is None else f'{service_mean:.3f}s'}"
    return Comparison("misreported_durations", said + (f" ({'; '.join(problems)})" if problems else ""),
                      f"clients saw {len(done)} completed, mean "
                      + ("n/a" if client_mean is None else f"{client_mean:.3f}s"),
                      f"the same generations; a mean at most {gap:.2f}s shorter than the clients' and at most "
                      f"{DURATION_SLACK_S:g}s longer", len(problems))


def _spells(samples: list[BreakerSample]) -> list[tuple[float, float]]:
    """The spells in which clients were refused for an open breaker: (first, last) refusal."""
    spells: list[tuple[float, float]] = []
    current: list[float] = []
    for sample in samples:
        if "open" in sample.states.values():
            current.append(sample.t)
        elif current:
            spells.append((current[0], current[-1]))
            current = []
    if current:
        spells.append((current[0], current[-1]))
    return spells


def _breaker_disagreements(witness: list[BreakerSample], spells: list[tuple[float, float]],
                           working: tuple[float, float] | None, fal_breaker: str) -> list[str]:
    """Where a witness of the breaker contradicts the clients: a refusal spell with no open (or half-open)
    breaker in it, within the tolerance, and FAL's breaker open while FAL was taking work again."""
    problems = [f"closed throughout {start:.1f}–{end:.1f}s while clients were refused for an open breaker"
                for start, end in spells
                if not any(s.states and set(s.states.values()) - {"closed"}
                           for s in witness if start - GAUGE_TOLERANCE_S <= s.t <= end + GAUGE_TOLERANCE_S)]
    if working is not None:
        took, until = working
        stale = next((s.t for s in witness
                      if took + GAUGE_TOLERANCE_S < s.t < until and s.states.get(fal_breaker) == "open"), None)
        if stale is not None:
            problems.append(f"{fal_breaker} open at {stale:.1f}s though FAL took work from {took:.1f}s on")
    return problems


def _fal_working_again(obs: Observation) -> tuple[float, float] | None:
    """From when to when FAL took work with no failure in between, once every fault had ended: the first
    job FAL took after the faults closed any breaker (a probe that succeeds closes it), and until the next
    failed call nothing could open it again."""
    last_end = max((w.end for w in obs.fault_windows), default=0.0)
    after = [e for e in fal_log.submits(obs) if e["t"] >= last_end]
    took = next((e["t"] for e in after if 200 <= int(e.get("status") or 0) < 300), None)
    if took is None:
        return None
    failed = next((e["t"] for e in after if e["t"] > took and not 200 <= int(e.get("status") or 0) < 300), None)
    return took, obs.duration_s + 3600 if failed is None else failed


def breaker_state_disagreements(obs: Observation) -> Comparison | None:
    """The breaker states the service published and its gauge, each against the breaker clients saw."""
    witnesses = {name: samples for name, samples in (("published", obs.published_breakers),
                                                      ("gauge", obs.gauge_samples)) if samples}
    if not witnesses:
        return None
    spells = _spells(breaker_seen_by_clients(obs.requests))
    working = _fal_working_again(obs)
    problems = [f"{name}: {problem}" for name, samples in witnesses.items()
                for problem in _breaker_disagreements(samples, spells, working, obs.fal_breaker)]
    said = "; ".join(f"{name} {_open_spans(samples)}" for name, samples in witnesses.items())
    happened = "refused for an open breaker " + (", ".join(f"{a:.1f}–{b:.1f}s" for a, b in spells) or "never")
    return Comparison("breaker_state_disagreements", said + (
        f" ({'; '.join(problems)})" if problems else ""), happened,
        f"open within {GAUGE_TOLERANCE_S:g}s of every refusal spell; not open once FAL works again", len(problems))


def _open_spans(samples: list[BreakerSample]) -> str:
    spans = _spells(samples)
    return ("open " + ", ".join(f"{a:.1f}–{b:.1f}s" for a, b in spans)) if spans else "never open"


def _said_within(obs: Observation, start: float, end: float, ready: bool) -> bool:
    return any(s.ready is ready for s in obs.readiness_samples if start <= s.t <= end)


def readiness_disagreements(obs: Observation) -> Comparison | None:
    """Readiness against the outages the harness caused (a dependency's proxy taken down): not ready within
    the published health interval of each outage, ready again within it after, and ready whenever nothing
    was broken (past its first interval)."""
    if not obs.readiness_samples:
        return None
    lag = obs.timings.get("health_refresh_interval_s", DEFAULT_HEALTH_INTERVAL_S) + READINESS_GRACE_S
    outages = [w for w in obs.fault_windows if w.kind == "down"]
    problems = []
    for w in outages:
        if w.end - w.start >= lag and not _said_within(obs, w.start, w.start + lag, ready=False):
            problems.append(f"said ready through {w.start:.1f}–{w.start + lag:.1f}s with {w.dependency} down")
        if not _said_within(obs, w.end, w.end + lag, ready=True):
            problems.append(f"not ready again by {w.end + lag:.1f}s, {lag:g}s after {w.dependency} came back")
    windows = [(w.start, w.end + lag) for w in obs.fault_windows]
    false_alarms = [s.t for s in obs.readiness_samples
                    if not s.ready and s.t > lag and not any(a <= s.t <= b for a, b in windows)]
    if false_alarms:
        problems.append(f"said not ready {len(false_alarms)} times with nothing broken (first at {false_alarms[0]:.1f}s)")
    unready = [s.t for s in obs.readiness_samples if not s.ready]
    said = (f"not ready {len(unready)} of {len(obs.readiness_samples)} reads"
            + (f", first at {unready[0]:.1f}s" if unready else "") + (f" ({'; '.join(problems)})" if problems else ""))
    happened = ", ".join(f"{w.dependency} down {w.start:.1f}–{w.end:.1f}s" for w in outages) or "no dependency down"
    return Comparison("readiness_disagreements", said, happened,
                      f"within the health interval plus {READINESS_GRACE_S:g}s ({lag:g}s)", len(problems))


def unjoined_traces(obs: Observation) -> Comparison | None:
    """Each FAL job request, by the trace context FAL received, against the request that created its
    generation: the same trace, or a trace whose spans link to it. Counts generations with a job not so
    joined (the context was lost between the request and FAL)."""
    if obs.trace_joins is None:
        return None
    trace_of_generation = {r.generation_id: r.trace_id for r in obs.requests if r.accepted}
    jobs = [e for e in fal_log.submits(obs) if e.get("generation_id") in trace_of_generation]

    def joined(entry: dict[str, Any]) -> bool:
        fal_trace = trace_of(entry.get("traceparent"))
        request_trace = trace_of_generation[entry["generation_id"]]
        return fal_trace == request_trace or request_trace in obs.trace_joins.get(fal_trace or "", [])

    unjoined = [e for e in jobs if not joined(e)]
    lost = {e["generation_id"] for e in unjoined}
    examples = "; ".join(f"generation {e['generation_id']} at {e['t']:.1f}s: FAL saw "
                         f"{trace_of(e.get('traceparent')) or 'no trace context'}"
                         for e in unjoined)
    said = f"{len(jobs) - len(unjoined)} of {len(jobs)} FAL job requests joined to their request's trace" + (
        f" (e.g. {examples[:300]})" if examples else "")
    return Comparison("unjoined_traces", said,
                      f"{len({e['generation_id'] for e in jobs})} generations sent jobs to FAL",
                      "every job request joined (same trace, or linked)", len(lost))


def unexplained_503_spans(obs: Observation) -> Comparison | None:
    """Each request answered 503, against the spans of its trace: one must name the cause its answer's
    sentence (and cause header) gave."""
    if obs.span_causes is None:
        return None
    refused = [r for r in obs.requests if r.status == 503 and r.causes]
    wrong = [r for r in refused if not set(obs.span_causes.get(r.trace_id, ())) & set(r.causes)]
    named = sorted({cause for causes in obs.span_causes.values() for cause in causes})
    examples = "; ".join(f"at {r.t:.1f}s said {'/'.join(r.causes)}, spans named "
                         f"{'/'.join(obs.span_causes.get(r.trace_id, ())) or 'nothing'}" for r in wrong[:3])
    return Comparison("unexplained_503_spans", f"spans named {', '.join(named) or 'no cause'}"
                      + (f" (e.g. {examples})" if examples else ""),
                      f"{len(refused)} requests answered 503 with a cause", "every one named in its trace",
                      len(wrong))


def _ratio_bounds(part: int, whole: int, part_unseen: int, rest_unseen: int) -> tuple[float, float]:
    """The share ``part / whole`` as rates may read it when up to ``part_unseen`` of the part and
    ``rest_unseen`` of the rest were never counted (each series' first scrape), widened by SLO_TOLERANCE."""
    low = (part - part_unseen) / max(1, whole - part_unseen)
    high = part / max(1, whole - rest_unseen)
    return max(0.0, low - SLO_TOLERANCE), min(1.0, high + SLO_TOLERANCE)


def slo_rule_disagreements(obs: Observation) -> Comparison | None:
    """The service's own success-ratio and 503-ratio recording rules, as a Prometheus that scraped this run
    evaluated them, against the shares of the harness's API calls answered 5xx and 503. Each may be off by
    the answers no rate could count (each status's first scrape interval) and SLO_TOLERANCE."""
    reading = obs.slo_reading
    if reading is None or not obs.api_answers:
        return None
    total, unseen = obs.api_answers, reading.unseen_answers
    errors, answered_503 = obs.api_server_errors, sum(obs.received_503s.values())
    errors_unseen = sum(n for status, n in unseen.items() if status >= 500)
    low, high = _ratio_bounds(errors, total, errors_unseen, sum(unseen.values()) - errors_unseen)
    bounds = {"success ratio": (1 - high, 1 - low),
              "503 ratio": _ratio_bounds(answered_503, total, unseen.get(503, 0),
                                         sum(unseen.values()) - unseen.get(503, 0))}
    said = {"success ratio": reading.success_ratio, "503 ratio": reading.ratio_503}
    off = [name for name, value in said.items() if (value is None and name == "success ratio")
           or (value is not None and not bounds[name][0] <= value <= bounds[name][1])]
    shown = ", ".join(f"{name} {'none' if value is None else f'{value:.4f}'}" for name, value in said.items())
    alert = "" if reading.fast_burn_fired is None else f"; fast-burn alert {'fired' if reading.fast_burn_fired else 'quiet'}"
    return Comparison(
        "slo_rule_disagreements", f"rules recorded {shown}{alert}",
        f"success ratio {1 - errors / total:.4f}, 503 ratio {answered_503 / total:.4f} of {total} API answers",
        "; ".join(f"{name} in {a:.4f}–{b:.4f}" for name, (a, b) in bounds.items())
        + f" (each status's first scrape interval, {sum(unseen.values())} answers, is never in a rate; "
          f"plus {SLO_TOLERANCE})", len(off))


COMPARISONS: tuple[Callable[[Observation], Comparison | None], ...] = (
    miscounted_503s, miscounted_generations, misreported_durations, breaker_state_disagreements, readiness_disagreements, unjoined_traces,
    unexplained_503_spans, slo_rule_disagreements)


def compare(obs: Observation) -> dict[str, Comparison]:
    """Every comparison this run has evidence for, by metric."""
    return {c.metric: c for c in (compare_one(obs) for compare_one in COMPARISONS) if c is not None}


def disagreements(obs: Observation) -> dict[str, int | None]:
    """Each telemetry metric's disagreements; None where there was nothing to compare."""
    found = compare(obs)
    return {metric: found[metric].disagreements if metric in found else None for metric in ASPECTS}


def rows(obs: Observation, comparisons: dict[str, Comparison]) -> list[dict[str, Any]]:
    """The report's "what the service said, and what happened" rows, one per aspect, unmeasured ones with
    what is missing."""
    out = []
    for metric in ASPECTS:
        found = comparisons.get(metric)
        if found is None and NO_EVIDENCE[metric] == NOT_JUDGED == obs.unmeasurable.get(metric, NOT_JUDGED):
            continue  # a scenario without SLO-rule checks starts no Prometheus: nothing to say
        if found is not None:
            out.append(found.row("held" if found.disagreements == 0 else "not held"))
        else:
            missing = obs.unmeasurable.get(metric) or NO_EVIDENCE[metric]
            out.append({"aspect": ASPECTS[metric], "service_said": f"unmeasured: {missing}", "happened": "",
                        "tolerance": "", "status": "unmeasured"})
    return out
