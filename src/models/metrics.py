"""Metric objects the modules log through `self.log`, so Lightning computes them over the whole epoch (and
every process): classification scores, and a perplexity from the mean loss.

To run: used by the modules in src/models/.
"""

import torch
from torchmetrics import MeanMetric, MetricCollection
from torchmetrics.classification import (
    BinaryAccuracy,
    BinaryAUROC,
    BinaryF1Score,
    MulticlassAccuracy,
    MulticlassAUROC,
    MulticlassF1Score,
)


def classification_metrics(num_classes: int) -> MetricCollection:
    """Accuracy, F1 and AUROC; binary ones score the positive class's probability."""
    if num_classes == 2:
        return MetricCollection({"acc": BinaryAccuracy(), "f1": BinaryF1Score(), "auroc": BinaryAUROC()})
    return MetricCollection({
        "acc": MulticlassAccuracy(num_classes),
        "f1": MulticlassF1Score(num_classes, average="macro"),
        "auroc": MulticlassAUROC(num_classes),
    })


def class_scores(probs: torch.Tensor) -> torch.Tensor:
    """What `classification_metrics` score: the positive class's probability with two classes, else all."""
    return probs[:, 1] if probs.shape[1] == 2 else probs


class PerplexityFromLoss(MeanMetric):
    """exp of the (weighted) mean cross-entropy: update it with each batch's mean loss and its token count."""

    def compute(self) -> torch.Tensor:
        return super().compute().exp()
