"""SetFit (Tunstall et al. 2022, "Efficient Few-Shot Learning Without Prompts"): the sentence encoder fine-tuned
contrastively on pairs of the N labelled reviews (cosine similarity of a pair's embeddings pulled to 1 for the same
label, to 0 for different labels), then logistic regression on the fine-tuned encoder's embeddings.

One difference from the `setfit` library, for speed: the pairs are every pair within a batch, so a review is encoded
once per step for all its pairs (the library encodes both sides of each sampled pair); positive and negative pairs
weigh the same in the loss, as the library's oversampling makes their counts equal.

To run: python -m src fit --config configs/studies/setfit.yaml --data.label_budget 16 --trainer.max_steps 32
"""

import torch
from torch import nn
from transformers import AutoModel, PreTrainedModel

from src.errors import UserError
from src.models.classifier import SequenceClassifier
from src.models.linear_probe import fit_logistic_regression, mean_pooled
from src.pretrained import check_config_overrides, from_pretrained


def pair_loss(embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """SetFit's cosine-similarity loss over every pair of a batch of normalised embeddings: the squared error of each
    pair's cosine against 1 (same label) or 0 (different), positives and negatives averaged apart, then together."""
    i, j = torch.triu_indices(len(labels), len(labels), offset=1, device=labels.device)
    if len(i) == 0:  # one review: no pair (zero, but still a graph for Lightning's backward)
        return embeddings.sum() * 0.0
    same = labels[i] == labels[j]
    error = ((embeddings[i] * embeddings[j]).sum(-1) - same.float()).square()
    kinds = [error[mask].mean() for mask in (same, ~same) if mask.any()]
    return sum(kinds) / len(kinds)


class SetFit(SequenceClassifier):
    """A MiniLM sentence encoder trained on pairs of labelled reviews, and a logistic-regression head on it."""

    def __init__(self, l2: float = 1e-3, max_iter: int = 200, **kwargs):
        """
        Args:
            l2: L2 penalty of the head's logistic regression (the inverse of scikit-learn's C, per example).
            max_iter: L-BFGS iterations of the head's fit.
            **kwargs: the classifier's arguments: model_name, label_names, learning_rate (of the encoder),
                weight_decay, warmup_ratio, config_overrides.
        """
        super().__init__(**kwargs)
        self.head = nn.Linear(self.model.config.hidden_size, len(self.hparams.label_names))

    def load_model(self) -> PreTrainedModel:
        check_config_overrides(self.hparams.model_name, self.hparams.config_overrides)
        return from_pretrained(AutoModel, self.hparams.model_name, **(self.hparams.config_overrides or {}))

    def forward(self, batch: dict) -> torch.Tensor:
        return self.head(mean_pooled(self.model, batch))

    def _common_step(self, batch: dict, stage: str) -> dict:
        if stage != "train":
            return super()._common_step(batch, stage)
        if batch["labels"].is_floating_point():
            raise UserError("SetFit trains on human labels (pairs of the same or different label), not a teacher's "
                            "probabilities; fix: drop data.soft_labels")
        loss = pair_loss(mean_pooled(self.model, batch), batch["labels"])
        self.log_train_loss(loss)
        return {"loss": loss}

    def on_validation_epoch_start(self) -> None:
        super().on_validation_epoch_start()
        if self.trainer.state.fn == "fit":  # validation inside fit: the head of the encoder as it is now
            self.fit_head()

    def on_train_end(self) -> None:
        self.fit_head()

    @torch.no_grad()
    def fit_head(self) -> None:
        """The second stage: logistic regression on the encoder's embeddings of the labelled training reviews."""
        was_training = self.model.training
        self.model.eval()
        x, y = [], []
        for batch in self.trainer.train_dataloader:
            x.append(mean_pooled(self.model, {k: batch[k].to(self.device) for k in ("input_ids", "attention_mask")}))
            y.append(batch["labels"].to(self.device))
        fit_logistic_regression(self.head, torch.cat(x), torch.cat(y), self.hparams.l2, self.hparams.max_iter)
        self.model.train(was_training)
