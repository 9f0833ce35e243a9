"""A teacher's labels for distillation and self-training: the reviews and class probabilities of a predictions file
(or the mean of several teachers' over the same reviews: an ensemble teacher), optionally sharpened by a temperature
and cut to the most confident reviews of each class.

Sharpening (UDA, Xie et al. 2019; the in-context teacher of the label-budget study taught a worse student than the
zero-shot one because its probabilities were flatter) raises each probability to the power 1 / T and renormalises:
T < 1 sharpens, T = 1 keeps them. The selection (noisy-student self-training, Xie et al. 2020) keeps, for each class,
the `per_class` reviews the teacher gives that class most confidently: confident labels, and as many of each class.

To run: python -m src fit --config configs/bert_imdb.yaml --config configs/studies/few_labels.yaml
          --data.init_args.soft_labels <predictions.jsonl> --data.init_args.soft_label_temperature 0.5
"""

import json
from pathlib import Path

import torch

from src.errors import UserError


def read_soft_labels(path: str, num_labels: int) -> tuple[list[str], list[list[float]]]:
    """The reviews and class probabilities of a predictions file."""
    if not Path(path).is_file():
        raise UserError(f"data.soft_labels {path!r} does not exist; fix: write it with `python -m src predict` and a "
                        "teacher's checkpoint (see configs/studies/label_budget.yaml, the distilled approach)")
    # Lines end at "\n" only: splitlines would also cut a review at U+2028 or U+0085 inside it.
    rows = [json.loads(line) for line in Path(path).read_text(encoding="utf-8").split("\n") if line.strip()]
    bad = next((i for i, r in enumerate(rows) if "text" not in r or len(r.get("probabilities") or []) != num_labels),
               None)
    if not rows or bad is not None:
        raise UserError(f"line {(bad or 0) + 1} of data.soft_labels {path!r} lacks `text` or {num_labels} "
                        "`probabilities`; fix: use the predictions.jsonl that `python -m src predict` writes")
    return [r["text"] for r in rows], [r["probabilities"] for r in rows]


def read_teachers(paths: str | list[str], num_labels: int) -> tuple[list[str], list[list[float]]]:
    """The reviews of one or more predictions files and, per review, the mean of their class probabilities (an
    ensemble teacher: every member must have labelled the same reviews in the same order)."""
    paths = [paths] if isinstance(paths, str) else paths
    (texts, first), *others = [read_soft_labels(p, num_labels) for p in paths]
    for path, (other_texts, _) in zip(paths[1:], others):
        if other_texts != texts:
            raise UserError(f"data.soft_labels {path!r} labels other reviews than {paths[0]!r}; fix: write every "
                            "member's predictions with the same data.predict_split, limit_predict and sample_seed")
    if not others:
        return texts, first
    mean = torch.tensor([first, *(probs for _, probs in others)], dtype=torch.float64).mean(0)
    return texts, mean.tolist()


def sharpen(probs: list[list[float]], temperature: float) -> list[list[float]]:
    """Each row raised to the power 1 / `temperature` and renormalised (in log space: no underflow at small T)."""
    if not temperature > 0:
        raise UserError(f"data.soft_label_temperature {temperature}: fix: give a temperature above 0 (1 keeps the "
                        "teacher's probabilities, below 1 sharpens them)")
    if temperature == 1:
        return probs
    logits = torch.tensor(probs, dtype=torch.float64).clamp_min(1e-12).log() / temperature
    return logits.softmax(-1).tolist()


def most_confident(probs: list[list[float]], per_class: int) -> list[int]:
    """Indices of the `per_class` rows most confidently predicted as each class (all a class has, if fewer), in file
    order; a row counts for the class it predicts."""
    if per_class < 1:
        raise UserError(f"data.soft_labels_per_class {per_class}: fix: give 1 or more, or null to keep every review")
    p = torch.tensor(probs, dtype=torch.float64)
    confidence, predicted = p.max(-1)
    keep = []
    for c in range(p.shape[1]):
        rows = (predicted == c).nonzero().flatten()
        keep += rows[confidence[rows].argsort(descending=True, stable=True)[:per_class]].tolist()
    return sorted(keep)
