"""ConsistencyClassifier: the classifier trained with UDA's consistency term (Xie et al. 2019) besides its labels.

Each training batch holds reviews with a label (human: one-hot; a teacher's: probabilities) or without (a row of
zeros, `data.unlabelled`), and a noisy copy of every review (`data.consistency_noise`: TF-IDF word replacement or token
dropout). The loss: cross-entropy on the labelled rows, plus `consistency_weight` times the KL divergence from the
model's own prediction on the review (no gradient; sharpened by `temperature`) to its prediction on the noisy copy,
counted only where that prediction is confident (max probability above `confidence`) and averaged over the batch.
Evaluation and prediction are the classifier's. Not done here: UDA's training-signal annealing, back-translation.

To run: python -m src fit --config configs/bert_imdb.yaml --config configs/studies/few_labels.yaml
          --config configs/studies/consistency.yaml --data.init_args.soft_labels <teacher predictions.jsonl>
"""

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
                 **kwargs):
        """
        Args:
            consistency_weight: the consistency term's weight against the labels' cross-entropy (UDA's λ).
            temperature: the clean prediction, the target, is sharpened by this temperature (below 1 sharpens).
            confidence: only reviews whose clean prediction's top probability exceeds this count.
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
        labelled = labels.sum(-1) > 0
        supervised = (nn.functional.cross_entropy(logits[labelled], labels[labelled]) if labelled.any()
                      else logits.sum() * 0)
        noisy = self.model(input_ids=batch["augmented_input_ids"],
                           attention_mask=batch["augmented_attention_mask"]).logits
        loss = supervised + hp.consistency_weight * consistency_loss(logits, noisy, hp.temperature, hp.confidence)
        self.log_train_loss(loss)
        return {"loss": loss}
