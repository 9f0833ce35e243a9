"""k labelled demonstrations in the prompt (in-context learning): k class-balanced training reviews, drawn and
ordered by the run's seed (never evaluation reviews), passed to `InContextClassifier`. The run sits at N = k.

The same draw as a config overlay, for a run outside a study's own runs (an ensemble's in-context member, made as a
prerequisite): `python -m src study demonstrations --k 16 --seed 0 --output demos.yaml`, then `python -m src fit
--config configs/gpt_zeroshot_imdb.yaml --config configs/studies/in_context.yaml --config demos.yaml`.

To run: python -m src study run --config configs/studies/label_budget.yaml --only in_context_k4
"""

import json
from dataclasses import dataclass
from pathlib import Path

import yaml

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


def write_overlay(path: str | Path, source: str | None, k: int, seed: int, val_size: int | float = 2500,
                  split_seed: int = 42) -> None:
    """The k demonstrations a study run of this kind draws with `seed`, as a config overlay of
    `InContextClassifier`'s arguments (`--config path` after configs/studies/in_context.yaml)."""
    demos = demonstrations(source, k, seed, val_size, split_seed)
    overlay = {"model": {"init_args": {"demonstrations": demos.texts, "demonstration_labels": demos.labels}}}
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(f"# python -m src study demonstrations --k {k} --seed {seed}: {k} class-balanced training "
                          "reviews, none held out\n" + yaml.safe_dump(overlay, allow_unicode=True, width=10**6))
