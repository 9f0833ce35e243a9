"""Noise for training inputs (noisy-student self-training, Xie et al. 2020: the student learns under noise its teacher
did not have): token dropout, each non-special token of a training review left out with probability `p`, drawn anew
every batch. Evaluation and prediction inputs are never touched.

To run: python -m src fit --config configs/bert_imdb.yaml --data.init_args.token_dropout 0.1
"""

import torch

from src.errors import UserError


class TokenDropout:
    """Wraps a collator: before padding, drops each token of `input_ids` that is not a special token with probability
    `p` (the global torch generator: seeded by `seed_everything`, and restored on resume by ResumeCheckpoint)."""

    def __init__(self, collator, special_ids: list[int], p: float):
        if not 0 <= p < 1:
            raise UserError(f"data.token_dropout {p}: fix: give a probability in [0, 1)")
        self.collator, self.special, self.p = collator, torch.tensor(sorted(set(special_ids))), p

    def __call__(self, features: list[dict]) -> dict:
        for f in features:
            ids = torch.as_tensor(f["input_ids"])
            keep = torch.isin(ids, self.special) | (torch.rand(len(ids)) >= self.p)
            f["input_ids"] = ids[keep].tolist()
            if "attention_mask" in f:
                f["attention_mask"] = [1] * len(f["input_ids"])
        return self.collator(features)
