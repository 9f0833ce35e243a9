"""Review text for causal-LM fine-tuning: each review ended by EOS, packed into blocks; optionally only one
class's reviews, or each review led by its label's prefix (for conditional generation). `predict` reads
prompts, optionally wrapped in the tokenizer's chat template, and pads them on the left for generation.

To run: python -m src fit --config configs/gpt_finetune_imdb.yaml
"""

import datasets

from src.data.packed import PackedTextDataModule
from src.data.text import clean, prompt_ids
from src.errors import UserError


class CausalLMDataModule(PackedTextDataModule):
    """Packed review text for next-token prediction; prompts for `predict`."""

    padding_side = "left"  # generation continues after the last token

    def __init__(
        self,
        only_label: int | None = None,
        label_prefixes: list[str] | None = None,
        chat_template: bool = False,
        **kwargs,
    ):
        """
        Args:
            only_label: train and validate on the reviews of this class only (e.g. 1: positive text).
            label_prefixes: text put before each labelled review, by label id (e.g. ["Negative: ", "Positive: "]).
            chat_template: predict: wrap each prompt in the tokenizer's chat template as a user turn.
            **kwargs: `block_size`, `use_unsupervised` and the shared arguments of `ReviewDataModule`.
        """
        super().__init__(**kwargs)

    def cache_settings(self) -> list:
        return ["causal_lm", self.hparams.label_prefixes]

    def tokenize_batch(self, batch: dict) -> dict:
        texts, prefixes = [clean(t) for t in batch["text"]], self.hparams.label_prefixes
        if prefixes:
            if max(batch["label"]) >= len(prefixes):
                raise UserError(f"data.label_prefixes has {len(prefixes)} prefixes and the reviews have label "
                                f"{max(batch['label'])}; fix: a prefix for each label id")
            texts = [prefixes[y] + t if y >= 0 else t for t, y in zip(texts, batch["label"])]
        eos = self.tokenizer.eos_token_id
        ids = [x + [eos] for x in self.tokenizer(texts, add_special_tokens=False, verbose=False)["input_ids"]]
        return {"input_ids": ids, "length": [len(x) for x in ids]}

    def reviews(self, ds: datasets.Dataset) -> datasets.Dataset:
        label = self.hparams.only_label
        if label is None:
            return ds
        kept = ds.filter(lambda y: y == label, input_columns="label")
        if len(ds) and not len(kept):
            raise UserError(f"data.only_label is {label}: no review has that label (they have "
                            f"{sorted(set(ds['label']))}); fix: one of those, or null for all")
        return kept

    def predict_ids(self, texts: list[str]) -> list[list[int]]:
        return [prompt_ids(t, self.tokenizer, self.hparams.chat_template) for t in texts]
