"""The study's statistics: intervals that resample seeds and reviews, paired differences, McNemar's exact test."""

import math

import pytest

from src.stats import bootstrap_interval, mcnemar_exact, paired_difference, seed_interval


def test_the_seed_interval_matches_a_hand_computed_t_interval_and_one_run_has_none():
    mean, half = seed_interval([0.80, 0.90, 0.85])
    # sd = 0.05, n = 3, t(0.975, df 2) = 4.303: 4.303 * 0.05 / sqrt(3)
    assert mean == pytest.approx(0.85) and half == pytest.approx(4.303 * 0.05 / math.sqrt(3))
    assert seed_interval([0.7]) == (0.7, None)


def test_the_bootstrap_interval_covers_the_binomial_spread_of_one_run():
    correct = [[1] * 300 + [0] * 100]  # 75% of 400 reviews: standard error 2.17 points
    low, high = bootstrap_interval(correct, draws=4000)
    assert low < 0.75 < high
    assert high - low == pytest.approx(2 * 1.96 * math.sqrt(0.75 * 0.25 / 400), rel=0.15)


def test_the_bootstrap_interval_resamples_seeds_too():
    # Two seeds, one right on every review, one wrong on every review: resampling reviews alone sees no spread at all
    # (every review is right for exactly one seed); the seeds are the whole uncertainty.
    low, high = bootstrap_interval([[1] * 200, [0] * 200], draws=2000)
    assert low == 0.0 and high == 1.0


def test_a_paired_difference_keeps_the_pairing_across_seeds_and_reviews():
    # Two seeds with opposite errors on the same reviews, and an approach b identical to a seed for seed: a − b is
    # exactly 0 in every draw. Resampling a's and b's seeds (or reviews) independently would give a wide interval.
    x = [1] * 100 + [0] * 100
    a = {0: x, 1: [1 - v for v in x]}
    assert paired_difference(a, dict(a), draws=2000) == (0.0, 0.0, 0.0)
    # b wrong on 10 reviews that a gets right, in each seed: +5 points, the interval excludes zero and covers it.
    b = {0: [0 if i < 10 else v for i, v in enumerate(a[0])],
         1: [0 if 100 <= i < 110 else v for i, v in enumerate(a[1])]}
    diff, low, high = paired_difference(a, b, draws=2000)
    assert diff == pytest.approx(0.05) and 0 < low < 0.05 < high


def test_a_difference_between_unrelated_runs_is_wider_than_a_paired_one():
    import random

    rng = random.Random(0)
    shared = [int(rng.random() < 0.8) for _ in range(400)]
    a = {0: shared, 1: shared}
    b = {0: [v if rng.random() > 0.05 else 1 - v for v in shared], 1: list(shared)}
    _, low, high = paired_difference(a, b, draws=2000)
    c = {0: [int(rng.random() < 0.8) for _ in range(400)], 1: [int(rng.random() < 0.8) for _ in range(400)]}
    _, low_c, high_c = paired_difference(a, c, draws=2000)
    assert high - low < (high_c - low_c) / 2


def test_mcnemar_exact_against_hand_computed_binomial_tails():
    a = [1] * 5 + [1] * 50
    b = [0] * 5 + [1] * 50  # 5 reviews only a gets right, none only b: p = 2 * 0.5^5
    assert mcnemar_exact(a, b) == pytest.approx(2 / 32)
    assert mcnemar_exact(a, a) == 1.0
    c = [1, 1, 1, 0] + [1] * 10  # 3 only-c, 1 only-d: p = 2 * (1 + 4) / 16, capped at 1
    d = [0, 0, 0, 1] + [1] * 10
    assert mcnemar_exact(c, d) == pytest.approx(min(1.0, 2 * 5 / 16))
