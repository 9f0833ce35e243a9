"""Which reviews a study or a benchmark reads: the evaluation reviews, class-balanced samples, demonstrations.

The evaluation reviews are a seeded, class-balanced sample of one named split, `test` (for the figures reported) or
`validation` (the reviews held out of train, for every choice made while developing), with duplicate texts removed and
with every review whose text also stands in a split that runs train on (the training part, the unsupervised split)
left out: no evaluation review can reach a label sample, demonstrations, a calibration sample, a teacher's reviews or
masked-LM text.

To run: python -c "from src.data.selection import evaluation_reviews as e; print(len(e(None, 'test', 2000).texts))"
"""

import random
from dataclasses import dataclass
from typing import Literal

import datasets

from src.data.base import balanced_sample, held_out_split  # noqa: F401 (balanced_sample: re-exported)
from src.data.sources import default_source, load_source
from src.errors import UserError

EvalSplit = Literal["test", "validation"]


@dataclass
class Reviews:
    texts: list[str]
    labels: list[int]


def training_pool(source: str | None, val_size: int | float, split_seed: int) -> datasets.Dataset:
    """The labelled training reviews left after the held-out validation split (what the data modules train on)."""
    raw, _ = load_source(source or default_source())
    return held_out_split(raw["train"], val_size, split_seed)["train"]


def evaluation_reviews(source: str | None, split: EvalSplit, size: int | None, seed: int = 0,
                       val_size: int | float = 2500, split_seed: int = 42) -> Reviews:
    """`size` class-balanced reviews of `split` (None: all of them), drawn with `seed`, each text once, none whose text
    a training split also holds; in a seeded order."""
    raw, _ = load_source(source or default_source())
    if split == "test":
        if "test" not in raw:
            raise UserError(f"data source {source or default_source()!r} has no test split (it has: {', '.join(raw)}); "
                            "fix: set eval_split: validation, or point source at a source with a test split")
        pool, training = raw["test"], [raw["train"]["text"]]
    elif split == "validation":
        parts = held_out_split(raw["train"], val_size, split_seed)
        pool, training = parts["test"], [parts["train"]["text"]]
    else:
        raise UserError(f"evaluation split {split!r} is neither 'test' nor 'validation'; fix: set eval_split")
    if "unsupervised" in raw:
        training.append(raw["unsupervised"]["text"])
    seen = {t for texts in training for t in texts}
    keep = []
    for i, text in enumerate(pool["text"]):
        if text not in seen:  # a duplicate within the split, or a review a training split also holds
            seen.add(text)
            keep.append(i)
    pool = pool.select(keep)
    labels = pool["label"]
    rows = list(range(len(pool))) if size is None else balanced_sample(labels, size, len(set(labels)), seed)
    random.Random(seed).shuffle(rows)
    return Reviews([pool[i]["text"] for i in rows], [labels[i] for i in rows])


def demonstrations(source: str | None, k: int, seed: int, val_size: int | float = 2500,
                   split_seed: int = 42) -> Reviews:
    """`k` class-balanced labelled training reviews (never held-out or test ones), in a seeded order."""
    train = training_pool(source, val_size, split_seed)
    rows = balanced_sample(train["label"], k, len(set(train["label"])), seed)
    random.Random(seed).shuffle(rows)  # classes interleaved at random, not sorted
    return Reviews([train[i]["text"] for i in rows], [train[i]["label"] for i in rows])
