"""A zero-shot run classified under several calibrations from the same scores (the prompt grid's runs): the run
predicts raw scores (`calibration: none`), and each listed calibration classifies the evaluation reviews from them.

To run: python -m src prompts run --config configs/studies/prompts.yaml
"""

from dataclasses import dataclass, field

import torch

from src.errors import UserError
from src.studies.kinds import register
from src.studies.kinds.unlabelled import Unlabelled


@register("calibrations")
@dataclass
class Calibrations(Unlabelled):
    compare: list[str] = field(default_factory=list)

    def results(self, model, raw_rows: list[dict], labels: list[int]) -> dict:
        if model.hparams.get("calibration") != "none":
            raise UserError(f"approach {self.name!r} compares calibrations, so its runs must predict raw scores; fix: "
                            "add --model.init_args.calibration none to its args")
        scores = torch.tensor([row["probabilities"] for row in raw_rows]).log()
        compared = {}
        for kind in self.compare:
            predicted = model.calibrate(scores, kind).argmax(-1).tolist()
            compared[kind] = [int(p == y) for p, y in zip(predicted, labels)]
        return {"compared": compared}
