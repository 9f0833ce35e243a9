"""Side-by-side timing for the benchmark scripts: arms alternated round by round (the machine is shared and
noisy, so each round sees the same conditions for every arm), medians, ratios, and a JSON file of the results.

To run: imported by benchmarks/mlm_head.py and benchmarks/train_step.py.
"""

import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path


def alternate(arms: dict[str, Callable[[], None]], repeats: int) -> dict[str, list[float]]:
    """Seconds per call of each arm over `repeats` rounds; a first round warms up and is dropped."""
    times = {arm: [] for arm in arms}
    for i in range(repeats + 1):
        for arm, step in arms.items():
            start = time.perf_counter()
            step()
            if i:
                times[arm].append(time.perf_counter() - start)
    return times


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
