"""Labelled reviews for classification: each review tokenized and truncated to `max_length` (head, or head and
tail), optionally inside a prompt template for zero-shot scoring by a causal LM; optionally only a seeded,
class-balanced sample of `label_budget` labelled training reviews (the label-budget study's runs), and optionally
reviews a teacher labelled with class probabilities (`soft_labels`: distillation; the targets are then probabilities,
which the classifier's cross-entropy takes as they are, and a human label is a one-hot row).

To run: python -m src fit --config configs/bert_imdb.yaml
"""

from typing import Literal

import datasets

from src.data.augment import TokenDropout
from src.data.base import ReviewDataModule
from src.data.collate import Collator
from src.data.selection import balanced_sample
from src.data.soft_labels import most_confident, read_soft_labels, sharpen
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
        label_budget: int | None = None,
        label_seed: int = 0,
        soft_labels: str | None = None,
        soft_label_temperature: float = 1.0,
        soft_labels_per_class: int | None = None,
        token_dropout: float = 0.0,
        **kwargs,
    ):
        """
        Args:
            max_length: longest tokenized review, special tokens and prompt included.
            truncation: `head` keeps the start of long reviews; `head_tail` their start and end.
            prompt_template: for a causal LM: each review is put in this template at `{text}`,
                e.g. "Review: {text}\\nOverall, the movie was".
            num_labels: number of classes; labels must lie in 0..num_labels-1.
            label_budget: train on a seeded, class-balanced sample of this many labelled training reviews
                (taken after the validation split); None: all of them (or `limit_train`).
            label_seed: seed of that sample.
            soft_labels: a teacher's predictions (`predictions.jsonl` of `python -m src predict`: `text` and
                `probabilities` a line) to train on as well, with its probabilities as targets (distillation).
            soft_label_temperature: the teacher's probabilities to the power 1 / T, renormalised: below 1 sharpens
                them, 1 keeps them (src/data/soft_labels.py).
            soft_labels_per_class: keep only the teacher's reviews it is most confident of, this many per class
                (self-training's confident, class-balanced selection); None: all of them.
            token_dropout: leave out each non-special token of a training review with this probability, anew every
                batch (the noisy student's input noise, src/data/augment.py); 0: none.
            **kwargs: the shared arguments of `ReviewDataModule` (source, batch sizes, splits, limits, cache).
        """
        super().__init__(**kwargs)

    def cache_settings(self) -> list:
        hp = self.hparams
        return ["classification", hp.max_length, hp.truncation, hp.prompt_template]

    def train_collator(self):
        if self.hparams.token_dropout == 0:
            return super().train_collator()
        return TokenDropout(Collator(self.tokenizer), self.tokenizer.all_special_ids, self.hparams.token_dropout)

    def tokenize_batch(self, batch: dict) -> dict:
        ids = self.predict_ids(batch["text"])
        return {"input_ids": ids, "length": [len(x) for x in ids]}

    def predict_ids(self, texts: list[str]) -> list[list[int]]:
        hp = self.hparams
        return tokenize(texts, self.tokenizer, hp.max_length, hp.truncation, hp.prompt_template)

    def train_set(self, train: datasets.Dataset, tokenized: dict[str, datasets.Dataset]) -> datasets.Dataset:
        hp = self.hparams
        if hp.label_budget is None:
            train = super().train_set(train, tokenized)
        else:
            train = train.select(balanced_sample(train["label"], hp.label_budget, hp.num_labels, hp.label_seed))
        if hp.soft_labels is None:
            return train
        texts, probs = read_soft_labels(hp.soft_labels, hp.num_labels)
        if hp.soft_labels_per_class is not None:
            keep = most_confident(probs, hp.soft_labels_per_class)
            texts, probs = [texts[i] for i in keep], [probs[i] for i in keep]
        probs = sharpen(probs, hp.soft_label_temperature)
        labels = [[float(y == c) for c in range(hp.num_labels)] for y in train["label"]] + probs
        ids = list(train["input_ids"]) + self.predict_ids(texts)
        return datasets.Dataset.from_dict({"input_ids": ids, "label": labels, "length": [len(x) for x in ids]})

    def check_labels(self, ds: datasets.Dataset, split: str) -> None:
        n = self.hparams.num_labels
        bad = sorted(x for x in set(ds.unique("label")) if not (isinstance(x, int) and 0 <= x < n))
        if bad:
            raise UserError(
                f"split {split!r} of {self.source!r} has labels {bad[:5]} outside the classes "
                f"0..{n - 1}; fix: relabel the data or set data.num_labels"
            )

