"""A study one run after the other against the same study on N workers (`python -m src study run --workers N`):
the label-budget study's linear-probe rows (by default N = 16 and 64 labels, seeds 0 and 1: 4 runs, each scoring the
study's 2,000 test reviews), each arm in its own output folder, wall time of the whole command, and whether every run
predicted the same on every review.

To run: .venv/bin/python benchmarks/study_workers.py --workers 2   (writes outputs/bench/study_workers.json)
        python benchmarks/study_workers.py --approach finetune --budgets 16 64 256 1024 --workers 4 --gpus 0 0 0 0
"""

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "outputs/bench/study_workers.json"
SETTINGS = ("eval_split", "source", "val_size", "split_seed", "eval_size", "eval_seed", "bootstrap")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--approach", default="linear_probe", help="an approach of configs/studies/label_budget.yaml")
    parser.add_argument("--budgets", type=int, nargs="+", default=[16, 64])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--gpus", type=int, nargs="+", default=[],
                        help="the spread arm's GPUs, one per worker; a GPU listed N times takes N runs at once")
    args = parser.parse_args()
    base = yaml.safe_load((ROOT / "configs/studies/label_budget.yaml").read_text())
    tmp = Path(tempfile.mkdtemp(prefix="study_workers_"))
    result, rows = {"approach": args.approach, "budgets": args.budgets, "seeds": args.seeds, "gpus": args.gpus}, {}
    spread = ["--workers", str(args.workers), *(["--gpus", *map(str, args.gpus)] if args.gpus else [])]
    for arm, extra in (("serial", []), (f"workers{args.workers}", spread)):
        spec = {k: base[k] for k in SETTINGS} | {
            "name": arm, "output_dir": str(tmp / arm), "budgets": args.budgets, "seeds": args.seeds,
            "reference": args.approach, "approaches": [a for a in base["approaches"] if a["name"] == args.approach]}
        (tmp / f"{arm}.yaml").write_text(yaml.safe_dump(spec))
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "src", "study", "run", "--config", str(tmp / f"{arm}.yaml"), *extra],
                       cwd=ROOT, check=True)
        result[f"{arm}_s"] = time.perf_counter() - start
        lines = (tmp / arm / arm / "results.jsonl").read_text().split("\n")
        rows[arm] = {(r["labels"], r["seed"]): r for r in map(json.loads, filter(None, lines))}
        result[f"{arm}_run_s"] = sorted(r["wall_s"] for r in rows[arm].values())
    serial, spread = rows.values()
    result["speedup"] = result["serial_s"] / result[f"workers{args.workers}_s"]
    result["same_predictions"] = all(serial[k]["correct"] == spread[k]["correct"] for k in serial)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2), "\n->", OUT)


if __name__ == "__main__":
    main()
