"""The statistics of studies and benchmarks. A study's cell is a matrix of correctness, one row per seed and one
column per evaluation review; its uncertainty has two sources, the seeds (what a run drew: labels, demonstrations,
calibration sample, order) and the reviews (which were drawn for evaluation). The bootstrap resamples both together:
in each draw the same review resample serves every seed and both sides of a comparison, and approaches run with the
same seeds share the seed resample, so a paired difference keeps its pairing on both axes.

To run: python -m src study report --config configs/studies/label_budget.yaml   (or benchmarks/zero_shot_lengths.py)
"""

import math
import statistics

import numpy as np

# Two-sided 95% Student t quantiles by degrees of freedom (beyond 30 the normal's 1.96 is within 4%).
T95 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262, 10: 2.228,
       15: 2.131, 20: 2.086, 30: 2.042}


def seed_interval(values: list[float]) -> tuple[float, float | None]:
    """Mean and the half-width of its 95% t interval over seeds (None for one run: no spread to measure)."""
    mean = statistics.fmean(values)
    if len(values) < 2:
        return mean, None
    df = len(values) - 1
    t = T95[max(k for k in T95 if k <= df)] if df <= 30 else 1.96  # between table rows: the larger t (wider)
    return mean, t * statistics.stdev(values) / math.sqrt(len(values))


def _draws(correct: list[list[int]], reviews: np.ndarray, seeds: np.ndarray) -> np.ndarray:
    """Accuracy of every bootstrap draw: [draws], from review counts [draws, n] and seed counts [draws, k]."""
    c = np.asarray(correct, dtype=float)  # [k, n]
    per_seed = reviews @ c.T / c.shape[1]  # [draws, k]: each seed's accuracy on the draw's reviews
    return (per_seed * seeds).sum(1) / seeds.sum(1)


def _resample(n: int, k: int, draws: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    reviews = rng.multinomial(n, np.full(n, 1 / n), size=draws)
    seeds = rng.multinomial(k, np.full(k, 1 / k), size=draws)
    return reviews, seeds


def bootstrap_interval(correct: list[list[int]], draws: int, seed: int = 0) -> tuple[float, float]:
    """95% percentile interval of a cell's accuracy, resampling its seeds and its reviews together."""
    rng = np.random.default_rng(seed)
    reviews, seeds = _resample(len(correct[0]), len(correct), draws, rng)
    low, high = np.percentile(_draws(correct, reviews, seeds), [2.5, 97.5])
    return float(low), float(high)


def paired_difference(a: dict[int, list[int]], b: dict[int, list[int]], draws: int,
                      seed: int = 0) -> tuple[float, float, float]:
    """Accuracy of `a` minus `b` (each: seed -> correctness on the same reviews), with its 95% bootstrap interval.
    Each draw resamples the reviews once for both; when both ran the same seeds, one seed resample serves both (a
    seed is then the same draw of labels for both), else each side's seeds are resampled on their own."""
    if len(next(iter(a.values()))) != len(next(iter(b.values()))):
        raise ValueError("a paired difference needs the same evaluation reviews on both sides")
    rng = np.random.default_rng(seed)
    ca, cb = [a[s] for s in sorted(a)], [b[s] for s in sorted(b)]
    n = len(ca[0])
    reviews, seeds_a = _resample(n, len(ca), draws, rng)
    seeds_b = seeds_a if sorted(a) == sorted(b) else rng.multinomial(len(cb), np.full(len(cb), 1 / len(cb)),
                                                                     size=draws)
    diff = _draws(ca, reviews, seeds_a) - _draws(cb, reviews, seeds_b)
    mean = float(np.mean(ca) - np.mean(cb))
    low, high = np.percentile(diff, [2.5, 97.5])
    return mean, float(low), float(high)


def mcnemar_exact(a: list[int], b: list[int]) -> float:
    """Two-sided exact McNemar p-value of two classifiers' correctness on the same reviews (a binomial test on the
    reviews where exactly one of them is right)."""
    only_a = sum(x and not y for x, y in zip(a, b))
    only_b = sum(y and not x for x, y in zip(a, b))
    m = only_a + only_b
    if m == 0:
        return 1.0
    tail = sum(math.comb(m, i) for i in range(min(only_a, only_b) + 1)) / 2**m
    return min(1.0, 2 * tail)
