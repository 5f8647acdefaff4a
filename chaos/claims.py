"""The report's claims, audited: each claim is judged, profile by profile, from the scenario results
of a run, and held or not with the evidence that decided it.

Timed claims are judged against the numbers of the timing preset each scenario ran with (the
report's own numbers on the ``report`` preset, scaled ones on ``fast``), with any GENCHAOS_*
override the scenario set. Claims nothing in the run exercised are reported as not held, with
evidence saying they were not measured.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from chaos.verdicts import ScenarioResult

# The service's timing presets, as the report states them (report) and scaled for CI (fast).
PRESETS: dict[str, dict[str, float]] = {
    "report": {"breaker_failure_threshold": 5, "breaker_recovery_timeout_s": 30.0, "retry_attempts": 3,
               "retry_max_delay_s": 60.0, "fal_attempt_timeout_s": 300.0},
    "fast": {"breaker_failure_threshold": 5, "breaker_recovery_timeout_s": 2.0, "retry_attempts": 3,
             "retry_max_delay_s": 2.0, "fal_attempt_timeout_s": 3.0},
}
RECOVERY_CLAIM_S = 30.0
GENERATION_CLAIM_S = 180.0
STEADY_SUCCESS = 0.995
STEADY_503 = 0.05
EXPONENTIAL_RATIO = 1.35  # second retry delay over the first: ~2 for doubling (less with jitter), 1 for fixed
SAMPLING_SLACK_S = 0.5  # the breaker is sampled every 100 ms; half-opening is lazy
POLL_SLACK_S = 2.0  # the runner polls generations every 200 ms; the worker picks jobs up on its own cadence


@dataclass
class ClaimResult:
    claim: str
    profile: str
    held: bool
    evidence: str
    key: str
    measured: bool


def timing_value(result: ScenarioResult, name: str) -> float:
    """A timing the scenario's service ran with: its GENCHAOS_* override, else its preset's value."""
    override = result.settings.get(f"GENCHAOS_{name.upper()}")
    return float(override) if override is not None else PRESETS[result.timing][name]


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def _tagged(results: list[ScenarioResult], key: str) -> list[ScenarioResult]:
    return [r for r in results if key in r.evidence and r.error is None]


def _each(rows: list[ScenarioResult], judge: Callable[[ScenarioResult], tuple[bool, str]]) -> tuple[bool, str]:
    """A claim held by every scenario that is evidence for it; the evidence of each, joined."""
    verdicts = [judge(r) for r in rows]
    return all(ok for ok, _ in verdicts), "; ".join(text for _, text in verdicts)


def breaker_opens(results: list[ScenarioResult]) -> tuple[bool | None, str]:
    rows = _tagged(results, "breaker_opens")
    if not rows:
        return None, "no scenario exercised the breaker"

    def judge(r: ScenarioResult) -> tuple[bool, str]:
        failures = r.metrics.get("failures_to_open")
        threshold = timing_value(r, "breaker_failure_threshold")
        ok = r.metrics["breaker_opened"] and failures is not None and threshold <= failures <= 2 * threshold
        return bool(ok), (f"{r.name}: opened={r.metrics['breaker_opened']} after {_fmt(failures)} failed calls "
                          f"(threshold {threshold:g})")

    return _each(rows, judge)


def breaker_half_opens(results: list[ScenarioResult]) -> tuple[bool | None, str]:
    rows = _tagged(results, "breaker_half_opens")
    if not rows:
        return None, "no scenario exercised the breaker's recovery window"

    def judge(r: ScenarioResult) -> tuple[bool, str]:
        window = timing_value(r, "breaker_recovery_timeout_s")
        open_for = r.metrics.get("open_duration_s")
        ok = (r.metrics["breaker_half_opened"] and open_for is not None
              and window - SAMPLING_SLACK_S <= open_for <= window + SAMPLING_SLACK_S + 1.0)
        return bool(ok), f"{r.name}: open for {_fmt(open_for)}s before half-open (window {window:g}s)"

    return _each(rows, judge)


def recovery_30s(results: list[ScenarioResult]) -> tuple[bool | None, str]:
    rows = [r for r in _tagged(results, "recovery_30s") if r.metrics["breaker_opened"]]
    if not rows:
        return None, "no scenario opened the breaker"
    recoveries = [(r.name, r.timing, r.metrics["recovery_s"]) for r in rows]
    held = all(rec is not None and rec <= RECOVERY_CLAIM_S for _, _, rec in recoveries)
    return held, "; ".join(f"{name} ({timing} timing): recovered in {_fmt(rec)}s" for name, timing, rec in recoveries)


def retries(results: list[ScenarioResult]) -> tuple[bool | None, str]:
    rows = [r for r in _tagged(results, "retries") if len(r.metrics.get("retry_gaps_s") or []) >= 2]
    if not rows:
        return None, "no generation was retried twice"

    def judge(r: ScenarioResult) -> tuple[bool, str]:
        gaps = r.metrics["retry_gaps_s"]
        attempts = r.metrics["max_fal_submissions_per_generation"]
        ratio = gaps[1] / gaps[0] if gaps[0] > 0 else None
        ok = attempts == timing_value(r, "retry_attempts") and ratio is not None and ratio >= EXPONENTIAL_RATIO
        return bool(ok), (f"{r.name}: up to {attempts} FAL submissions per generation, mean delays "
                          f"{' then '.join(f'{g:.2f}s' for g in gaps)} (growth x{_fmt(ratio)}; "
                          f"exponential needs >= x{EXPONENTIAL_RATIO:g})")

    return _each(rows, judge)


def attempt_timeout(results: list[ScenarioResult]) -> tuple[bool | None, str]:
    rows = _tagged(results, "attempt_timeout")
    if not rows:
        return None, "no scenario made FAL slower than the per-attempt timeout"

    def judge(r: ScenarioResult) -> tuple[bool, str]:
        attempts = timing_value(r, "retry_attempts")
        bound = (attempts * timing_value(r, "fal_attempt_timeout_s")
                 + (attempts - 1) * timing_value(r, "retry_max_delay_s") + POLL_SLACK_S)
        longest = r.metrics.get("max_generation_s")
        ok = r.metrics["lost_generations"] == 0 and longest is not None and longest <= bound
        return bool(ok), (f"{r.name}: longest generation {_fmt(longest)}s (bound {bound:g}s), "
                          f"{r.metrics['lost_generations']} lost")

    return _each(rows, judge)


def specific_503s(results: list[ScenarioResult]) -> tuple[bool | None, str]:
    seen = sum(sum(r.metrics.get("reasons_503", {}).values()) for r in results)
    if not seen:
        return None, "no 503 was returned"
    missing = sum(r.metrics.get("missing_retry_after") or 0 for r in results)
    wrong = sum(r.metrics.get("wrong_503_detail") or 0 for r in results)
    return missing == 0 and wrong == 0, (f"{seen} 503s: {missing} without a whole-seconds Retry-After, "
                                         f"{wrong} without the exact sentence of their reason")


def steady_state(results: list[ScenarioResult]) -> tuple[bool | None, str]:
    outside = [r.metrics["outside"] for r in results if r.metrics.get("outside") and r.metrics["outside"]["requests"]]
    total = sum(o["requests"] for o in outside)
    if not total:
        return None, "no request was sent outside fault windows"
    success = sum(o["success_rate"] * o["requests"] for o in outside) / total
    rate_503 = sum(o["rate_503"] * o["requests"] for o in outside) / total
    return (success >= STEADY_SUCCESS and rate_503 < STEADY_503,
            f"{total} requests outside fault windows: success {success:.2%}, 503s {rate_503:.2%}")


def valid_tokens(results: list[ScenarioResult]) -> tuple[bool | None, str]:
    total = sum(r.metrics.get("requests") or 0 for r in results)
    if not total:
        return None, "no request was sent"
    failures = sum(r.metrics.get("auth_failures") or 0 for r in results)
    return failures == 0, f"{failures} of {total} requests with valid tokens answered 401/403"


def generation_time(results: list[ScenarioResult]) -> tuple[bool | None, str]:
    longest = [r.metrics.get("max_generation_s") for r in results if r.metrics.get("max_generation_s") is not None]
    if not longest:
        return None, "no generation finished"
    worst = max(longest)
    return worst < GENERATION_CLAIM_S, f"longest generation {worst:.2f}s (claim: under {GENERATION_CLAIM_S:g}s)"


@dataclass(frozen=True)
class Claim:
    key: str
    text: str
    judge: Callable[[list[ScenarioResult]], tuple[bool | None, str]]


CLAIMS = (
    Claim("breaker_opens", "Circuit breaker opens after 5 failures", breaker_opens),
    Claim("breaker_half_opens", "Circuit breaker half-opens after the recovery window", breaker_half_opens),
    Claim("recovery_30s", "100% circuit breaker recovery within 30 seconds", recovery_30s),
    Claim("retries", "Retries: 3 attempts with exponential backoff", retries),
    Claim("attempt_timeout", "Per-attempt FAL timeout is honoured", attempt_timeout),
    Claim("specific_503s", "503 responses carry the specific message and Retry-After", specific_503s),
    Claim("steady_state", "99.5%+ success rate and under 5% 503s outside fault windows", steady_state),
    Claim("valid_tokens", "Zero authentication failures for valid tokens", valid_tokens),
    Claim("generation_time", "Generation time under 3 minutes", generation_time),
)


def audit(results: list[ScenarioResult]) -> list[ClaimResult]:
    """Every claim for every profile that has results, claim by claim."""
    profiles = list(dict.fromkeys(r.profile for r in results))
    audited = []
    for claim in CLAIMS:
        for profile in profiles:
            held, evidence = claim.judge([r for r in results if r.profile == profile])
            audited.append(ClaimResult(claim=claim.text, profile=profile, held=bool(held),
                                       evidence=evidence if held is not None else f"not measured: {evidence}",
                                       key=claim.key, measured=held is not None))
    return audited
