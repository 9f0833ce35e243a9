"""SequenceClassifier: a BERT-style encoder with a classification head, fine-tuned end to end.

Each validation logs, besides the scalars, a confusion matrix and a precision-recall curve (images)
and a table of the worst mistakes (text) to TensorBoard.

To run: python -m src fit --config configs/bert_imdb.yaml
"""

import lightning as L
import torch
from lightning.pytorch.loggers import TensorBoardLogger
from torch import nn
from torchmetrics import MeanMetric, MetricCollection
from torchmetrics.classification import (
    BinaryAccuracy,
    BinaryAUROC,
    BinaryConfusionMatrix,
    BinaryF1Score,
    BinaryPrecisionRecallCurve,
    MulticlassAccuracy,
    MulticlassAUROC,
    MulticlassConfusionMatrix,
    MulticlassF1Score,
    MulticlassPrecisionRecallCurve,
)
from transformers import AutoModelForSequenceClassification

from src.optim import adamw_linear_warmup
from src.pretrained import from_pretrained, load_tokenizer

WORST = 10  # rows of the mistakes table


def classification_curves(num_classes: int) -> nn.ModuleDict:
    """Confusion matrix and precision-recall curve (100 thresholds: constant memory, synced under DDP)."""
    if num_classes == 2:
        return nn.ModuleDict({"confusion": BinaryConfusionMatrix(), "pr": BinaryPrecisionRecallCurve(thresholds=100)})
    return nn.ModuleDict({"confusion": MulticlassConfusionMatrix(num_classes),
                          "pr": MulticlassPrecisionRecallCurve(num_classes, thresholds=100)})


def classification_metrics(num_classes: int) -> MetricCollection:
    """Accuracy, F1 and AUROC; binary ones score the positive class's probability."""
    if num_classes == 2:
        return MetricCollection({"acc": BinaryAccuracy(), "f1": BinaryF1Score(), "auroc": BinaryAUROC()})
    return MetricCollection({
        "acc": MulticlassAccuracy(num_classes),
        "f1": MulticlassF1Score(num_classes, average="macro"),
        "auroc": MulticlassAUROC(num_classes),
    })


