"""Fault-effect proof: every fault of a scenario must be seen to bite, or the run proves nothing.

Each fault is judged by evidence the harness gathers itself (bytes its proxy moved while the toxic
was on, what FAL's log shows, the latency its requests saw, the requests it touched that did not
succeed), and by the service's own upstream counter, where its contract names one, only as another
witness (that a timeout fired that users never saw). A fault with no
visible effect makes the scenario an invalid run, never a pass.
"""

from __future__ import annotations

from dataclasses import dataclass

from chaos.judge import fal_log
from chaos.judge.measures import counted, percentile
from chaos.run.observations import FaultWindow, Observation, RequestRecord

LATENCY_SHARE = 0.5  # a latency fault must show at least half its delay in the median generation
MIN_SHIFT_S = 0.1  # a bandwidth fault that fires no timeout must still slow generations this much
FAL_ERROR_FIELDS = ("submit_error_rate", "rate_limit_rate", "ingress_error_rate")
FAL_DELAY_FIELDS = ("latency_s", "queue_time_s", "processing_time_s")


@dataclass(frozen=True)
class FaultEffect:
    fault: str
    shown: bool
    evidence: str


def _during(obs: Observation, window: FaultWindow) -> list[RequestRecord]:
    def end(r: RequestRecord) -> float:
        return r.terminal_t if r.terminal_t is not None else r.t + r.latency_s
    return [r for r in obs.requests if r.t < window.end and end(r) >= window.start]


def _median_latency(records: list[RequestRecord]) -> float | None:
    return percentile([r.generation_latency_s for r in records if r.generation_latency_s is not None], 50)


def latency_shift_s(obs: Observation, window: FaultWindow) -> float | None:
    """Median generation time of the requests the fault touched minus that of the untouched ones."""
    touched = _during(obs, window)
    touched_by_any = {id(r) for w in obs.fault_windows for r in _during(obs, w)}
    untouched = [r for r in obs.requests if id(r) not in touched_by_any]
    during, outside = _median_latency(touched), _median_latency(untouched)
    return None if during is None or outside is None else during - outside


def _bytes_text(window: FaultWindow) -> str:
    return "proxy bytes unmeasured" if window.proxy_bytes is None else f"{window.proxy_bytes:.0f} bytes through {window.proxy}"


def _moved_bytes(window: FaultWindow) -> bool:
    return window.proxy_bytes is None or window.proxy_bytes > 0


def _shift_text(shift: float | None) -> str:
    return "no latency shift measurable" if shift is None else f"median generation +{shift:.2f}s"


def _hurt(obs: Observation, window: FaultWindow) -> tuple[int, str]:
    """Requests the fault touched that did not succeed: what users saw of it, with no help from the service."""
    touched = _during(obs, window)
    hurt = sum(not r.succeeded for r in touched)
    return hurt, f"{hurt} of {len(touched)} requests during it did not succeed"


def _down(obs: Observation, window: FaultWindow) -> FaultEffect:
    hurt, hurt_text = _hurt(obs, window)
    silent = window.proxy_bytes is None or window.proxy_bytes == 0
    return FaultEffect(window.description, hurt > 0 and silent, f"{_bytes_text(window)}; {hurt_text}")


def _toxic(obs: Observation, window: FaultWindow) -> FaultEffect:
    kind, dependency = window.kind, window.dependency
    shift = latency_shift_s(obs, window)
    moved = _moved_bytes(window)
    hurt, hurt_text = _hurt(obs, window)
    if kind == "latency":
        needed = LATENCY_SHARE * window.attributes.get("latency", 0) / 1000
        fired = counted(obs, dependency, "timeout")
        shown = moved and ((shift is not None and shift >= needed) or fired > 0 or hurt > 0)
        return FaultEffect(window.description, shown, f"{_bytes_text(window)}; {_shift_text(shift)} "
                                                      f"(needs +{needed:.2f}s); {hurt_text}; the service counted "
                                                      f"{fired} {dependency} timeouts")
    if kind in ("timeout", "bandwidth"):
        fired = counted(obs, dependency, "timeout")
        slowed = kind == "bandwidth" and shift is not None and shift >= MIN_SHIFT_S
        return FaultEffect(window.description, moved and (fired > 0 or slowed or hurt > 0),
                           f"{_bytes_text(window)}; {hurt_text}; the service counted {fired} {dependency} "
                           f"timeouts; {_shift_text(shift)}")
    if kind == "reset_peer":
        errors = counted(obs, dependency, "error") + counted(obs, dependency, "timeout")
        return FaultEffect(window.description, moved and (errors > 0 or hurt > 0),
                           f"{_bytes_text(window)}; {hurt_text}; the service counted {errors} failed "
                           f"{dependency} calls")
    return FaultEffect(window.description, window.proxy_bytes is not None and window.proxy_bytes > 0,
                       _bytes_text(window))


def _fal_behaviour(obs: Observation, window: FaultWindow) -> FaultEffect:
    fields = window.kind.split("+")
    inside = [e for e in obs.fal_log if window.start <= e["t"] < window.end]
    evidence, shown = [], False
    if any(f in fields for f in FAL_ERROR_FIELDS):
        faulted = sum(int(e.get("status") or 0) in (429, 500, 502, 503, 504) for e in inside)
        evidence.append(f"FAL answered {faulted} calls with an injected error")
        shown |= faulted > 0
    if "stuck_rate" in fields:
        stuck = [j for j in fal_log.stuck_jobs(obs) if window.start <= j.submitted < window.end]
        evidence.append(f"{len(stuck)} FAL jobs stuck")
        shown |= bool(stuck)
    if "key_revoked" in fields:
        refused = fal_log.refused_key_calls(obs, window.start, window.end)
        evidence.append(f"FAL refused the key on {refused} calls")
        shown |= refused > 0
    if "job_failure_rate" in fields:
        failed = sum(r.final_status == "failed" for r in _during(obs, window))
        evidence.append(f"{failed} generations failed")
        shown |= failed > 0
    delays = [window.attributes.get(f, 0) for f in FAL_DELAY_FIELDS if f in fields]
    if delays:
        shift = latency_shift_s(obs, window)
        needed = LATENCY_SHARE * max(delays)
        evidence.append(f"{_shift_text(shift)} (needs +{needed:.2f}s)")
        shown |= shift is not None and shift >= needed
    return FaultEffect(window.description, shown, "; ".join(evidence) or "no FAL behaviour to observe")


def fault_effects(obs: Observation) -> list[FaultEffect]:
    """One judged effect per applied fault, in the order they started."""
    effects = []
    for window in sorted(obs.fault_windows, key=lambda w: w.start):
        if window.proxy is None:
            effects.append(_fal_behaviour(obs, window))
        elif window.kind == "down":
            effects.append(_down(obs, window))
        else:
            effects.append(_toxic(obs, window))
    return effects
