"""fp32 versus bf16 autocast for a MiniLM training step on this machine's CPU.

Why: on CPUs without AVX512-BF16 or AMX, bf16 autocast is emulated and far slower than fp32, so
the CLI runs `bf16-mixed` configs in fp32 there. This measures the gap, arms alternated, medians.
To run: .venv/bin/python benchmarks/precision.py   (writes outputs/bench/precision.json)
"""

import json
import statistics
import time
from pathlib import Path

import torch
from transformers import AutoModelForSequenceClassification

from src.cli import cpu_has_fast_bf16
from src.pretrained import from_pretrained


def main(batch: int = 16, length: int = 256, repeats: int = 3) -> dict:
    torch.manual_seed(0)
    model = from_pretrained(AutoModelForSequenceClassification, "sentence-transformers/all-MiniLM-L6-v2", num_labels=2)
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-5)
    x, y = torch.randint(1000, 20000, (batch, length)), torch.randint(0, 2, (batch,))
    times = {"fp32": [], "bf16-autocast": []}
    for i in range(repeats + 1):  # the first round warms up and is dropped
        for arm in times:
            start = time.perf_counter()
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=arm != "fp32"):
                loss = model(input_ids=x, labels=y).loss
            loss.backward()
            opt.step()
            opt.zero_grad()
            if i:
                times[arm].append(time.perf_counter() - start)
    result = {
        "cpu_capability": torch.backends.cpu.get_cpu_capability(), "cpu_has_fast_bf16": cpu_has_fast_bf16(),
        "threads": torch.get_num_threads(), "batch": batch, "length": length,
        "median_step_s": {arm: statistics.median(t) for arm, t in times.items()}, "all_step_s": times,
    }
    result["bf16_over_fp32"] = result["median_step_s"]["bf16-autocast"] / result["median_step_s"]["fp32"]
    out = Path("outputs/bench/precision.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(json.dumps(result["median_step_s"]), f"bf16/fp32 = {result['bf16_over_fp32']:.1f}x", "->", out)
    return result


if __name__ == "__main__":
    main()
