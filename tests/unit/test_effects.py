"""Fault-effect proof: a fault counts only when its bite is visible (silent proxy, slower or failed
generations, timeouts the service counted, errors in FAL's log, stuck jobs); each fault is shown
next to the same fault that did nothing."""

from __future__ import annotations

import pytest

from chaos.judge.effects import fault_effects, latency_shift_s
from chaos.judge.measures import counted
from tests.unit.judge_support import completed, failed, observation, poll, refused, result, submit, upstream_key, window

STORAGE_TIMEOUTS = upstream_key("storage", "upload", "timeout")


def steady(generation_s: float = 0.4) -> list:
    """Requests well away from a 5..8 s fault window: before it and after it."""
    return [completed(t, generation_s) for t in (0.5, 1.0, 1.5, 2.0, 10.0, 10.5, 11.0)]


def during(generation_s: float) -> list:
    return [completed(t, generation_s) for t in (5.5, 6.0, 6.5, 7.0)]


def only_effect(obs):
    effects = fault_effects(obs)
    assert len(effects) == 1
    return effects[0]


# --- a proxy taken down ------------------------------------------------------------------------

FAL_DOWN = window(5.0, 8.0, "fal", "down", proxy="fal", proxy_bytes=0, description="fal proxy down")


def test_a_silent_proxy_whose_requests_failed_shows_its_effect():
    effect = only_effect(observation(steady() + [refused(t, "fal_unavailable") for t in (5.5, 6.0, 6.5)],
                                     windows=[FAL_DOWN]))
    assert effect.fault == "fal proxy down"
    assert effect.shown is True
    assert "0 bytes through fal" in effect.evidence and "3 of 3 requests" in effect.evidence


def test_a_proxy_down_while_every_request_succeeded_did_nothing():
    effect = only_effect(observation(steady() + during(0.4), windows=[FAL_DOWN]))
    assert effect.shown is False
    assert "0 of 4 requests" in effect.evidence


def test_a_proxy_that_moved_bytes_while_down_was_not_down():
    moving = window(5.0, 8.0, "fal", "down", proxy="fal", proxy_bytes=4096)
    effect = only_effect(observation(steady() + [refused(t, "fal_unavailable") for t in (5.5, 6.0)],
                                     windows=[moving]))
    assert effect.shown is False


def test_a_wrong_image_is_no_success_during_a_down_fault():
    wrong = during(0.4)
    for record in wrong:
        record.image_ok = False
    assert only_effect(observation(steady() + wrong, windows=[FAL_DOWN])).shown is True


# --- latency toxics ----------------------------------------------------------------------------

LATENCY = window(5.0, 8.0, "storage", "latency", proxy="storage", attributes={"latency": 1000}, proxy_bytes=2048)


def test_latency_shift_is_the_median_during_minus_the_median_outside():
    obs = observation(steady(0.4) + during(1.2), windows=[LATENCY])
    assert latency_shift_s(obs, LATENCY) == pytest.approx(0.8)


def test_a_one_second_latency_toxic_that_slowed_generations_by_0_8_s_shows_its_effect():
    effect = only_effect(observation(steady(0.4) + during(1.2), windows=[LATENCY]))
    assert effect.shown is True
    assert "median generation +0.80s" in effect.evidence


def test_a_latency_toxic_that_slowed_nothing_did_nothing():
    assert only_effect(observation(steady(0.4) + during(0.4), windows=[LATENCY])).shown is False


def test_a_latency_toxic_showing_less_than_half_its_delay_did_nothing():
    assert only_effect(observation(steady(0.4) + during(0.8), windows=[LATENCY])).shown is False


def test_a_latency_toxic_that_fired_the_services_timeout_shows_its_effect_without_a_shift():
    obs = observation(steady(0.4) + during(0.4), windows=[LATENCY], service_counters={STORAGE_TIMEOUTS: 2})
    assert only_effect(obs).shown is True


