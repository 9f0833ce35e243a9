"""No human labels (N = 0): zero-shot prompting, or a student of a teacher's labels. The seed still varies what the
run draws from unlabelled reviews (the calibration sample, the teacher's reviews, the training order), through
`data.sample_seed`, which every run gets.

To run: python -m src study run --config configs/studies/label_budget.yaml --only zero_shot
"""

from dataclasses import dataclass

from src.studies.approach import Approach
from src.studies.kinds import register


@register("unlabelled")
@dataclass
class Unlabelled(Approach):
    def default_budgets(self, study_budgets: list[int]) -> list[int]:
        return [0]
