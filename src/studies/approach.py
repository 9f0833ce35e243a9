"""An approach of a study: a recipe run at label budgets and seeds. Its kind (a subclass in `src/studies/kinds/`,
registered by name) says what a run's labels are and what else a run records; the runner only calls these hooks.

To run: python -m src study run --config configs/studies/label_budget.yaml
"""

from dataclasses import dataclass, field
from typing import ClassVar


@dataclass
class Requires:
    """A prerequisite: `commands` (each a command line; `python` is this interpreter) run once, in order, unless
    `path` exists. `{seed}` in either is the run's seed: a prerequisite per seed (say, a teacher per seed); `{labels}`
    its label budget, for a prerequisite per budget and seed (say, a first student of N labels). `needs`: the named
    prerequisites its commands read, made first. Shared ones are named in configs/studies/prerequisites.yaml, and a
    study file names them (`requires: teacher`)."""

    path: str
    commands: list[list[str]]
    what: str = ""
    needs: list[str] = field(default_factory=list)


@dataclass
class Approach:
    """The fields every kind has; `kind` picks the subclass."""

    budget_meaning: ClassVar[str] = "human labels"  # what N counts, in the report's words (not a field: not keyed)
    name: str
    config: list[str]
    kind: str = "label_budget"
    args: list[str] = field(default_factory=list)  # `{seed}` is the run's seed
    budgets: list[int] | None = None  # None: the kind's default (the study's budgets, or [0])
    seeds: list[int] | None = None  # None: the study's
    requires: Requires | None = None  # what it makes and its runs read; by name in a study file
    needs: list[str] = field(default_factory=list)  # other named prerequisites its runs read, made first

    def default_budgets(self, study_budgets: list[int]) -> list[int]:
        return study_budgets

    def run_args(self, study, labels: int, seed: int) -> list[str]:
        """The kind's own CLI arguments of a run with `labels` human labels and `seed`."""
        return []

    def results(self, model, raw_rows: list[dict], labels: list[int]) -> dict:
        """What a run records beyond accuracy, from its module and its predictions on the evaluation reviews."""
        return {}