def test_a_latency_toxic_on_a_proxy_that_moved_nothing_did_nothing():
    idle = window(5.0, 8.0, "storage", "latency", proxy="storage", attributes={"latency": 1000}, proxy_bytes=0)
    assert only_effect(observation(steady(0.4) + during(1.2), windows=[idle])).shown is False


def test_without_requests_outside_the_fault_no_shift_can_be_measured():
    effect = only_effect(observation(during(1.2), windows=[LATENCY]))
    assert effect.shown is False
    assert "no latency shift measurable" in effect.evidence


# --- timeout and bandwidth toxics: the service's own timeout counter ---------------------------

TIMEOUT = window(5.0, 8.0, "storage", "timeout", proxy="storage", attributes={"timeout": 500}, proxy_bytes=512)


def test_a_timeout_toxic_the_service_counted_timeouts_for_shows_its_effect():
    obs = observation(steady() + during(0.4), windows=[TIMEOUT], counters_at_start={STORAGE_TIMEOUTS: 2},
                      service_counters={STORAGE_TIMEOUTS: 5})
    effect = only_effect(obs)
    assert effect.shown is True
    assert "the service counted 3 storage timeouts" in effect.evidence


def test_a_timeout_toxic_with_no_new_timeout_counted_did_nothing():
    obs = observation(steady() + during(0.4), windows=[TIMEOUT], counters_at_start={STORAGE_TIMEOUTS: 2},
                      service_counters={STORAGE_TIMEOUTS: 2})
    assert only_effect(obs).shown is False


def test_a_timeout_toxic_counts_only_its_own_dependencys_timeouts():
    others = {upstream_key("fal", "submit", "timeout"): 4, upstream_key("storage", "upload", "error"): 4}
    obs = observation(steady() + during(0.4), windows=[TIMEOUT], service_counters=others)
    assert only_effect(obs).shown is False


def test_a_bandwidth_toxic_that_slowed_generations_shows_its_effect_without_timeouts():
    bandwidth = window(5.0, 8.0, "storage", "bandwidth", proxy="storage", attributes={"rate": 1}, proxy_bytes=100)
    assert only_effect(observation(steady(0.4) + during(0.6), windows=[bandwidth])).shown is True
    assert only_effect(observation(steady(0.4) + during(0.4), windows=[bandwidth])).shown is False


def test_a_reset_peer_toxic_shows_its_effect_by_the_failed_calls_the_service_counted():
    resets = window(5.0, 8.0, "database", "reset_peer", proxy="postgres", proxy_bytes=300)
    key = upstream_key("database", "query", "error")
    assert only_effect(observation(steady(), windows=[resets], service_counters={key: 3})).shown is True
    assert only_effect(observation(steady(), windows=[resets])).shown is False


def test_counts_are_read_only_from_the_counter_the_contract_names():
    resets = window(5.0, 8.0, "database", "reset_peer", proxy="postgres", proxy_bytes=300)
    counters = {upstream_key("database", "query", "error"): 3}
    assert counted(observation(steady(), service_counters=counters), "database", "error") == 3
    assert counted(observation(steady(), service_counters=counters, upstream_metric=None), "database", "error") == 0
    renamed = {"svc_calls_total{dependency=database,operation=query,outcome=error}": 3}
    assert counted(observation(steady(), service_counters=renamed, upstream_metric="svc_calls_total"),
                   "database", "error") == 3
    assert only_effect(observation(steady(), windows=[resets], service_counters=counters,
                                   upstream_metric=None)).shown is False


# --- FAL behaviours: FAL's own log --------------------------------------------------------------

SUBMIT_ERRORS = window(5.0, 8.0, "fal", "submit_error_rate", attributes={"submit_error_rate": 1.0})


