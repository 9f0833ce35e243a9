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
    """Accuracy, F1 and AUROC; binary ones score the positive class's probability. Their inputs are not checked
    (`validate_args=False`): they are the module's own softmax and the data's label ids, which the loss has already
    checked, and each check reads a result on the host, a sync per batch and metric on a GPU."""
    if num_classes == 2:
        return MetricCollection({"acc": BinaryAccuracy(validate_args=False), "f1": BinaryF1Score(validate_args=False),
                                 "auroc": BinaryAUROC(validate_args=False)})
    return MetricCollection({
        "acc": MulticlassAccuracy(num_classes, validate_args=False),
        "f1": MulticlassF1Score(num_classes, average="macro", validate_args=False),
        "auroc": MulticlassAUROC(num_classes, validate_args=False),
    })


def class_scores(probs: torch.Tensor) -> torch.Tensor:
    """What `classification_metrics` score: the positive class's probability with two classes, else all."""
    return probs[:, 1] if probs.shape[1] == 2 else probs


class WeightedMean(MeanMetric):
    """The mean of per-batch means, each weighted by its count: `update(batch_mean, count)`. MeanMetric without its
    NaN check, which reads `isnan(...).any()` on the host at every update (a sync per batch on a GPU) and whose off
    switch, `nan_strategy="disable"`, drops the weights (torchmetrics #3434). A NaN loss makes the mean NaN, as a
    reader should see it (the check would drop it with a warning)."""

    def update(self, value: torch.Tensor, weight: int | torch.Tensor) -> None:
        self.mean_value += value.detach().to(self.mean_value.dtype).sum() * weight
        self.weight += weight


class PerplexityFromLoss(WeightedMean):
    """exp of the (weighted) mean cross-entropy: update it with each batch's mean loss and its token count."""

    def compute(self) -> torch.Tensor:
        return super().compute().exp()
