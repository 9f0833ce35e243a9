"""Approach kinds register themselves here by name; a new kind is a new file in this folder, imported below.

- labels.py (`label_budget`, the default): a class-balanced sample of N human labels (fine-tuning, linear
  probe, distillation plus labels)
- unlabelled.py: no human labels (zero-shot, a distilled student)
- demonstrations.py: k labelled demonstrations in the prompt (in-context learning)
- calibrations.py: a zero-shot run classified under several calibrations from the same scores (the prompt grid)
- train_reviews.py: N labelled training reviews, every one at most (fully supervised recipes: the time-budget search)
- upstream_labels.py: N human labels used only by the run's prerequisites (an ensemble's in-context member)

To run: python -m src study run --config configs/studies/label_budget.yaml
"""

from src.studies.approach import Approach

KINDS: dict[str, type[Approach]] = {}


def register(name: str):
    """Class decorator: the approach kind `name` (the study file's `kind:`)."""

    def add(cls: type[Approach]) -> type[Approach]:
        KINDS[name] = cls
        return cls

    return add


# Importing a kind registers it.
from src.studies.kinds import (  # noqa: E402, F401
    calibrations,
    demonstrations,
    labels,
    train_reviews,
    unlabelled,
    upstream_labels,
)
