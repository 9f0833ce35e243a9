"""A MiniLM training step on this machine's CPU: fp32 versus bf16 autocast, attention dropout on and off, and in bf16
hidden dropout on and off (the 45-minute recipe trains without either).

Why: on CPUs without AVX512-BF16 or AMX, bf16 autocast is emulated and far slower than fp32, so
the CLI runs `bf16-mixed` configs in fp32 there; and attention dropout in training keeps PyTorch's
fused attention kernel from running. Arms alternate within each round; medians over rounds.
To run: .venv/bin/python benchmarks/train_step.py [--batch 16 --length 384]   (writes outputs/bench/train_step.json)
"""

import argparse
from collections.abc import Callable

import torch
from timing import alternate, write  # benchmarks/timing.py, beside this script
from transformers import AutoModelForSequenceClassification

from src.hardware import cpu_has_fast_bf16
from src.pretrained import from_pretrained

ARMS = {  # name: (bf16 autocast, attention dropout, hidden dropout)
    "fp32, attention dropout 0.1": (False, 0.1, 0.1),
    "fp32, attention dropout 0": (False, 0.0, 0.1),
    "bf16 autocast, attention dropout 0": (True, 0.0, 0.1),
    "bf16 autocast, no dropout": (True, 0.0, 0.0),
}


def main(batch: int = 8, length: int = 256, repeats: int = 3) -> dict:
    torch.manual_seed(0)
    x, y = torch.randint(1000, 20000, (batch, length)), torch.randint(0, 2, (batch,))
    models = {}
    for arm, (_, attention, hidden) in ARMS.items():
        model = from_pretrained(AutoModelForSequenceClassification, "sentence-transformers/all-MiniLM-L6-v2",
                                num_labels=2, attention_probs_dropout_prob=attention, hidden_dropout_prob=hidden)
        models[arm] = (model.train(), torch.optim.AdamW(model.parameters(), lr=1e-5))
    def step(arm: str, bf16: bool) -> Callable[[], None]:
        def run() -> None:
            model, opt = models[arm]
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                loss = model(input_ids=x, labels=y).loss
            loss.backward()
            opt.step()
            opt.zero_grad()
        return run

    times = alternate({arm: step(arm, bf16) for arm, (bf16, _, _) in ARMS.items()}, repeats)
    return write("outputs/bench/train_step.json", times, base="fp32, attention dropout 0.1",
                 cpu_capability=torch.backends.cpu.get_cpu_capability(), cpu_has_fast_bf16=cpu_has_fast_bf16(),
                 threads=torch.get_num_threads(), batch=batch, length=length)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--length", type=int, default=256, help="tokens a review (random ids, no padding)")
    parser.add_argument("--repeats", type=int, default=3, help="rounds, each arm once a round")
    main(**vars(parser.parse_args()))
