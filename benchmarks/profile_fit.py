"""Where a fit step's time goes, end to end: data loading and collation, forward, backward, optimizer, callbacks
and logging (Lightning's SimpleProfiler around this project's fit), then the operators inside forward and
backward (torch.profiler on the same model and a batch of the same shape).

To run: .venv/bin/python benchmarks/profile_fit.py   (writes outputs/bench/profile_fit.json and .md)
"""

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
OUT = ROOT / "outputs/bench/profile_fit"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=40, help="training steps to profile")
    parser.add_argument("--max_length", type=int, default=512)
    args = parser.parse_args()

    from src.cli import main as cli_main

    cli = cli_main(["--config", str(ROOT / "configs/bench_fit.yaml"), f"--data.max_length={args.max_length}",
                    f"--trainer.max_steps={args.steps}", "--trainer.logger.init_args.name=profile",
                    "--trainer.profiler=lightning.pytorch.profilers.SimpleProfiler"], run=False)
    profiler = cli.trainer.profiler
    cli.datamodule.prepare_data()
    start = time.perf_counter()
    cli.trainer.fit(cli.model, datamodule=cli.datamodule)
    wall = time.perf_counter() - start

    durations = {name: sum(t) for name, t in profiler.recorded_durations.items()}
    calls = {name: len(t) for name, t in profiler.recorded_durations.items()}
    steps = durations["run_training_batch"] + durations["[_TrainingEpochLoop].train_dataloader_next"]
    stages = sorted(((n, d) for n, d in durations.items() if d > 0.001 * steps), key=lambda x: -x[1])

    # Inside forward and backward: the operators, on one batch of the profiled run's mean padded shape.
    model = cli.model.model.train()
    batch = next(iter(cli.datamodule.train_dataloader()))
    x, mask, y = batch["input_ids"], batch["attention_mask"], batch["labels"]
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        model(input_ids=x, attention_mask=mask, labels=y).loss.backward()
    ops = sorted(prof.key_averages(), key=lambda e: -e.self_cpu_time_total)
    op_total = sum(e.self_cpu_time_total for e in ops)

    # The optimizer step alone (on the gradients of the backward above): PyTorch's per-parameter loop, foreach,
    # and fused AdamW, alternated.
    params = [p for p in model.parameters() if p.requires_grad]
    optimizers = {kind: torch.optim.AdamW(params, lr=1e-5, **{kind: True} if kind != "loop" else {"foreach": False})
                  for kind in ("loop", "foreach", "fused")}
    times = {kind: [] for kind in optimizers}
    for _ in range(11):
        for kind, opt in optimizers.items():
            start = time.perf_counter()
            opt.step()
            times[kind].append(time.perf_counter() - start)
    adamw = {kind: statistics.median(t[1:]) for kind, t in times.items()}  # the first round warms up

    result = {"steps": args.steps, "max_length": args.max_length, "fit_wall_s": wall, "train_step_s": steps,
              "stages": {n: {"total_s": d, "calls": calls[n], "share_of_steps": d / steps} for n, d in stages},
              "op_batch_shape": list(x.shape),
              "ops": {e.key: e.self_cpu_time_total / op_total for e in ops[:15]}, "adamw_step_s": adamw}
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.with_suffix(".json").write_text(json.dumps(result, indent=2))
    lines = [f"{args.steps} steps at max length {args.max_length}: {steps:.1f} s in training steps "
             f"(batch fetch included), fit {wall:.1f} s.", "", "| stage | calls | total s | share of steps |",
             "| --- | ---: | ---: | ---: |"]
    lines += [f"| {n} | {calls[n]} | {d:.2f} | {d / steps:.1%} |" for n, d in stages]
    lines += ["", f"Operators in one forward and backward, batch {list(x.shape)}:", "", "| operator | self CPU share |",
              "| --- | ---: |"]
    lines += [f"| {e.key} | {e.self_cpu_time_total / op_total:.1%} |" for e in ops[:15]]
    lines += ["", "AdamW step, median of 10: " + ", ".join(f"{k} {v * 1e3:.0f} ms" for k, v in adamw.items())]
    OUT.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    print(f"-> {OUT}.json, {OUT}.md")


if __name__ == "__main__":
    main()
