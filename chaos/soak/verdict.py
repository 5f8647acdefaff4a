"""The soak's verdict: nothing lost, nothing submitted twice, no orphans, every kill came back, the
fault timeline ran, and no process lifetime grew beyond the stated bounds.

Each check is held, not held, inconclusive (the evidence cannot decide) or unmeasured (the evidence is
missing, and the check says what is missing); it is never held for want of evidence. The soak holds
when no check is not held or inconclusive: an unmeasured check decides nothing, as in `genchaos run`.
"""

from __future__ import annotations

from dataclasses import dataclass

from chaos.soak.growth import Growth, GrowthBounds, amount
from chaos.soak.kills import Kill
from chaos.soak.ledger import Ledger

HELD, NOT_HELD, INCONCLUSIVE, UNMEASURED = "held", "not held", "inconclusive", "unmeasured"


@dataclass(frozen=True)
class Check:
    name: str
    verdict: str  # HELD, NOT_HELD, INCONCLUSIVE or UNMEASURED
    expected: str
    observed: str  # for an unmeasured check: what is missing


def _judged(name: str, ok: bool, expected: str, observed: str) -> Check:
    return Check(name, HELD if ok else NOT_HELD, expected, observed)


def growth_check(growth: list[Growth]) -> Check:
    grown = [g for g in growth if g.held is False]
    judged = sum(g.held is not None for g in growth)
    observed = "; ".join(
        f"{g.component} pid {g.pid} {g.metric} {amount(g.metric, g.baseline)} -> {amount(g.metric, g.final)} "
        f"(limit {amount(g.metric, g.limit)})" for g in grown) or f"{judged} lifetime metrics within bounds"
    return _judged("no resource growth beyond the bounds", not grown and judged > 0,
                   "every judged lifetime within its limit", observed)


def long_lifetime_check(growth: list[Growth], run_s: float, share: float) -> Check:
    """Growth judged only over short lifetimes (a process killed every half minute) says nothing about a
    slow leak: each component needs one judged lifetime spanning ``share`` of the run."""
    needed = share * run_s
    longest: dict[str, float] = {}
    for g in growth:
        span = g.end_t - g.start_t if g.held is not None else 0.0
        longest[g.component] = max(longest.get(g.component, 0.0), span)
    short = {component: span for component, span in sorted(longest.items()) if span < needed}
    observed = "; ".join(f"{component}: longest judged lifetime {span:.0f} s" for component, span in short.items())
    return _judged("every component judged over a long lifetime", bool(longest) and not short,
                   f"one judged lifetime of at least {needed:.0f} s per component",
                   observed or f"{len(longest)} components, shortest longest lifetime "
                               f"{min(longest.values(), default=0):.0f} s")


def submissions_check(ledger: Ledger) -> Check:
    """Judged on the generations FAL's log ties jobs to; with none, it would hold on nothing."""
    name, expected = "nothing submitted to FAL twice", "0"
    if not ledger.seen_by_fal:
        return Check(name, UNMEASURED, expected, f"FAL's log ties no job to any of the {ledger.accepted} accepted "
                                                 "generations: their prompts reached FAL without the harness's marker")
    return _judged(name, ledger.submitted_twice == 0, expected,
                   f"{ledger.submitted_twice} ({ledger.documented_resubmissions} documented retries, "
                   f"{ledger.resubmitted_after_kill_mid_submit} after a kill mid-submit; "
                   f"{ledger.seen_by_fal} of {ledger.accepted} accepted generations seen by FAL)")


def orphans_check(ledger: Ledger) -> Check:
    """Objects no acknowledged generation owns are orphans, unless generations the load generator never
    heard of (their 202 was lost to a kill) may own them: then the count cannot decide."""
    name, expected = "no orphaned objects", "0"
    if ledger.objects_unmeasured:
        return Check(name, UNMEASURED, expected, ledger.objects_unmeasured)
    observed = f"{ledger.orphaned_objects} of {ledger.stored_objects} stored objects"
    if 0 < ledger.orphaned_objects <= ledger.unacknowledged:
        return Check(name, INCONCLUSIVE, expected,
                     f"{observed} named by no acknowledged generation, and the service took on "
                     f"{ledger.unacknowledged} generations whose 202 never arrived (FAL saw their prompts), which "
                     "may own them")
    return _judged(name, ledger.orphaned_objects == 0, expected, observed)


def missing_objects_check(ledger: Ledger) -> Check:
    name, expected = "no completed generation without its object", "0"
    if ledger.objects_unmeasured or not ledger.completed:
        return Check(name, UNMEASURED, expected, ledger.objects_unmeasured or "no generation completed")
    return _judged(name, ledger.missing_objects == 0, expected, str(ledger.missing_objects))


def checks(ledger: Ledger, growth: list[Growth], kills: list[Kill], problems: list[str], run_s: float,
           bounds: GrowthBounds, service_elsewhere: str | None = None) -> list[Check]:
    """Every check of the soak; ``service_elsewhere`` says why the service's own process could be neither
    killed nor sampled (it runs elsewhere), None when the harness started it."""
    failed_kills = [f"{k.target} at {k.t:g}s: {k.error}" for k in kills if k.error]
    accounted = [
        _judged("counts add up", ledger.adds_up(), "accepted = completed + failed + lost",
                f"{ledger.accepted} = {ledger.completed} + {ledger.failed} + {ledger.lost}"),
        _judged("nothing lost", ledger.lost == 0, "0", f"{ledger.lost} ({ledger.gone} gone: the API answers 404)"),
        _judged("every failure has a reason", ledger.failed_without_reason == 0, "0",
                str(ledger.failed_without_reason)),
        submissions_check(ledger),
    ]
    if not ledger.accepted:  # each would hold on nothing
        accounted = [Check(c.name, UNMEASURED, c.expected, "no generation was accepted") for c in accounted]
    results = [
        _judged("generations were accepted", ledger.accepted > 0, "> 0", str(ledger.accepted)),
        *accounted,
        orphans_check(ledger),
        missing_objects_check(ledger),
        _judged("every kill came back", not failed_kills, "every killed process restarted",
                "; ".join(failed_kills) or f"{len(kills)} kills, all back"),
        _judged("the fault timeline ran", not problems, "no fault error", "; ".join(problems) or "no error"),
        growth_check(growth),
        long_lifetime_check(growth, run_s, bounds.long_lifetime_share),
    ]
    if service_elsewhere:
        results.append(Check("the service's process killed and sampled", UNMEASURED,
                             "kill -9 and resource samples of the service", service_elsewhere))
    return results


def overall(results: list[Check]) -> str:
    """not held when any check is, else inconclusive when any is, else held."""
    verdicts = {c.verdict for c in results}
    return NOT_HELD if NOT_HELD in verdicts else INCONCLUSIVE if INCONCLUSIVE in verdicts else HELD
