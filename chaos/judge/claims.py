"""The report's claims, audited: each claim is judged, profile by profile, from the scenario results
of a run: held, not held, inconclusive (the evidence says how many samples would decide) or not
measured.

Timed claims are judged against the timings each service said it ran with (its /readyz), so the
report's own numbers apply on the ``real`` preset and scaled ones on ``fast``. Rate claims carry
n and a 95% Wilson interval. The gated profiles' claims decide the run's verdict too.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from chaos.judge.fal_log import EXPONENTIAL_RATIO, MIN_FIRST_DELAY_SHARE
from chaos.judge.registry import CLAIM_KEYS
from chaos.judge.stats import Status, judge_rate, worst
from chaos.judge.verdicts import ScenarioResult

REPORT_RECOVERY_WINDOW_S = 30.0  # the report's breaker window: its 30 s recovery and 3 minutes are sized on it
RECOVERY_CLAIM_S = 30.0
GENERATION_CLAIM_S = 180.0
STEADY_SUCCESS = 0.995
STEADY_503 = 0.05
PROBE_SLACK_S = 2.0  # recovery also needs the probe's request to arrive and its generation to complete

Verdict = tuple[Status | None, str]


@dataclass
class ClaimResult:
    claim: str
    profile: str
    held: bool | str | None  # true, false, "inconclusive", or null (not measured)
    evidence: str
    key: str
    measured: bool
    status: str  # held | not held | inconclusive | not measured


def _scale(result: ScenarioResult) -> float:
    """How the run's timings compare with the report's: 1 on the real preset, 2/30 on fast."""
    return result.timings.get("breaker_recovery_timeout_s", REPORT_RECOVERY_WINDOW_S) / REPORT_RECOVERY_WINDOW_S


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def _tagged(results: list[ScenarioResult], key: str) -> list[ScenarioResult]:
    return [r for r in results if key in r.evidence and r.error is None]


def _each(rows: list[ScenarioResult], judge: Callable[[ScenarioResult], tuple[bool, str]]) -> Verdict:
    """A claim held by every scenario that is evidence for it; the evidence of each, joined."""
    verdicts = [judge(r) for r in rows]
    held = all(ok for ok, _ in verdicts)
    return (Status.HELD if held else Status.NOT_HELD), "; ".join(text for _, text in verdicts)


def breaker_opens(results: list[ScenarioResult]) -> Verdict:
    rows = _tagged(results, "breaker_opens")
    if not rows:
        return None, "no scenario exercised the breaker"

    def judge(r: ScenarioResult) -> tuple[bool, str]:
        return bool(r.metrics.get("breaker_opened_at_threshold")), (
            f"{r.name}: opened={r.metrics['breaker_opened']} with {_fmt(r.metrics.get('failures_to_open'))} "
            f"consecutive failed submits seen by FAL (threshold {_fmt(r.timings.get('breaker_failure_threshold'))})")

    return _each(rows, judge)


def breaker_half_opens(results: list[ScenarioResult]) -> Verdict:
    rows = _tagged(results, "breaker_half_opens")
    if not rows:
        return None, "no scenario exercised the breaker's recovery window"

    def judge(r: ScenarioResult) -> tuple[bool, str]:
        return bool(r.metrics.get("breaker_probed_after_window")), (
            f"{r.name}: FAL saw its first call {_fmt(r.metrics.get('open_to_probe_s'))}s after the breaker was "
            f"seen open (window {_fmt(r.timings.get('breaker_recovery_timeout_s'))}s)")

    return _each(rows, judge)


def recovery_30s(results: list[ScenarioResult]) -> Verdict:
    rows = [r for r in _tagged(results, "recovery_30s") if r.metrics["breaker_opened"]]
    if not rows:
        return None, "no scenario opened the breaker"

    def judge(r: ScenarioResult) -> tuple[bool, str]:
        bound = RECOVERY_CLAIM_S * _scale(r) + PROBE_SLACK_S
        recovery = r.metrics["recovery_s"]
        return recovery is not None and recovery <= bound, (
            f"{r.name}: recovered in {_fmt(recovery)}s (bound {bound:.1f}s on {r.timing} timing)")

    return _each(rows, judge)


def retries(results: list[ScenarioResult]) -> Verdict:
    rows = [r for r in _tagged(results, "retries") if len(r.metrics.get("retry_gaps_s") or []) >= 2]
    if not rows:
        return None, "no generation was retried twice"

    def judge(r: ScenarioResult) -> tuple[bool, str]:
        gaps = r.metrics["retry_gaps_s"]
        attempts = r.metrics["max_fal_submissions_per_generation"]
        ratio = gaps[1] / gaps[0] if gaps[0] > 0 else None
        ok = attempts == r.timings.get("retry_attempts") and bool(r.metrics.get("backoff_grows"))
        return ok, (f"{r.name}: up to {attempts} FAL submissions per generation, mean delays "
                    f"{' then '.join(f'{g:.2f}s' for g in gaps)} (growth x{_fmt(ratio)}; exponential needs "
                    f">= x{EXPONENTIAL_RATIO:g} after a first delay of at least {MIN_FIRST_DELAY_SHARE:g} x the base)")

    return _each(rows, judge)


def attempt_timeout(results: list[ScenarioResult]) -> Verdict:
    rows = [r for r in _tagged(results, "attempt_timeout") if r.metrics.get("stuck_fal_jobs")]
    if not rows:
        return None, "no FAL job was held past the per-attempt timeout"

    def judge(r: ScenarioResult) -> tuple[bool, str]:
        bad, stuck, lost = r.metrics["unabandoned_stuck_jobs"], r.metrics["stuck_fal_jobs"], r.metrics["lost_generations"]
        return bad == 0 and lost == 0, (
            f"{r.name}: {stuck} FAL jobs held forever, {bad} not abandoned at the "
            f"{_fmt(r.timings.get('fal_attempt_timeout_s'))}s attempt timeout (longest polled for "
            f"{_fmt(r.metrics.get('longest_stuck_job_s'))}s), {lost} generations lost")

    return _each(rows, judge)


def specific_503s(results: list[ScenarioResult]) -> Verdict:
    seen = sum(sum(r.metrics.get("reasons_503", {}).values()) for r in results)
    if not seen:
        return None, "no 503 was returned"
    missing = sum(r.metrics.get("missing_retry_after") or 0 for r in results)
    out_of_range = sum(r.metrics.get("retry_after_out_of_range") or 0 for r in results)
    wrong = sum(r.metrics.get("wrong_503_detail") or 0 for r in results)
    misattributed = sum(r.metrics.get("misattributed_503") or 0 for r in results)
    examples = [f"{r.name}: {e}" for r in results for e in r.metrics.get("misattributed_503_examples") or []][:3]
    held = missing == 0 and out_of_range == 0 and wrong == 0 and misattributed == 0
    return (Status.HELD if held else Status.NOT_HELD), (
        f"{seen} 503s: {misattributed} not naming the dependency the harness broke, {missing} without a "
        f"whole-seconds Retry-After"
        + (f", {out_of_range} with a Retry-After outside the waits the service publishes" if out_of_range else "")
        + f", {wrong} without the exact sentence of their reason"
        + (f" (e.g. {'; '.join(examples)})" if examples else ""))


def steady_state(results: list[ScenarioResult]) -> Verdict:
    """Every request outside fault windows (and their settle time) of every scenario, pooled, except those of
    scenarios that overload the service on purpose (``steady_state: false``)."""
    outside = [r.metrics["outside"] for r in results
               if r.steady_state and r.metrics.get("outside") and r.metrics["outside"]["requests"]]
    total = sum(o["requests"] for o in outside)
    if not total:
        return None, "no request was sent outside fault windows"
    successes = round(sum(o["success_rate"] * o["requests"] for o in outside))
    refused = round(sum(o["rate_503"] * o["requests"] for o in outside))
    success = judge_rate(successes, total, minimum=STEADY_SUCCESS)
    rate_503 = judge_rate(refused, total, maximum=STEADY_503)
    return worst([success.status, rate_503.status]), (
        f"{total} requests outside fault windows: success {success.describe()}; 503s {rate_503.describe()}")


def valid_tokens(results: list[ScenarioResult]) -> Verdict:
    total = sum(r.metrics.get("requests") or 0 for r in results)
    if not total:
        return None, "no request was sent"
    failures = sum(r.metrics.get("auth_failures") or 0 for r in results)
    return (Status.HELD if failures == 0 else Status.NOT_HELD), (
        f"{failures} of {total} requests with valid tokens answered 401/403")


def generation_time(results: list[ScenarioResult]) -> Verdict:
    """The report promises an average under 3 minutes (scaled to the run's timings); a generation never
    seen finished counts as taking the whole bound, and fails the claim on its own."""
    rows = [r for r in results if r.error is None and r.metrics.get("requests")]
    times: list[float] = []
    unfinished = 0
    for r in rows:
        times += r.metrics.get("generation_times_s") or []
        unfinished += r.metrics.get("lost_generations") or 0
    if not rows or not (times or unfinished):
        return None, "no generation was accepted"
    bound = min(GENERATION_CLAIM_S * _scale(r) for r in rows)
    counted = sorted(times + [bound] * unfinished)
    mean = sum(counted) / len(counted)
    p95 = counted[max(0, -(-95 * len(counted) // 100) - 1)]
    return (Status.HELD if mean < bound and not unfinished else Status.NOT_HELD), (
        f"average {mean:.2f}s over {len(counted)} generations (bound {bound:.1f}s at this timing), "
        f"p95 {p95:.2f}s, max {counted[-1]:.2f}s, {unfinished} never finished")


@dataclass(frozen=True)
class Claim:
    key: str
    text: str
    judge: Callable[[list[ScenarioResult]], Verdict]


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
EVIDENCE_KEYS_JUDGED = set(CLAIM_KEYS) <= {c.key for c in CLAIMS}


def _held(status: Status | None) -> bool | str | None:
    return {Status.HELD: True, Status.NOT_HELD: False, Status.INCONCLUSIVE: "inconclusive", None: None}[status]


def audit(results: list[ScenarioResult]) -> list[ClaimResult]:
    """Every claim for every profile that has results, claim by claim."""
    profiles = list(dict.fromkeys(r.profile for r in results))
    audited = []
    for claim in CLAIMS:
        for profile in profiles:
            status, evidence = claim.judge([r for r in results if r.profile == profile])
            audited.append(ClaimResult(claim=claim.text, profile=profile, held=_held(status),
                                       evidence=evidence if status is not None else f"not measured: {evidence}",
                                       key=claim.key, measured=status is not None,
                                       status=status.value if status is not None else "not measured"))
    return audited


def failed_claims(claims: list[ClaimResult], gated_profiles: list[str]) -> list[ClaimResult]:
    """Claims of the gated profiles that read not held: they fail the run like a failed scenario."""
    return [c for c in claims if c.profile in gated_profiles and c.held is False]
