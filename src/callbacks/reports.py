"""Pictures and tables in TensorBoard at each validation (and test): for a classifier the confusion matrix,
the precision-recall curve and the worst mistakes; for a causal LM a sample continuation of a prompt.
The modules compute and log numbers only; what is drawn or written for a person is made here.

To run: python -m src fit --config configs/bert_imdb.yaml; tensorboard --logdir outputs (IMAGES and TEXT tabs)
"""

import re

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.loggers import TensorBoardLogger
from torch import nn
from torchmetrics.classification import (
    BinaryConfusionMatrix,
    BinaryPrecisionRecallCurve,
    MulticlassConfusionMatrix,
    MulticlassPrecisionRecallCurve,
)
from transformers import GenerationConfig

from src.models.metrics import class_scores


def quoted(review: str, chars: int = 300) -> str:
    """A review as a reader wrote it, for TensorBoard's Markdown: IMDB's `<br />` as spaces, Markdown and HTML
    characters escaped (shown, never interpreted), cut at a word after `chars` characters with "…"."""
    text = " ".join(re.sub(r"<br\s*/?>", " ", review).split())
    if len(text) > chars:
        text = text[:chars].rsplit(" ", 1)[0] + " …"
    return re.sub(r"([\\`*_{}\[\]()#+\-.!|<>&])", r"\\\1", text)


def _board(trainer: L.Trainer):
    """TensorBoard's SummaryWriter, or None (another logger, or a sanity check that should leave no trace)."""
    if trainer.sanity_checking or not isinstance(trainer.logger, TensorBoardLogger):
        return None
    return trainer.logger.experiment


class ClassificationReport(Callback):
    """Confusion matrix and precision-recall curve (images) and the worst mistakes (a text table), from the
    class probabilities the module's `validation_step`/`test_step` return under `probs`."""

    def __init__(self, worst: int = 10, thresholds: int = 100):
        """
        Args:
            worst: rows of the worst-mistakes table (the lowest probabilities of the true class).
            thresholds: thresholds of the binned precision-recall curve (constant memory, synced under DDP).
        """
        self.worst, self.thresholds = worst, thresholds
        self.curves: nn.ModuleDict | None = None
        self.mistakes: list[tuple[torch.Tensor, ...]] = []  # a batch's worst: p(truth), truth, predicted, ids, mask

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        n = len(pl_module.hparams.label_names)
        # Inputs unchecked, as the module's metrics (src/models/metrics.py): no host sync per batch.
        if n == 2:
            curves = {"confusion": BinaryConfusionMatrix(validate_args=False),
                      "pr": BinaryPrecisionRecallCurve(self.thresholds, validate_args=False)}
        else:
            curves = {"confusion": MulticlassConfusionMatrix(n, validate_args=False),
                      "pr": MulticlassPrecisionRecallCurve(n, thresholds=self.thresholds, validate_args=False)}
        self.curves = nn.ModuleDict(curves).to(pl_module.device)

    def _update(self, outputs: dict, batch: dict) -> None:
        probs, labels = outputs["probs"], batch["labels"]
        for curve in self.curves.values():
            curve.update(class_scores(probs), labels)
        # The batch's own worst few, kept as tensors where they are: nothing is read on the host per batch (on a GPU
        # each read is a sync), and the reviews' token ids are copied for those few only; `worst_rows` picks among
        # them at the report.
        truth = probs.gather(1, labels[:, None])[:, 0]
        p, rows = truth.topk(min(self.worst, len(truth)), largest=False)
        # The batch's texts (host strings) stay whole: picking the few would read `rows` on the host every batch.
        self.mistakes.append((p, labels[rows], probs[rows].argmax(-1), batch["input_ids"][rows],
                              batch["attention_mask"][rows], rows, batch.get("text")))

    def worst_rows(self) -> list[tuple[float, int, int, list[int] | str]]:
        """The epoch's `worst` reviews so far, lowest probability of the true class first: (p(truth), truth,
        predicted, the review as written where the batches carry it, else its token ids)."""
        if not self.mistakes:
            return []
        where = [(b, i) for b, kept in enumerate(self.mistakes) for i in range(len(kept[0]))]
        order = torch.cat([kept[0] for kept in self.mistakes]).argsort(stable=True)[: self.worst].tolist()
        rows = []
        for b, i in (where[j] for j in order):
            p, truth, predicted, ids, mask, picked, texts = self.mistakes[b]
            review = texts[int(picked[i])] if texts is not None else ids[i][mask[i].bool()].tolist()
            rows.append((float(p[i]), int(truth[i]), int(predicted[i]), review))
        return rows

    def _report(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        board = _board(trainer)
        if board is not None:
            import matplotlib

            matplotlib.use("Agg")  # no display needed
            from matplotlib import pyplot as plt

            names, step = pl_module.hparams.label_names, trainer.global_step
            fig, _ = self.curves["confusion"].plot(labels=names)  # compute() inside: synced across processes
            board.add_figure(f"{stage}/confusion_matrix", fig, step, close=True)
            fig, ax = self.curves["pr"].plot()  # no score: binned curves have NaN precision where nothing is positive
            ax.set_title(f"precision-recall curve ({self.thresholds} thresholds)")
            board.add_figure(f"{stage}/precision_recall", fig, step, close=True)
            plt.close("all")
            rows = []
            for n, (p, truth, pred, review) in enumerate(self.worst_rows(), 1):
                if not isinstance(review, str):  # token ids: a data module that keeps no text
                    review = pl_module.tokenizer.decode(review, skip_special_tokens=True)
                rows.append(f"{n}. **{names[truth]}**, predicted {names[pred]} (p = {p:.3f}): {quoted(review)}")
            board.add_text(f"{stage}/worst_predictions", "\n".join(rows), step)

    def _reset(self) -> None:
        # At the epoch's start, so that the states are made in its grad mode (see src/models/base.py).
        for curve in self.curves.values():
            curve.reset()
        self.mistakes = []

    def on_validation_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._reset()

    def on_test_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._reset()

    def on_validation_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0) -> None:
        self._update(outputs, batch)

    def on_test_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0) -> None:
        self._update(outputs, batch)

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._report(trainer, pl_module, "val")

    def on_test_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._report(trainer, pl_module, "test")


class GenerationSample(Callback):
    """A prompt continued greedily at each validation, logged as text: how the language model's writing changes."""

    def __init__(self, prompt: str = "I watched this movie last night and", max_new_tokens: int = 48):
        """
        Args:
            prompt: the text to continue.
            max_new_tokens: most new tokens of the continuation.
        """
        self.prompt, self.max_new_tokens = prompt, max_new_tokens

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        board = _board(trainer)
        if board is None:
            return
        greedy = GenerationConfig(max_new_tokens=self.max_new_tokens, do_sample=False,
                                  pad_token_id=pl_module.generation_config.pad_token_id)
        with torch.no_grad():
            (text,) = pl_module.generate([self.prompt], greedy)
        board.add_text("val/sample", self.prompt + text, trainer.global_step)
