"""N human labels that only the run's prerequisites use (per budget and seed, `{labels}` in their commands): say, an
ensemble whose in-context member holds N demonstrations (`python -m src study demonstrations --k {labels}`). The run
itself gets no label argument; N places its row in the table.

To run: python -m src study run --config configs/studies/beat_the_teacher_validation.yaml --only zero_shot_ensemble_icl
"""

from dataclasses import dataclass

from src.studies.approach import Approach
from src.studies.kinds import register


@register("upstream_labels")
@dataclass
class UpstreamLabels(Approach):
    pass  # the base's hooks: the study's budgets (or the approach's own), no arguments of its own
