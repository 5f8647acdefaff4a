"""The terminal summary of `genchaos run` lists where the service's telemetry disagreed with what happened,
and says nothing of it when it never did."""

from __future__ import annotations

from rich.console import Console

from chaos.commands.run import print_summary
from chaos.judge.verdicts import ScenarioResult


def _result(status: str) -> ScenarioResult:
    row = {"aspect": "503s counted by cause", "service_said": "counted none", "status": status,
           "happened": "clients received 14: fal_unavailable 14", "tolerance": "equal by cause"}
    return ScenarioResult(name="fal_down", profile="hardened", timing="fast", verdict="fail", checks=[],
                          metrics={"requests": 75}, telemetry=[row])


def test_disagreements_are_listed_and_agreement_is_not():
    console = Console(record=True, width=200)
    print_summary(console, [_result("not held")], [])
    text = console.export_text()
    assert "what the service said" in text and "counted none" in text and "clients received 14" in text
    console = Console(record=True, width=200)
    print_summary(console, [_result("held")], [])
    assert "what the service said" not in console.export_text()
