"""LinearProbe: a frozen encoder's mean-pooled sentence embeddings (the way sentence-transformers pools
all-MiniLM-L6-v2: mean over real tokens, then L2-normalised) and logistic regression on them.

`fit` embeds the training reviews once (no gradients through the encoder) and then fits the logistic regression on
those embeddings in one full-batch L-BFGS solve, as scikit-learn's `LogisticRegression` would: the cheap baseline for a
few labels. Evaluation and prediction are the classifier's.

To run: python -m src study run --config configs/studies/label_budget.yaml   (the linear_probe rows)
"""

import torch
from torch import nn
from transformers import AutoModel, PreTrainedModel

from src.models.base import OnePassFit
from src.models.classifier import SequenceClassifier
from src.pretrained import from_pretrained


class LinearProbe(OnePassFit, SequenceClassifier):
    """Logistic regression on a frozen encoder's mean-pooled, normalised embeddings."""

    def __init__(self, l2: float = 1e-3, max_iter: int = 200, **kwargs):
        """
        Args:
            l2: L2 penalty on the weights (the inverse of scikit-learn's C, per example).
            max_iter: L-BFGS iterations of the fit.
            **kwargs: the classifier's arguments: model_name, label_names.
        """
        super().__init__(**kwargs)
        self.head = nn.Linear(self.model.config.hidden_size, len(self.hparams.label_names))

    def load_model(self) -> PreTrainedModel:
        return from_pretrained(AutoModel, self.hparams.model_name).eval().requires_grad_(False)

    @torch.no_grad()
    def embed(self, batch: dict) -> torch.Tensor:
        return mean_pooled(self.model, batch)

    def forward(self, batch: dict) -> torch.Tensor:
        return self.head(self.embed(batch))

    def collect(self, batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
        return self.embed(batch), batch["labels"]

    def solve(self, x: torch.Tensor, y: torch.Tensor) -> None:
        fit_logistic_regression(self.head, x, y, self.hparams.l2, self.hparams.max_iter)


def mean_pooled(model: PreTrainedModel, batch: dict) -> torch.Tensor:
    """Sentence embeddings as sentence-transformers makes them for MiniLM: the mean over real tokens, L2-normalised."""
    hidden = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state
    mask = batch["attention_mask"][..., None].to(hidden.dtype)
    return nn.functional.normalize((hidden * mask).sum(1) / mask.sum(1), dim=-1).float()


def fit_logistic_regression(head: nn.Linear, x: torch.Tensor, y: torch.Tensor, l2: float, max_iter: int) -> None:
    """Logistic regression on the embeddings `x`: one full-batch L-BFGS solve of the penalised cross-entropy, from
    zero weights, as scikit-learn's `LogisticRegression` would."""
    with torch.inference_mode(False), torch.enable_grad():  # validation hooks run without autograd
        x, y = x.detach().clone(), y.clone()
        nn.init.zeros_(head.weight), nn.init.zeros_(head.bias)
        optimizer = torch.optim.LBFGS(head.parameters(), max_iter=max_iter, line_search_fn="strong_wolfe")

        def loss() -> torch.Tensor:
            optimizer.zero_grad()
            value = nn.functional.cross_entropy(head(x), y) + l2 * head.weight.square().sum()
            value.backward()
            return value

        optimizer.step(loss)
