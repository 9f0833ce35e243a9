"""Labelled reviews for classification: each review tokenized and truncated to `max_length` (head, or head and
tail), optionally inside a prompt template for zero-shot scoring by a causal LM.

To run: python -m src fit --config configs/bert_imdb.yaml
"""

from typing import Literal

import datasets

from src.data.base import ReviewDataModule
from src.data.text import tokenize
from src.errors import UserError


class ClassificationDataModule(ReviewDataModule):
    """Labelled reviews, one example each: `input_ids` and `labels`; `predict` reads reviews."""

    def __init__(
        self,
        max_length: int = 256,
        truncation: Literal["head", "head_tail"] = "head_tail",
        prompt_template: str | None = None,
        num_labels: int = 2,
        **kwargs,
    ):
        """
        Args:
            max_length: longest tokenized review, special tokens and prompt included.
            truncation: `head` keeps the start of long reviews; `head_tail` their start and end.
            prompt_template: for a causal LM: each review is put in this template at `{text}`,
                e.g. "Review: {text}\\nOverall, the movie was".
            num_labels: number of classes; labels must lie in 0..num_labels-1.
            **kwargs: the shared arguments of `ReviewDataModule` (source, batch sizes, splits, limits, cache).
        """
        super().__init__(**kwargs)

    def cache_settings(self) -> list:
        hp = self.hparams
        return ["classification", hp.max_length, hp.truncation, hp.prompt_template]

    def tokenize_batch(self, batch: dict) -> dict:
        ids = self.predict_ids(batch["text"])
        return {"input_ids": ids, "length": [len(x) for x in ids]}

    def predict_ids(self, texts: list[str]) -> list[list[int]]:
        hp = self.hparams
        return tokenize(texts, self.tokenizer, hp.max_length, hp.truncation, hp.prompt_template)

    def check_labels(self, ds: datasets.Dataset, split: str) -> None:
        n = self.hparams.num_labels
        bad = sorted(x for x in set(ds.unique("label")) if not (isinstance(x, int) and 0 <= x < n))
        if bad:
            raise UserError(
                f"split {split!r} of {self.source!r} has labels {bad[:5]} outside the classes "
                f"0..{n - 1}; fix: relabel the data or set data.num_labels"
            )