class SequenceClassifier(L.LightningModule):
    """Fine-tunes `AutoModelForSequenceClassification` on labelled reviews."""

    def __init__(
        self,
        model_name: str = "sentence-transformers/all-MiniLM-L6-v2",
        label_names: list[str] = ["negative", "positive"],  # noqa: B006 (jsonargparse shows it in --help)
        learning_rate: float = 5e-5,
        weight_decay: float = 0.01,
        warmup_ratio: float = 0.1,
        config_overrides: dict | None = None,
    ):
        """
        Args:
            model_name: hub id, local folder, .gguf file, or packaged offline model (see src/pretrained.py).
            label_names: class names by label id; their number sets the classifier's outputs.
            learning_rate: peak AdamW learning rate.
            weight_decay: AdamW weight decay (none on biases and norm weights).
            warmup_ratio: fraction of the training steps spent warming the learning rate up from 0.
            config_overrides: model config values to change, e.g. {attention_probs_dropout_prob: 0.0}.
        """
        super().__init__()
        self.save_hyperparameters()
        n = len(label_names)
        self.model = from_pretrained(
            AutoModelForSequenceClassification, model_name, num_labels=n,
            id2label=dict(enumerate(label_names)), label2id={name: i for i, name in enumerate(label_names)},
            ignore_mismatched_sizes=True,  # a saved head with another number of classes is re-initialised
            **(config_overrides or {}),
        )
        self.model.train()  # from_pretrained returns eval mode, and Lightning keeps the modes it finds
        self.metrics = nn.ModuleDict({s: classification_metrics(n).clone(prefix=f"{s}/") for s in ("val", "test")})
        self.losses = nn.ModuleDict({s: MeanMetric() for s in ("val", "test")})
        self.curves = nn.ModuleDict({s: classification_curves(n) for s in ("val", "test")})
        self.worst: list[tuple[float, int, int, list[int]]] = []  # (p(truth), truth, predicted, token ids)

    def forward(self, batch: dict) -> torch.Tensor:
        return self.model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits

    def _common_step(self, batch: dict, stage: str) -> torch.Tensor:
        logits = self(batch).float()
        loss = nn.functional.cross_entropy(logits, batch["labels"])
        if stage == "train":
            self.log("train/loss", loss, prog_bar=True)
            return loss
        probs = logits.softmax(-1)
        scores = probs[:, 1] if probs.shape[1] == 2 else probs
        self.metrics[stage].update(scores, batch["labels"])
        self.losses[stage].update(loss, weight=len(logits))
        for curve in self.curves[stage].values():
            curve.update(scores, batch["labels"])
        self._keep_worst(probs, batch)
        # Metric objects, not numbers: Lightning computes them over the whole epoch (and all ranks).
        self.log_dict(self.metrics[stage], prog_bar=stage == "val")
        self.log(f"{stage}/loss", self.losses[stage])
        return loss

    def _keep_worst(self, probs: torch.Tensor, batch: dict) -> None:
        truth = probs.gather(1, batch["labels"][:, None])[:, 0].tolist()
        for i, p in enumerate(truth):
            ids = batch["input_ids"][i][batch["attention_mask"][i].bool()].tolist()
            self.worst.append((p, int(batch["labels"][i]), int(probs[i].argmax()), ids))
        self.worst = sorted(self.worst)[:WORST]

    def _log_visuals(self, stage: str) -> None:
        """Confusion matrix and PR curve as images, the worst mistakes as a table, at the epoch's step."""
        curves = self.curves[stage]
        if isinstance(self.logger, TensorBoardLogger) and not self.trainer.sanity_checking:
            import matplotlib

            matplotlib.use("Agg")  # no display needed
            from matplotlib import pyplot as plt

            board, names = self.logger.experiment, self.hparams.label_names
            fig, _ = curves["confusion"].plot(labels=names)
            board.add_figure(f"{stage}/confusion_matrix", fig, self.global_step, close=True)
            fig, ax = curves["pr"].plot()  # no score: binned curves have NaN precision where nothing is positive
            ax.set_title("precision-recall curve (100 thresholds)")
            board.add_figure(f"{stage}/precision_recall", fig, self.global_step, close=True)
            plt.close("all")
            tokenizer = load_tokenizer(self.hparams.model_name)
            rows = ["| p(truth) | truth | predicted | review |", "| --- | --- | --- | --- |"]
            for p, truth, pred, ids in self.worst:
                text = tokenizer.decode(ids, skip_special_tokens=True).replace("|", "/")[:400]
                rows.append(f"| {p:.3f} | {names[truth]} | {names[pred]} | {text} |")
            board.add_text(f"{stage}/worst_predictions", "\n".join(rows), self.global_step)
        for curve in curves.values():
            curve.reset()
        self.worst = []

    def on_validation_epoch_end(self) -> None:
        self._log_visuals("val")

    def on_test_epoch_end(self) -> None:
        self._log_visuals("test")

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        return self._common_step(batch, "train")

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        self._common_step(batch, "val")

    def test_step(self, batch: dict, batch_idx: int) -> None:
        self._common_step(batch, "test")

    def predict_step(self, batch: dict, batch_idx: int) -> dict:
        probs = self(batch).float().softmax(-1)
        labels = probs.argmax(-1)
        names = self.hparams.label_names
        return {
            "id": batch["idx"].tolist(), "text": batch["text"], "label": labels.tolist(),
            "label_name": [names[i] for i in labels.tolist()], "probabilities": probs.tolist(),
        }

    def configure_optimizers(self) -> dict:
        hp = self.hparams
        return adamw_linear_warmup(
            self.model, hp.learning_rate, hp.weight_decay, hp.warmup_ratio, self.trainer.estimated_stepping_batches
        )
