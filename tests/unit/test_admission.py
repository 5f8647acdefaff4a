"""Admission under overload, judged from the clients' side: a service that keeps its claimed bound is
never blamed for it, one that queues past it is; abandoned FAL jobs are the ones nobody fetched,
cancelled or still waits for."""

from __future__ import annotations

from chaos.judge import admission, fal_log
from tests.unit.judge_support import cancel, completed, observation, refused, result, submit


def _burst(accepted: int, generation_s: float) -> list:
    """``accepted`` generations sent 0.01 s apart, each taking ``generation_s``."""
    return [completed(i * 0.01, generation_s=generation_s, generation_id=f"g{i}") for i in range(accepted)]


def test_a_service_that_queues_past_its_bound_is_caught():
    obs = observation(_burst(30, generation_s=10.0))
    obs.timings = {"admission_bound": 20}
    assert admission.admitted_beyond_bound(obs) == 9  # the 22nd to the 30th (the first 21 see at most 20 before)


def test_a_service_that_keeps_its_bound_is_never_blamed():
    obs = observation(_burst(20, generation_s=10.0) + [refused(0.5 + i * 0.01, "overloaded") for i in range(10)])
    obs.timings = {"admission_bound": 20}
    assert admission.admitted_beyond_bound(obs) == 0
    assert admission.shed_requests(obs) == 10


def test_generations_that_may_have_finished_do_not_count_towards_the_bound():
    obs = observation(_burst(30, generation_s=1.5))  # seen done within the margin of the next ones' answers
    obs.timings = {"admission_bound": 20}
    assert admission.admitted_beyond_bound(obs) == 0


def test_no_claimed_bound_is_nothing_to_judge():
    assert admission.admitted_beyond_bound(observation(_burst(30, generation_s=10.0))) is None


def test_a_job_neither_fetched_nor_cancelled_is_abandoned():
    done = completed(1.0, generation_id="g1")
    obs = observation([done], fal_log=[submit(1.1, 200, "r1", "g1"), result(1.5, "r1"),
                                       submit(1.2, 200, "r2", "g1"), submit(1.3, 200, "r3", "g1"),
                                       cancel(1.6, "r3"), submit(1.4, 500, None, "g1")])
    assert fal_log.abandoned_jobs(obs) == ["r2"]


def test_a_job_whose_generation_is_still_waiting_is_not_abandoned():
    waiting = completed(1.0, generation_id="g1")
    waiting.final_status, waiting.terminal_t = None, None
    assert fal_log.abandoned_jobs(observation([waiting], fal_log=[submit(1.1, 200, "r1", "g1")])) == []


def test_shedding_is_unmeasured_when_the_load_never_reached_the_bound():
    quick = observation(_burst(10, generation_s=10.0))
    quick.timings = {"admission_bound": 20}
    assert "never held 20" in admission.why_shedding_unmeasured(quick)
    past = observation(_burst(30, generation_s=10.0))
    past.timings = {"admission_bound": 20}
    assert admission.why_shedding_unmeasured(past) is None  # it went past the bound and shed nothing: judged
