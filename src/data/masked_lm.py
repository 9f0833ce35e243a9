"""Review text for masked-LM pretraining: each review as `[CLS] review [SEP]`, packed into blocks and masked
by `DataCollatorForLanguageModeling`: fresh masks for every training batch, one fixed, seeded set of masks for
evaluation, so that perplexities compare across runs. `predict` fills the mask tokens of its texts.

To run: python -m src fit --config configs/mlm_imdb.yaml
"""

import datasets

from src.data.collate import mlm_collator
from src.data.packed import PackedTextDataModule
from src.data.text import clean, tokenize
from src.errors import UserError


class MaskedLMDataModule(PackedTextDataModule):
    """Packed review text with masked tokens (BERT's 80/10/10, or whole words) and their labels."""

    def __init__(self, mlm_probability: float = 0.15, whole_word_mask: bool = False, **kwargs):
        """
        Args:
            mlm_probability: fraction of tokens chosen for prediction; of those 80% become the mask
                token, 10% a random token and 10% stay (BERT), or all become the mask token with `whole_word_mask`.
            whole_word_mask: choose whole words (all their word pieces) instead of single tokens.
            **kwargs: `block_size`, `use_unsupervised` and the shared arguments of `ReviewDataModule`.
        """
        if not 0 < mlm_probability <= 1:  # 0: no token to predict, a shape error in the first step
            raise UserError(f"data.mlm_probability is {mlm_probability}; fix: above 0, at most 1 (BERT: 0.15)")
        super().__init__(**kwargs)

    def cache_settings(self) -> list:
        return ["masked_lm", self.hparams.whole_word_mask]

    def tokenize_batch(self, batch: dict) -> dict:
        # Whole reviews, each as [CLS] review [SEP], to be packed (HF run_mlm).
        wwm = self.hparams.whole_word_mask
        enc = self.tokenizer([clean(t) for t in batch["text"]], return_offsets_mapping=wwm, verbose=False)
        out = {"input_ids": enc["input_ids"], "length": [len(x) for x in enc["input_ids"]]}
        if wwm:  # where each token starts and ends: pieces of one word touch
            out["offset_mapping"] = enc["offset_mapping"]
        return out

    def collator(self, seed: int | None = None):
        return mlm_collator(self.tokenizer, self.hparams.mlm_probability, self.hparams.whole_word_mask, seed)

    def train_collator(self):
        return self.collator()  # fresh masks every batch

    def eval_set(self, reviews: datasets.Dataset) -> datasets.Dataset:
        """Packed blocks, masked once and seeded, so every evaluation sees the same masks."""
        blocks = super().eval_set(reviews)
        collator = self.collator(seed=self.hparams.seed)
        columns = [c for c in ("input_ids", "offset_mapping") if c in blocks.column_names]

        def mask(batch: dict) -> dict:
            out = collator([dict(zip(columns, values)) for values in zip(*(batch[c] for c in columns))])
            return {"input_ids": out["input_ids"].tolist(), "labels": out["labels"].tolist()}

        # In memory: the cached dataset's folder is left untouched (and unraced by other ranks).
        return blocks.map(mask, batched=True, batch_size=1000, remove_columns=columns[1:], keep_in_memory=True,
                          desc="masking evaluation blocks")

    def predict_ids(self, texts: list[str]) -> list[list[int]]:
        return tokenize(texts, self.tokenizer, self.hparams.block_size, "head")
