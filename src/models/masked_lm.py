"""MaskedLM: BERT-style pretraining by predicting masked tokens, from pretrained weights or from scratch.

From a pretrained encoder this is domain-adaptive pretraining: the packaged MiniLM keeps learning
on IMDB's unlabelled reviews, and the exported folder then starts the classifier
(configs/mlm_imdb.yaml, then configs/bert_imdb_adapted.yaml). With `from_scratch` the model is
built from its config, with the sizes given in `config_overrides`, and random weights.
Validation reports the loss over masked tokens, its perplexity and masked-token accuracy;
`predict` fills the mask tokens of the given texts.

To run: python -m src fit --config configs/mlm_imdb.yaml
"""

import torch
from torch import nn
from torchmetrics import Metric
from torchmetrics.classification import MulticlassAccuracy
from transformers import AutoConfig, AutoModelForMaskedLM, PreTrainedModel

from src.models.base import EVAL_STAGES, HFModule
from src.models.metrics import PerplexityFromLoss
from src.pretrained import check_config_overrides, from_pretrained


class MaskedLM(HFModule):
    """Trains `AutoModelForMaskedLM` on batches masked by `src.data.MaskedLMDataModule`."""

    def __init__(
        self,
        model_name: str = "sentence-transformers/all-MiniLM-L6-v2",
        from_scratch: bool = False,
        config_overrides: dict | None = None,
        top_k: int = 5,
        **kwargs,
    ):
        """
        Args:
            model_name: hub id, local folder or packaged offline model (see src/pretrained.py); its
                tokenizer is used, and its weights unless `from_scratch`.
            from_scratch: build the model from `model_name`'s config with random weights.
            config_overrides: model config values to change, e.g. the sizes of a model built from
                scratch: {hidden_size: 256, num_hidden_layers: 4, num_attention_heads: 4, intermediate_size: 1024}.
            top_k: predict: candidate tokens listed for each mask token.
            **kwargs: the optimizer settings of `HFModule`: learning_rate, weight_decay, warmup_ratio.
        """
        super().__init__(model_name, **kwargs)
        # The prediction head of BERT (`cls`) and RoBERTa-likes (`lm_head`); other models run whole.
        self.head_name = next((n for n in ("cls", "lm_head") if isinstance(getattr(self.model, n, None), nn.Module)),
                              None)
        vocab = self.model.config.vocab_size
        self.ppl = nn.ModuleDict({s: PerplexityFromLoss() for s in EVAL_STAGES})
        self.accuracy = nn.ModuleDict(
            {s: MulticlassAccuracy(vocab, average="micro", ignore_index=-100, validate_args=False) for s in EVAL_STAGES}
        )

    def load_model(self) -> PreTrainedModel:
        hp = self.hparams
        overrides = hp.config_overrides or {}
        check_config_overrides(hp.model_name, overrides)
        if hp.from_scratch:
            return AutoModelForMaskedLM.from_config(from_pretrained(AutoConfig, hp.model_name, **overrides))
        # Encoders saved without a masked-LM head (e.g. sentence-transformers) get a new, random one.
        return from_pretrained(AutoModelForMaskedLM, hp.model_name, **overrides)

    def forward(self, batch: dict) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Mean cross-entropy over the masked tokens (labels -100 elsewhere), their logits and their labels.

        The vocabulary projection costs about as much as the whole 6-layer MiniLM encoder, so it runs
        on the ~15% masked positions only: a training step 2.0x faster (benchmarks/mlm_head.py).
        """
        labels = batch["labels"]
        masked = labels != -100
        if self.head_name is None:
            logits = self.model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits[masked]
        else:
            hidden = self.model.base_model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])[0]
            logits = getattr(self.model, self.head_name)(hidden[masked])
        targets = labels[masked]
        return nn.functional.cross_entropy(logits.float(), targets), logits, targets

    def _common_step(self, batch: dict, stage: str) -> torch.Tensor:
        loss, logits, targets = self(batch)
        if stage == "train":
            self.log_train_loss(loss)
            return loss
        self.update_loss(stage, loss, weight=len(targets))  # means over every masked token of the epoch
        self.ppl[stage].update(loss, weight=len(targets))
        self.accuracy[stage].update(logits.argmax(-1), targets)
        return loss

    def epoch_metrics(self, stage: str) -> dict[str, Metric]:
        return {**super().epoch_metrics(stage), f"{stage}/ppl": self.ppl[stage], f"{stage}/acc": self.accuracy[stage]}

    def predict_step(self, batch: dict, batch_idx: int) -> dict:
        """The `top_k` likeliest tokens, with probabilities, at each mask token of each text."""
        tok = self.tokenizer
        logits = self.model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
        rows = {"id": batch["idx"].tolist(), "text": batch["text"], "masks": []}
        for ids, scores in zip(batch["input_ids"], logits.float().softmax(-1)):
            top = scores[ids == tok.mask_token_id].topk(self.hparams.top_k)
            rows["masks"].append([
                [{"token": token, "probability": p}
                 for token, p in zip(tok.convert_ids_to_tokens(i.tolist()), v.tolist())]
                for i, v in zip(top.indices, top.values)
            ])
        return rows