def test_fal_submit_errors_seen_in_fals_log_during_the_fault_show_its_effect():
    log = [submit(1.0, 200, "r0", "g0"), submit(6.0, 500, None, "g1"), submit(6.5, 500, None, "g2")]
    effect = only_effect(observation(steady(), windows=[SUBMIT_ERRORS], fal_log=log))
    assert effect.shown is True
    assert "FAL answered 2 calls with an injected error" in effect.evidence


def test_fal_submit_errors_never_answered_did_nothing():
    log = [submit(1.0, 200, "r0", "g0"), submit(6.0, 200, "r1", "g1")]
    assert only_effect(observation(steady(), windows=[SUBMIT_ERRORS], fal_log=log)).shown is False


def test_fal_errors_outside_the_fault_window_are_not_its_effect():
    log = [submit(4.9, 500, None, "g0"), submit(8.0, 500, None, "g1"), submit(6.0, 200, "r1", "g1")]
    assert only_effect(observation(steady(), windows=[SUBMIT_ERRORS], fal_log=log)).shown is False


STUCK = window(5.0, 8.0, "fal", "stuck_rate", attributes={"stuck_rate": 1.0})


def test_a_fal_job_stuck_during_the_fault_shows_its_effect():
    log = [submit(5.5, 200, "r1", "g1"), poll(6.0, "r1"), poll(7.0, "r1")]
    effect = only_effect(observation(steady(), windows=[STUCK], fal_log=log))
    assert effect.shown is True
    assert "1 FAL jobs stuck" in effect.evidence


def test_a_stuck_job_fault_whose_jobs_all_finished_did_nothing():
    log = [submit(5.5, 200, "r1", "g1"), poll(6.0, "r1"), result(6.2, "r1")]
    assert only_effect(observation(steady(), windows=[STUCK], fal_log=log)).shown is False


def test_fal_job_failures_show_as_failed_generations_during_the_fault():
    failures = window(5.0, 8.0, "fal", "job_failure_rate", attributes={"job_failure_rate": 1.0})
    assert only_effect(observation(steady() + [failed(6.0)], windows=[failures])).shown is True
    assert only_effect(observation(steady() + during(0.4), windows=[failures])).shown is False


def test_fal_latency_must_show_half_its_delay():
    slow = window(5.0, 8.0, "fal", "latency_s", attributes={"latency_s": 2.0})
    assert only_effect(observation(steady(0.4) + during(1.9), windows=[slow])).shown is True
    assert only_effect(observation(steady(0.4) + during(0.9), windows=[slow])).shown is False


def test_a_combined_fal_behaviour_shows_its_effect_when_any_part_bites():
    combined = window(5.0, 8.0, "fal", "latency_s+submit_error_rate",
                      attributes={"latency_s": 2.0, "submit_error_rate": 0.5})
    biting = observation(steady(0.4) + during(0.4), windows=[combined], fal_log=[submit(6.0, 500, None, "g1")])
    assert only_effect(biting).shown is True
    assert only_effect(observation(steady(0.4) + during(0.4), windows=[combined])).shown is False


# --- one effect per fault --------------------------------------------------------------------------

def test_every_fault_of_a_scenario_is_judged_on_its_own():
    storage_down = window(12.0, 14.0, "storage", "down", proxy="storage", proxy_bytes=0,
                          description="storage proxy down")
    requests = steady() + [refused(6.0, "fal_unavailable"), completed(12.5)]
    effects = fault_effects(observation(requests, windows=[FAL_DOWN, storage_down]))
    assert [(e.fault, e.shown) for e in effects] == [("fal proxy down", True), ("storage proxy down", False)]


def test_effects_come_in_the_order_the_faults_started():
    outer = window(1.0, 10.0, "fal", "down", proxy="fal", proxy_bytes=0, description="outer")
    inner = window(3.0, 5.0, "storage", "down", proxy="storage", proxy_bytes=0, description="inner")
    effects = fault_effects(observation(windows=[inner, outer]))  # the timeline records a window when it ends
    assert [e.fault for e in effects] == ["outer", "inner"]
