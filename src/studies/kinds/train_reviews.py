"""Fully supervised recipes: N is how many labelled training reviews a run trains on (`data.limit_train`, a seeded
sample of the train split; all 22,500 with the default validation split), not a class-balanced label budget. The
time-budget search (configs/studies/time_budget_45min.yaml) compares recipes that way.

To run: python -m src study run --config configs/studies/time_budget_45min.yaml
"""

from dataclasses import dataclass
from typing import ClassVar

from src.studies.approach import Approach
from src.studies.kinds import register


@register("train_reviews")
@dataclass
class TrainReviews(Approach):
    budget_meaning: ClassVar[str] = "labelled training reviews"

    def run_args(self, study, labels: int, seed: int) -> list[str]:
        return ["--data.init_args.limit_train", str(labels)]
