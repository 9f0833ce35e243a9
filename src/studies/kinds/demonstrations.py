"""k labelled demonstrations in the prompt (in-context learning): k class-balanced training reviews, drawn and
ordered by the run's seed (never evaluation reviews), passed to `InContextClassifier`. The run sits at N = k.

To run: python -m src study run --config configs/studies/label_budget.yaml --only in_context_k4
"""

import json
from dataclasses import dataclass

from src.data.selection import demonstrations
from src.studies.approach import Approach
from src.studies.kinds import register


@register("demonstrations")
@dataclass
class Demonstrations(Approach):
    def run_args(self, study, labels: int, seed: int) -> list[str]:
        demos = demonstrations(study.source, labels, seed, study.val_size, study.split_seed)
        return ["--model.init_args.demonstrations", json.dumps(demos.texts),
                "--model.init_args.demonstration_labels", json.dumps(demos.labels)]
