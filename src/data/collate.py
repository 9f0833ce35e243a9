"""Collators: dynamic padding (to the batch's longest, a multiple of 8) and BERT-style masking.

To run: used by the data modules' loaders (src/data/base.py).
"""

from transformers import DataCollatorForLanguageModeling


class Collator:
    """Pads a list of examples to the longest in the batch (a multiple of 8); keeps `text` as a list.

    Causal LMs generate after the last token, so their prompts are padded on the left.
    """

    def __init__(self, tokenizer, padding_side: str = "right"):
        self.tokenizer, self.padding_side = tokenizer, padding_side

    def __call__(self, features: list[dict]) -> dict:
        texts = [f.pop("text") for f in features] if "text" in features[0] else None
        for f in features:
            if "label" in f:
                f["labels"] = f.pop("label")
        batch = self.tokenizer.pad(
            features, padding=True, pad_to_multiple_of=8, return_tensors="pt", padding_side=self.padding_side
        )
        if texts is not None:
            batch["text"] = texts
        return batch


def mlm_collator(tokenizer, probability: float, whole_word_mask: bool, seed: int | None = None):
    """Pads a batch and masks it: BERT's 80/10/10 replacement, or whole words with the mask token."""
    replace = {"mask_replace_prob": 1.0, "random_replace_prob": 0.0} if whole_word_mask else {}
    return DataCollatorForLanguageModeling(tokenizer, mlm_probability=probability, whole_word_mask=whole_word_mask,
                                           pad_to_multiple_of=8, seed=seed, **replace)
