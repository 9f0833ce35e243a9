"""The base of the language-modelling data modules: review text (the training split, and the unlabelled
reviews too) concatenated and cut into blocks of `block_size` tokens, with no padding (HF `group_texts`).

To run: python -m src fit --config configs/mlm_imdb.yaml
"""

import datasets

from src.data.base import ReviewDataModule, take
from src.data.text import pack


class PackedTextDataModule(ReviewDataModule):
    """Review text in full blocks of `block_size` tokens, for causal or masked language modelling."""

    def __init__(self, block_size: int = 256, use_unsupervised: bool = True, **kwargs):
        """
        Args:
            block_size: tokens per block.
            use_unsupervised: also train on the unsupervised (unlabelled) split.
            **kwargs: the shared arguments of `ReviewDataModule` (source, batch sizes, splits, limits, cache).
        """
        super().__init__(**kwargs)

    def extra_fit_splits(self) -> list[str]:
        return ["unsupervised"] if self.hparams.use_unsupervised else []

    def window(self) -> tuple[str, int]:
        return "data.block_size", self.hparams.block_size

    def reviews(self, ds: datasets.Dataset) -> datasets.Dataset:
        """The reviews whose text is used (all of them; a subclass may select)."""
        return ds

    def train_set(self, train: datasets.Dataset, tokenized: dict[str, datasets.Dataset]) -> datasets.Dataset:
        if "unsupervised" in tokenized:
            train = datasets.concatenate_datasets([train, tokenized["unsupervised"]]).shuffle(seed=self.order_seed)
        return pack(take(self.reviews(train), self.hparams.limit_train), self.hparams.block_size)

    def eval_set(self, reviews: datasets.Dataset) -> datasets.Dataset:
        return pack(self.reviews(reviews), self.hparams.block_size)
