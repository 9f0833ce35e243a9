"""Side-by-side timing for the benchmark scripts: arms alternated round by round (the machine is shared and
noisy, so each round sees the same conditions for every arm), medians, ratios, and a JSON file of the results.

To run: imported by the benchmark scripts (inference.py, in_context.py, train_step.py, mlm_head.py, step_overhead.py,
eval_overhead.py): `from timing import alternate`.
"""

import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path


def alternate(arms: dict[str, Callable[[], object]], repeats: int) -> dict[str, list[float]]:
    """Seconds per call of each arm over `repeats` rounds; a first round warms up and is dropped."""
    return alternate_results(arms, repeats)[0]


def alternate_results(arms: dict[str, Callable[[], object]],
                      repeats: int) -> tuple[dict[str, list[float]], dict[str, list[object]]]:
    """Each arm called once a round, in turn, for `repeats` rounds after a warm-up round (dropped: imports, caches,
    compilation): the seconds of each call, and what each call returned (an arm's predictions, the times it noted
    itself)."""
    times, results = {arm: [] for arm in arms}, {arm: [] for arm in arms}
    for i in range(repeats + 1):
        for arm, call in arms.items():
            start = time.perf_counter()
            value = call()
            if i:
                times[arm].append(time.perf_counter() - start)
                results[arm].append(value)
    return times, results


def write(out: str, times: dict[str, list[float]], base: str, **context) -> dict:
    """Medians and speed-ups over arm `base`, printed and written to `out` with `context`."""
    median = {arm: statistics.median(t) for arm, t in times.items()}
    speedup = {arm: median[base] / t for arm, t in median.items()}
    result = {**context, "base": base, "median_step_s": median, "speedup": speedup, "all_step_s": times}
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2))
    for arm, t in median.items():
        print(f"{arm:40s} {t:7.2f} s/step  x{median[base] / t:.2f}")
    print("->", path)
    return result
