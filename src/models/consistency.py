"""ConsistencyClassifier: the classifier trained with UDA's consistency term (Xie et al. 2019) besides its labels.

Each training batch holds reviews with a label (human: one-hot; a teacher's: probabilities) or without (a row of
zeros, `data.unlabelled`), and a noisy copy of every review (`data.consistency_noise`: TF-IDF word replacement or token
dropout). The loss: cross-entropy on the labelled rows, plus `consistency_weight` times the KL divergence from the
model's own prediction on the review (no gradient; sharpened by `temperature`) to its prediction on the noisy copy,
counted only where that prediction is confident (max probability above `confidence`) and averaged over the batch.
With few human labels, UDA's training-signal annealing (`tsa`) leaves out of the cross-entropy each human-labelled
review the model already gives its class a probability above a threshold that rises from 1/K to 1 over training, so
the labels are not learnt by heart before the unlabelled reviews have taught anything. Evaluation and prediction are
the classifier's. Not done here: back-translation (no translation model offline).

To run: python -m src fit --config configs/bert_imdb.yaml --config configs/studies/few_labels.yaml
          --config configs/studies/consistency.yaml --data.init_args.soft_labels <teacher predictions.jsonl>
"""

import math
from typing import Literal

import torch
from torch import nn

from src.errors import UserError
from src.models.classifier import SequenceClassifier


def consistency_loss(clean_logits: torch.Tensor, noisy_logits: torch.Tensor, temperature: float,
                     confidence: float) -> torch.Tensor:
    """UDA's term: mean over rows of KL(sharpen(p(clean)) || p(noisy)), rows whose p(clean) is not confident zeroed.
    Zero where the two predictions agree and `temperature` is 1."""
    clean = clean_logits.detach().float()
    keep = clean.softmax(-1).max(-1).values > confidence
    target = (clean / temperature).log_softmax(-1)
    kl = (target.exp() * (target - noisy_logits.float().log_softmax(-1))).sum(-1)
    return (kl * keep).mean()


class ConsistencyClassifier(SequenceClassifier):
    """A sequence classifier whose training loss adds UDA's consistency term on noisy copies of its reviews."""

    def __init__(self, consistency_weight: float = 1.0, temperature: float = 0.85, confidence: float = 0.45,
                 tsa: Literal["none", "linear", "log", "exp"] = "none", **kwargs):
        """
        Args:
            consistency_weight: the consistency term's weight against the labels' cross-entropy (UDA's λ).
            temperature: the clean prediction, the target, is sharpened by this temperature (below 1 sharpens).
            confidence: only reviews whose clean prediction's top probability exceeds this count.
            tsa: training-signal annealing's schedule (UDA): how the threshold rises from 1/K to 1 over the
                training steps; `none`: every labelled review counts throughout.
            **kwargs: the classifier's arguments: model_name, label_names, config_overrides, learning_rate, ...
        """
        super().__init__(**kwargs)

    def _common_step(self, batch: dict, stage: str) -> dict:
        if stage != "train":
            return super()._common_step(batch, stage)
        if "augmented_input_ids" not in batch:
            raise UserError("the consistency model needs noisy copies of the training reviews; fix: set "
                            "--data.init_args.consistency_noise tfidf (or token_dropout)")
        hp, labels = self.hparams, batch["labels"]
        logits = self(batch).float()
        if labels.dim() == 1:  # hard labels: every row labelled
            labels = nn.functional.one_hot(labels, logits.shape[-1]).float()
        keep = (labels.sum(-1) > 0).float()  # rows with a label, human or a teacher's
        if hp.tsa != "none":  # a human label (one-hot) already learnt beyond the threshold is left out
            human = labels.max(-1).values == 1
            learnt = (logits.softmax(-1) * labels).sum(-1) > tsa_threshold(hp.tsa, self.progress(), logits.shape[-1])
            keep = keep * ~(human & learnt)
        ce = nn.functional.cross_entropy(logits, labels, reduction="none")
        supervised = (ce * keep).sum() / keep.sum().clamp_min(1)
        noisy = self.model(input_ids=batch["augmented_input_ids"],
                           attention_mask=batch["augmented_attention_mask"]).logits
        loss = supervised + hp.consistency_weight * consistency_loss(logits, noisy, hp.temperature, hp.confidence)
        self.log_train_loss(loss)
        return {"loss": loss}

    def progress(self) -> float:
        """The share of the training steps done (0 outside a fit)."""
        try:
            trainer = self.trainer
        except RuntimeError:
            return 0.0
        return min(1.0, trainer.global_step / max(1, trainer.estimated_stepping_batches))


def tsa_threshold(schedule: str, progress: float, classes: int) -> float:
    """UDA's training-signal-annealing threshold at `progress` (0 to 1): from 1/K at the start to 1 at the end."""
    alpha = {"linear": progress, "log": 1 - math.exp(-5 * progress), "exp": math.exp(5 * (progress - 1))}[schedule]
    return alpha * (1 - 1 / classes) + 1 / classes
