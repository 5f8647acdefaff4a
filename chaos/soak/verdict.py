"""The soak's verdict: nothing lost, nothing submitted twice, no orphans, every kill came back, the
fault timeline ran, and no process lifetime grew beyond the stated bounds."""

from __future__ import annotations

from dataclasses import dataclass

from chaos.soak.growth import Growth, GrowthBounds, amount
from chaos.soak.kills import Kill
from chaos.soak.ledger import Ledger


@dataclass(frozen=True)
class Check:
    name: str
    held: bool
    expected: str
    observed: str


def growth_check(growth: list[Growth]) -> Check:
    grown = [g for g in growth if g.held is False]
    judged = sum(g.held is not None for g in growth)
    observed = "; ".join(
        f"{g.component} pid {g.pid} {g.metric} {amount(g.metric, g.baseline)} -> {amount(g.metric, g.final)} "
        f"(limit {amount(g.metric, g.limit)})" for g in grown) or f"{judged} lifetime metrics within bounds"
    return Check("no resource growth beyond the bounds", not grown and judged > 0,
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
    return Check("every component judged over a long lifetime", bool(longest) and not short,
                 f"one judged lifetime of at least {needed:.0f} s per component",
                 observed or f"{len(longest)} components, shortest longest lifetime "
                             f"{min(longest.values(), default=0):.0f} s")


def checks(ledger: Ledger, growth: list[Growth], kills: list[Kill], problems: list[str], run_s: float,
           bounds: GrowthBounds) -> list[Check]:
    failed_kills = [f"{k.target} at {k.t:g}s: {k.error}" for k in kills if k.error]
    return [
        Check("generations were accepted", ledger.accepted > 0, "> 0", str(ledger.accepted)),
        Check("counts add up", ledger.adds_up(), "accepted = completed + failed + lost",
              f"{ledger.accepted} = {ledger.completed} + {ledger.failed} + {ledger.lost}"),
        Check("nothing lost", ledger.lost == 0, "0", f"{ledger.lost} ({ledger.gone_from_database} gone from the database)"),
        Check("every failure has a reason", ledger.failed_without_reason == 0, "0", str(ledger.failed_without_reason)),
        Check("nothing submitted to FAL twice", ledger.submitted_twice == 0, "0",
              f"{ledger.submitted_twice} ({ledger.documented_resubmissions} documented retries, "
              f"{ledger.resubmitted_after_kill_mid_submit} after a kill mid-submit)"),
        Check("no orphaned objects", ledger.orphaned_objects == 0, "0", str(ledger.orphaned_objects)),
        Check("no completed generation without its object", ledger.missing_objects == 0, "0",
              str(ledger.missing_objects)),
        Check("every kill came back", not failed_kills, "every killed process restarted",
              "; ".join(failed_kills) or f"{len(kills)} kills, all back"),
        Check("the fault timeline ran", not problems, "no fault error", "; ".join(problems) or "no error"),
        growth_check(growth),
        long_lifetime_check(growth, run_s, bounds.long_lifetime_share),
    ]


def held(results: list[Check]) -> bool:
    return all(c.held for c in results)
