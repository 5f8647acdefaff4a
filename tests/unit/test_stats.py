"""Statistical verdicts: Wilson intervals against published values, and rates judged held, not held
or inconclusive (with the sample that would decide them), each next to the case that flips it."""

from __future__ import annotations

import pytest

from chaos.judge.stats import Status, judge_rate, smallest_deciding_sample, wilson_interval, worst


@pytest.mark.parametrize(("successes", "n", "low", "high"), [
    # Wilson score 95% intervals (Newcombe 1998, Brown, Cai & DasGupta 2001)
    (0, 10, 0.0, 0.2775),
    (10, 10, 0.7225, 1.0),
    (5, 10, 0.2366, 0.7634),
    (1, 10, 0.0179, 0.4042),
    (95, 100, 0.8882, 0.9785),
])
def test_wilson_interval_matches_published_values(successes, n, low, high):
    got_low, got_high = wilson_interval(successes, n)
    assert got_low == pytest.approx(low, abs=1e-3)
    assert got_high == pytest.approx(high, abs=1e-3)


def test_wilson_interval_without_a_sample_is_the_whole_range():
    assert wilson_interval(0, 0) == (0.0, 1.0)


def test_a_perfect_small_sample_is_inconclusive_and_names_the_sample_that_would_decide_it():
    verdict = judge_rate(49, 49, minimum=0.995)
    assert verdict.status is Status.INCONCLUSIVE
    # n / (n + z^2) >= 0.995  <=>  n >= 199 z^2 = 764.4: the smallest perfect run that proves 99.5%
    assert verdict.n_needed == 765
    assert "inconclusive" in verdict.describe() and "765" in verdict.describe()


def test_at_the_needed_sample_a_perfect_run_holds_and_one_short_does_not():
    needed = judge_rate(49, 49, minimum=0.995).n_needed
    assert judge_rate(needed, needed, minimum=0.995).status is Status.HELD
    assert judge_rate(needed - 1, needed - 1, minimum=0.995).status is Status.INCONCLUSIVE


def test_a_rate_clearly_below_its_minimum_is_not_held():
    verdict = judge_rate(90, 100, minimum=0.995)
    assert verdict.status is Status.NOT_HELD
    assert verdict.n_needed is None


def test_a_rate_clearly_above_its_minimum_holds():
    assert judge_rate(999, 1000, minimum=0.95).status is Status.HELD


def test_a_rate_clearly_below_its_maximum_holds_and_clearly_above_is_not_held():
    assert judge_rate(1, 1000, maximum=0.05).status is Status.HELD
    assert judge_rate(200, 1000, maximum=0.05).status is Status.NOT_HELD


def test_a_rate_near_its_maximum_is_inconclusive_with_a_larger_sample_needed():
    verdict = judge_rate(5, 100, maximum=0.1)
    assert verdict.status is Status.INCONCLUSIVE
    assert verdict.n_needed is not None and verdict.n_needed > 100
    # at the named size, the same observed rate decides
    n = verdict.n_needed
    assert judge_rate(round(0.05 * n), n, maximum=0.1).status is Status.HELD


def test_a_rate_sitting_on_its_bound_can_never_be_decided():
    verdict = judge_rate(50, 100, minimum=0.5)
    assert verdict.status is Status.INCONCLUSIVE
    assert verdict.n_needed is None
    assert "more than the rate allows" in verdict.describe()


def test_a_maximum_of_zero_is_judged_on_counts_one_hit_is_not_held():
    assert judge_rate(1, 100, maximum=0).status is Status.NOT_HELD
    # no hit at all holds, even on a sample too small for any interval to prove it
    assert judge_rate(0, 3, maximum=0).status is Status.HELD


def test_a_minimum_of_one_is_judged_on_counts_one_miss_is_not_held():
    assert judge_rate(99, 100, minimum=1).status is Status.NOT_HELD
    assert judge_rate(3, 3, minimum=1).status is Status.HELD


def test_no_sample_is_inconclusive_whatever_the_bound():
    assert judge_rate(0, 0, minimum=0.9).status is Status.INCONCLUSIVE
    assert judge_rate(0, 0, maximum=0).status is Status.INCONCLUSIVE


def test_a_verdict_describes_its_rate_sample_and_interval():
    text = judge_rate(90, 100, minimum=0.995).describe()
    assert text.startswith("0.900 (n=100, 95% CI 0.826")
    assert "inconclusive" not in text


@pytest.mark.parametrize(("statuses", "expected"), [
    ([Status.HELD, Status.HELD], Status.HELD),
    ([Status.HELD, Status.INCONCLUSIVE], Status.INCONCLUSIVE),
    ([Status.INCONCLUSIVE, Status.NOT_HELD, Status.HELD], Status.NOT_HELD),
    ([], Status.INCONCLUSIVE),
])
def test_worst_lets_not_held_beat_inconclusive_beat_held(statuses, expected):
    assert worst(statuses) is expected


def test_the_smallest_deciding_sample_is_where_a_perfect_outcome_first_holds():
    assert smallest_deciding_sample(0.7, None) == 9
    assert judge_rate(9, 9, minimum=0.7).status is Status.HELD
    assert judge_rate(8, 8, minimum=0.7).status is Status.INCONCLUSIVE
    assert smallest_deciding_sample(None, 0.05) == 73
    assert judge_rate(0, 73, maximum=0.05).status is Status.HELD
    assert judge_rate(0, 72, maximum=0.05).status is Status.INCONCLUSIVE
    assert smallest_deciding_sample(1.0, None) == 1  # "every one" is judged on counts
    assert smallest_deciding_sample(0.2, 0.8) is None
