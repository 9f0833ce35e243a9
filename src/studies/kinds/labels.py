"""N human labels: a seeded, class-balanced sample of N labelled training reviews (`data.label_budget`), drawn anew
for every seed; optionally trained for a number of steps that grows with N.

To run: python -m src study run --config configs/studies/label_budget.yaml --only finetune
"""

import math
from dataclasses import dataclass

from src.studies.approach import Approach
from src.studies.kinds import register


@dataclass
class Steps:
    """Train `epochs` passes over the N labels in batches of `batch_size`, at least `min` steps."""

    epochs: float
    min: int
    batch_size: int = 16


@register("label_budget")
@dataclass
class Labels(Approach):
    steps: Steps | None = None

    def run_args(self, study, labels: int, seed: int) -> list[str]:
        args = ["--data.init_args.label_budget", str(labels), "--data.init_args.label_seed", str(seed)]
        if self.steps is not None:  # steps, not epochs: an epoch of 16 labels is one step
            steps = max(self.steps.min, math.ceil(self.steps.epochs * labels / self.steps.batch_size))
            args += ["--data.init_args.batch_size", str(self.steps.batch_size), "--trainer.max_steps", str(steps),
                     "--trainer.max_epochs", "-1"]
        return args
