"""Noise for training inputs, on token ids, drawn anew every batch from the global torch generator (seeded by
`seed_everything`, restored on resume by ResumeCheckpoint); evaluation and prediction inputs are never touched.

- `TokenDropout`: each non-special token left out with probability `p` (the noisy student's input noise, Xie et al.
  2020; UDA's word dropout).
- `TfIdfReplacement`: UDA's TF-IDF word replacement (Xie et al. 2019, google-research/uda): uninformative tokens (low
  TF-IDF in their review) are replaced more often, by tokens drawn towards the uninformative end of the corpus, so a
  review keeps its keywords and its label. It works on the tokenizer's tokens (WordPiece pieces), not whole words.

Two ways to use them: `Noised` replaces each training review by its noisy copy (noisy student); `ConsistencyPairs`
keeps the review and adds the copy as `augmented_input_ids` (consistency training, src/models/consistency.py).

To run: python -m src fit --config configs/bert_imdb.yaml --data.init_args.token_dropout 0.1
"""

import math

import torch

from src.errors import UserError


def check_probability(p: float, name: str) -> None:
    if not 0 <= p < 1:
        raise UserError(f"data.{name} {p}: fix: give a probability in [0, 1)")


class TokenDropout:
    """Leaves out each token that is not a special token with probability `p`."""

    def __init__(self, special_ids: list[int], p: float):
        check_probability(p, "token_dropout")
        self.special, self.p = torch.tensor(sorted(set(special_ids))), p

    def __call__(self, ids: list[int]) -> list[int]:
        ids = torch.as_tensor(ids)
        keep = torch.isin(ids, self.special) | (torch.rand(len(ids)) >= self.p)
        return ids[keep].tolist()


class TfIdfReplacement:
    """UDA's TF-IDF replacement: a review's token t is replaced with probability min(1, p * n * s_t / sum(s)), where
    s_t = max(tfidf in the review) - tfidf(t) and n the review's length (so about p of its tokens on average, the
    uninformative ones first), by a token drawn with probability proportional to max(T) - T(w) over the corpus's
    tokens, T(w) the corpus TF-IDF of w. Statistics from `corpus` (the training reviews' token ids)."""

    def __init__(self, corpus: list[list[int]], special_ids: list[int], p: float):
        check_probability(p, "consistency_p")
        self.special, self.p = torch.tensor(sorted(set(special_ids))), p
        docs = [d[~torch.isin(d, self.special)] for d in map(torch.as_tensor, corpus)]
        docs = [d for d in docs if len(d)]
        if not docs:
            raise UserError("TF-IDF replacement needs training reviews with text; fix: check the training split")
        tokens = torch.cat(docs)
        size = int(tokens.max()) + 1
        df = torch.bincount(torch.cat([d.unique() for d in docs]), minlength=size).double()  # reviews holding t
        # A token the corpus never holds counts as the rarest (idf log N): it is informative, seldom replaced.
        self.idf = torch.where(df > 0, (len(docs) / df.clamp_min(1)).log(), math.log(len(docs)))
        per_token = torch.cat([torch.full((len(d),), 1 / len(d), dtype=torch.float64) for d in docs])
        corpus_tfidf = torch.bincount(tokens, weights=per_token, minlength=size) * self.idf
        self.vocab = (df > 0).nonzero().flatten()
        weights = corpus_tfidf[self.vocab].max() - corpus_tfidf[self.vocab]
        self.draw = weights / weights.sum() if weights.sum() > 0 else torch.full_like(weights, 1 / len(weights))

    def __call__(self, ids: list[int]) -> list[int]:
        ids = torch.as_tensor(ids)
        positions = (~torch.isin(ids, self.special)).nonzero().flatten()
        if len(positions) == 0 or self.p == 0:
            return ids.tolist()
        tokens = ids[positions]
        _, inverse = torch.unique(tokens, return_inverse=True)
        idf = torch.full((len(tokens),), float(self.idf.max()), dtype=torch.float64)
        seen = tokens < len(self.idf)
        idf[seen] = self.idf[tokens[seen]]
        tfidf = torch.bincount(inverse).double()[inverse] / len(tokens) * idf
        score = tfidf.max() - tfidf
        if score.sum() > 0:
            replace = (self.p * len(tokens) * score / score.sum()).clamp_max(1.0)
        else:  # every token as informative as the others: each replaced with probability p
            replace = torch.full_like(score, self.p)
        chosen = positions[torch.rand(len(tokens)) < replace]
        out = ids.clone()
        if len(chosen):
            out[chosen] = self.vocab[torch.multinomial(self.draw, len(chosen), replacement=True)]
        return out.tolist()


class Noised:
    """Wraps a collator: each training review's `input_ids` replaced by `noise(input_ids)` before padding."""

    def __init__(self, collator, noise):
        self.collator, self.noise = collator, noise

    def __call__(self, features: list[dict]) -> dict:
        for f in features:
            f["input_ids"] = self.noise(f["input_ids"])
            if "attention_mask" in f:
                f["attention_mask"] = [1] * len(f["input_ids"])
        return self.collator(features)


class ConsistencyPairs:
    """Wraps a collator: the batch as it is, plus each review's noisy copy as `augmented_input_ids` and
    `augmented_attention_mask` (padded on their own)."""

    def __init__(self, collator, noise):
        self.collator, self.noise = collator, noise

    def __call__(self, features: list[dict]) -> dict:
        copies = [{"input_ids": self.noise(f["input_ids"])} for f in features]
        batch = self.collator(features)
        augmented = self.collator(copies)
        batch["augmented_input_ids"] = augmented["input_ids"]
        batch["augmented_attention_mask"] = augmented["attention_mask"]
        return batch
