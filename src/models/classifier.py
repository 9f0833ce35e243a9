"""SequenceClassifier: a BERT-style encoder with a classification head, fine-tuned end to end.

Validation and test log accuracy, F1, AUROC and loss; `validation_step` returns the class probabilities,
from which `src.callbacks.ClassificationReport` draws the confusion matrix, the precision-recall curve and
the worst mistakes. `predict` writes labels and probabilities.

To run: python -m src fit --config configs/bert_imdb.yaml
"""

import torch
from torch import nn
from torchmetrics import Metric
from transformers import AutoModelForSequenceClassification, PreTrainedModel

from src.models.base import EVAL_STAGES, HFModule
from src.models.metrics import class_scores, classification_metrics
from src.pretrained import check_config_overrides, from_pretrained


class SequenceClassifier(HFModule):
    """Fine-tunes `AutoModelForSequenceClassification` on labelled reviews."""

    def __init__(
        self,
        model_name: str = "sentence-transformers/all-MiniLM-L6-v2",
        label_names: list[str] = ["negative", "positive"],  # noqa: B006 (jsonargparse shows it in --help)
        config_overrides: dict | None = None,
        **kwargs,
    ):
        """
        Args:
            model_name: hub id, local folder, .gguf file, or packaged offline model (see src/pretrained.py).
            label_names: class names by label id; their number sets the classifier's outputs.
            config_overrides: model config values to change, e.g. {attention_probs_dropout_prob: 0.0}.
            **kwargs: the optimizer settings of `HFModule`: learning_rate, weight_decay, warmup_ratio.
        """
        super().__init__(model_name, **kwargs)
        n = len(label_names)
        self.metrics = nn.ModuleDict({s: classification_metrics(n).clone(prefix=f"{s}/") for s in EVAL_STAGES})

    def load_model(self) -> PreTrainedModel:
        names = self.hparams.label_names
        check_config_overrides(self.hparams.model_name, self.hparams.config_overrides)
        return from_pretrained(
            AutoModelForSequenceClassification, self.hparams.model_name, num_labels=len(names),
            id2label=dict(enumerate(names)), label2id={name: i for i, name in enumerate(names)},
            ignore_mismatched_sizes=True,  # a saved head with another number of classes is re-initialised
            **(self.hparams.config_overrides or {}),
        )

    def forward(self, batch: dict) -> torch.Tensor:
        return self.model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits

    def _common_step(self, batch: dict, stage: str) -> dict:
        logits = self(batch).float()
        loss = nn.functional.cross_entropy(logits, batch["labels"])
        if stage == "train":
            self.log_train_loss(loss)
            return {"loss": loss}
        probs = logits.softmax(-1)
        self.metrics[stage].update(class_scores(probs), batch["labels"])
        self.update_loss(stage, loss, weight=len(logits))
        return {"loss": loss, "probs": probs}  # the probabilities feed src.callbacks.ClassificationReport

    def epoch_metrics(self, stage: str) -> dict[str, Metric]:
        return {**dict(self.metrics[stage].items()), **super().epoch_metrics(stage)}  # accuracy, F1, AUROC; loss

    def predict_step(self, batch: dict, batch_idx: int) -> dict:
        probs = self(batch).float().softmax(-1)
        labels = probs.argmax(-1).tolist()
        names = self.hparams.label_names
        return {"id": batch["idx"].tolist(), "text": batch["text"], "label": labels,
                "label_name": [names[i] for i in labels], "probabilities": probs.tolist()}
