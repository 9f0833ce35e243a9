"""Labelled reviews for classification: each review tokenized and truncated to `max_length` (head, or head and
tail), optionally inside a prompt template for zero-shot scoring by a causal LM; optionally only a seeded,
class-balanced sample of `label_budget` labelled training reviews (the label-budget study's runs), and optionally
reviews a teacher labelled with class probabilities (`soft_labels`: distillation; the targets are then probabilities,
which the classifier's cross-entropy takes as they are, and a human label is a one-hot row), and optionally
unlabelled reviews (`unlabelled`, a row of zeros: no label) with a noisy copy of every training review
(`consistency_noise`) for consistency training (src/models/consistency.py).

To run: python -m src fit --config configs/bert_imdb.yaml
"""

import math
from typing import Literal

import datasets

from src.data.augment import ConsistencyPairs, Noised, TfIdfReplacement, TokenDropout
from src.data.base import ReviewDataModule
from src.data.selection import balanced_sample
from src.data.soft_labels import most_confident, read_teachers, sharpen
from src.data.text import tokenize
from src.errors import UserError, check_ranges


class ClassificationDataModule(ReviewDataModule):
    """Labelled reviews, one example each: `input_ids` and `labels`; `predict` reads reviews."""

    report_texts = True  # the worst mistakes are shown as the reviews were written (src/callbacks/reports.py)

    def __init__(
        self,
        max_length: int = 256,
        truncation: Literal["head", "head_tail"] = "head_tail",
        prompt_template: str | None = None,
        num_labels: int = 2,
        label_budget: int | None = None,
        label_seed: int = 0,
        soft_labels: str | list[str] | None = None,
        soft_label_temperature: float = 1.0,
        soft_labels_per_class: int | None = None,
        token_dropout: float = 0.0,
        unlabelled: int = 0,
        labelled_share: float | None = None,
        consistency_noise: Literal["tfidf", "token_dropout"] | None = None,
        consistency_p: float = 0.2,
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
                `probabilities` a line) to train on as well, with its probabilities as targets (distillation); a
                list of them: an ensemble teacher, the mean of their probabilities (the same reviews in each).
            soft_label_temperature: the teacher's probabilities to the power 1 / T, renormalised: below 1 sharpens
                them, 1 keeps them (src/data/soft_labels.py).
            soft_labels_per_class: keep only the teacher's reviews it is most confident of, this many per class
                (self-training's confident, class-balanced selection); None: all of them.
            token_dropout: leave out each non-special token of a training review with this probability, anew every
                batch (the noisy student's input noise, src/data/augment.py); 0: none.
            unlabelled: add this many reviews of the `unsupervised` split (a seeded sample by `sample_seed`, none
                already among the training reviews) without a label, for consistency training; 0: none.
            labelled_share: repeat the N human-labelled reviews until they make up at least this share of the
                training set (UDA's labelled batch beside the unlabelled one, in expectation); None: each once.
            consistency_noise: give every training batch a noisy copy of each review (`augmented_input_ids`), by
                UDA's TF-IDF word replacement (`tfidf`) or token dropout; the consistency model needs it. None: no copy.
            consistency_p: the share of a review's tokens that noise replaces (`tfidf`) or leaves out.
            **kwargs: the shared arguments of `ReviewDataModule` (source, batch sizes, splits, limits, cache).
        """
        # Out of range these ran as something else (a negative count as none, a share above 1 as all) or failed later.
        check_ranges(
            "data",
            ("num_labels", num_labels, num_labels >= 2, "2 or more"),
            ("label_budget", label_budget, label_budget is None or label_budget >= 0, "0 or more, or null for all"),
            ("unlabelled", unlabelled, unlabelled >= 0, "0 or more"),
            ("soft_labels_per_class", soft_labels_per_class, soft_labels_per_class is None or soft_labels_per_class > 0,
             "1 or more, or null for all"),
            ("soft_label_temperature", soft_label_temperature, soft_label_temperature > 0, "above 0 (1 keeps them)"),
            ("labelled_share", labelled_share, labelled_share is None or 0 < labelled_share <= 1,
             "above 0, at most 1, or null"),
            ("consistency_p", consistency_p, 0 <= consistency_p < 1, "from 0 to below 1"),
        )
        super().__init__(**kwargs)

    def cache_settings(self) -> list:
        hp = self.hparams
        return ["classification", hp.max_length, hp.truncation, hp.prompt_template]

    def window(self) -> tuple[str, int]:
        return "data.max_length", self.hparams.max_length

    def extra_fit_splits(self) -> list[str]:
        return ["unsupervised"] if self.hparams.unlabelled else []

    def train_collator(self):
        hp, special = self.hparams, self.tokenizer.all_special_ids
        collator = super().train_collator()
        if hp.token_dropout:
            collator = Noised(collator, TokenDropout(special, hp.token_dropout))
        if hp.consistency_noise == "tfidf":  # statistics of this run's training reviews, labelled or not
            return ConsistencyPairs(collator, TfIdfReplacement(self.splits["train"]["input_ids"], special,
                                                               hp.consistency_p))
        if hp.consistency_noise == "token_dropout":
            return ConsistencyPairs(collator, TokenDropout(special, hp.consistency_p))
        return collator

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
        if hp.soft_labels is None and not hp.unlabelled:
            return train
        labels = [[float(y == c) for c in range(hp.num_labels)] for y in train["label"]]
        ids = list(train["input_ids"])
        if hp.soft_labels is not None:
            texts, probs = read_teachers(hp.soft_labels, hp.num_labels)
            if hp.soft_labels_per_class is not None:
                keep = most_confident(probs, hp.soft_labels_per_class)
                texts, probs = [texts[i] for i in keep], [probs[i] for i in keep]
            labels += sharpen(probs, hp.soft_label_temperature)
            ids += self.predict_ids(texts)
        if hp.unlabelled:
            extra = self.unlabelled_ids(tokenized["unsupervised"], {tuple(x) for x in ids})
            labels += [[0.0] * hp.num_labels] * len(extra)
            ids += extra
        if hp.labelled_share is not None and len(train):  # the human rows come first
            n = len(train)
            repeats = human_repeats(n, len(ids) - n, hp.labelled_share)
            ids, labels = ids[:n] * repeats + ids[n:], labels[:n] * repeats + labels[n:]
        return datasets.Dataset.from_dict({"input_ids": ids, "label": labels, "length": [len(x) for x in ids]})

    def unlabelled_ids(self, unsupervised: datasets.Dataset, taken: set[tuple]) -> list[list[int]]:
        """The first `unlabelled` reviews of the seeded order of the unsupervised split that are not `taken` (a
        teacher's reviews are the first of that same order)."""
        want = self.hparams.unlabelled
        pool = unsupervised.shuffle(seed=self.order_seed)
        ids, start = [], 0
        while len(ids) < want and start < len(pool):  # IMDB repeats reviews: read on past copies of taken ones
            stop = min(len(pool), start + want - len(ids) + len(taken))
            ids += [x for x in pool.select(range(start, stop))["input_ids"] if tuple(x) not in taken]
            start = stop
        ids = ids[:want]
        if len(ids) < want:
            raise UserError(f"data.unlabelled {want}: the unsupervised split has {len(ids)} reviews not already "
                            "trained on; fix: ask for fewer")
        return ids

    def check_labels(self, ds: datasets.Dataset, split: str) -> None:
        n = self.hparams.num_labels
        bad = sorted(x for x in set(ds.unique("label")) if not (isinstance(x, int) and 0 <= x < n))
        if bad:
            raise UserError(
                f"split {split!r} of {self.source!r} has labels {bad[:5]} outside the classes "
                f"0..{n - 1}; fix: relabel the data or set data.num_labels"
            )


def human_repeats(humans: int, others: int, share: float) -> int:
    """How many copies of `humans` labelled reviews make at least `share` of a training set with `others` reviews."""
    if not 0 < share < 1:
        raise UserError(f"data.labelled_share {share}: fix: give a share between 0 and 1 (0.25: a quarter of the "
                        "training reviews are human-labelled ones), or null")
    return max(1, math.ceil(share * others / ((1 - share) * humans)))
