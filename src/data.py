"""IMDB reviews as a LightningDataModule: load, split, tokenize once (cached on disk), batch.

Sources: a hub id (`stanfordnlp/imdb`), a folder of split files (`train.parquet`, `test.csv`,
`unsupervised.jsonl`, ...; the shared mirror's layout), or the original `aclImdb/` tree.
Tokenized splits are saved under `cache_dir` keyed by source, tokenizer and settings, so the next
run with the same settings skips tokenization. Batches are padded per batch (dynamic padding);
training batches group reviews of similar length, evaluation batches are sorted by length.

To run: python -m src fit --config configs/bert_imdb.yaml
"""

import hashlib
import json
import math
import os
import random
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import datasets
import lightning as L
import torch
from lightning.pytorch.utilities import rank_zero_info
from torch.utils.data import DataLoader, Sampler
from transformers import AutoTokenizer, DataCollatorWithPadding

from src.errors import UserError
from src.pretrained import from_pretrained

PROJECT_ROOT = Path(__file__).resolve().parents[1]
LOCAL_MIRROR = PROJECT_ROOT.parent / "shared" / "data" / "imdb"
HUB_ID = "stanfordnlp/imdb"
SPLITS = ("train", "test", "unsupervised")
FORMATS = {".parquet": "parquet", ".csv": "csv", ".jsonl": "json", ".json": "json"}
CACHE_VERSION = 1  # bump when tokenization changes, so stale caches are not reused


def default_source() -> str:
    """The shared offline mirror when it exists, else the hub id."""
    return str(LOCAL_MIRROR) if LOCAL_MIRROR.is_dir() else HUB_ID


def clean(text: str) -> str:
    """IMDB reviews carry HTML line breaks."""
    return text.replace("<br />", " ").replace("<br/>", " ")


def load_source(source: str) -> tuple[datasets.DatasetDict, str]:
    """The raw splits of `source` and a fingerprint that changes when its files change."""
    path = Path(source).expanduser()
    if path.is_dir():
        if (path / "train" / "pos").is_dir() or (path / "test" / "pos").is_dir():
            return _load_aclimdb(path), _fingerprint_files(path, "*/*/*.txt")
        files = {s: f for s in SPLITS for f in sorted(path.glob(f"{s}.*")) if f.suffix in FORMATS}
        if not files:
            raise UserError(
                f"data folder {source!r} has no split files: expected train/test/unsupervised "
                f"as {'/'.join(FORMATS)} files, or an aclImdb/ tree with train/pos and train/neg"
            )
        dd = datasets.DatasetDict(
            {s: datasets.load_dataset(FORMATS[f.suffix], data_files=str(f), split="train") for s, f in files.items()}
        )
        return dd, _fingerprint_files(path, "*.*")
    looks_like_path = source.startswith((".", "/", "~")) or source.count("/") > 1 or path.suffix in FORMATS
    if looks_like_path:
        raise UserError(f"data source {source!r} does not exist: fix data.source (a folder, or a hub id such as {HUB_ID})")
    try:
        return datasets.load_dataset(source), source
    except Exception as err:  # the hub raises many types: connection, not found, offline
        raise UserError(
            f"cannot load data source {source!r} from the Hugging Face Hub ({type(err).__name__}: "
            f"{str(err).splitlines()[0] if str(err) else ''}); fix: set data.source to a local folder "
            f"such as {LOCAL_MIRROR}"
        ) from None


def _load_aclimdb(root: Path) -> datasets.DatasetDict:
    splits = {}
    for split, folders in (("train", ("neg", "pos")), ("test", ("neg", "pos")), ("unsupervised", ("unsup",))):
        parent = root / ("train" if split == "unsupervised" else split)
        rows = {"text": [], "label": []}
        for label, folder in enumerate(folders):
            for f in sorted((parent / folder).glob("*.txt"), key=lambda p: p.name):
                rows["text"].append(f.read_text(encoding="utf-8"))
                rows["label"].append(-1 if folder == "unsup" else label)
        if rows["text"]:
            splits[split] = datasets.Dataset.from_dict(rows)
    return datasets.DatasetDict(splits)


def _fingerprint_files(root: Path, pattern: str) -> str:
    stats = [(str(f.relative_to(root)), f.stat().st_size, f.stat().st_mtime_ns) for f in sorted(root.glob(pattern))]
    return f"{root.resolve()}:{hashlib.sha256(json.dumps(stats).encode()).hexdigest()[:16]}"


def tokenize(texts: list[str], tokenizer, max_length: int, truncation: str) -> list[list[int]]:
    """Token ids with special tokens, at most `max_length` long.

    `head` keeps the start of a long review; `head_tail` keeps its first quarter and last three
    quarters of the budget (Sun et al. 2019: the end of a review carries much of its verdict).
    """
    texts = [clean(t) for t in texts]
    if truncation == "head":
        return tokenizer(texts, truncation=True, max_length=max_length)["input_ids"]
    head = max_length // 4
    ids = tokenizer(texts, verbose=False)["input_ids"]  # special tokens sit at both ends, so a cut keeps them
    return [x if len(x) <= max_length else x[:head] + x[len(x) - (max_length - head) :] for x in ids]


class LengthGroupedSampler(Sampler[int]):
    """Shuffled indices in which neighbours have similar lengths, so padded batches waste little.

    Indices are shuffled, cut into mega-batches of `mega_batch` batches, each sorted by length
    (longest first), and the batches are shuffled again: random batches, little padding.
    """

    def __init__(self, lengths: list[int], batch_size: int, seed: int, mega_batch: int = 50):
        self.lengths, self.batch_size, self.seed, self.mega_batch = lengths, batch_size, seed, mega_batch
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.lengths)

    def __iter__(self) -> Iterator[int]:
        rng = random.Random(self.seed + self.epoch)
        order = list(range(len(self.lengths)))
        rng.shuffle(order)
        size = self.batch_size * self.mega_batch
        batches = []
        for start in range(0, len(order), size):
            mega = sorted(order[start : start + size], key=lambda i: -self.lengths[i])
            batches += [mega[i : i + self.batch_size] for i in range(0, len(mega), self.batch_size)]
        rng.shuffle(batches)
        return iter([i for batch in batches for i in batch])


class Collator:
    """Pads a list of examples to the longest in the batch (a multiple of 8); keeps `text` as a list."""

    def __init__(self, tokenizer):
        self.pad = DataCollatorWithPadding(tokenizer, pad_to_multiple_of=8)

    def __call__(self, features: list[dict]) -> dict:
        texts = [f.pop("text") for f in features] if "text" in features[0] else None
        batch = self.pad(features)
        if texts is not None:
            batch["text"] = texts
        return batch


class IMDBDataModule(L.LightningDataModule):
    """IMDB movie reviews for classification: train, a held-out validation split, test, predict."""

    def __init__(
        self,
        tokenizer: str = "sentence-transformers/all-MiniLM-L6-v2",
        source: str | None = None,
        max_length: int = 256,
        truncation: Literal["head", "head_tail"] = "head_tail",
        batch_size: int = 16,
        eval_batch_size: int | None = None,
        val_size: int | float = 0.1,
        num_labels: int = 2,
        test_split: str = "test",
        limit_train: int | None = None,
        limit_val: int | None = None,
        limit_test: int | None = None,
        predict_file: str | None = None,
        predict_texts: list[str] | None = None,
        num_workers: int = 0,
        cache_dir: str = "outputs/cache",
        seed: int = 42,
    ):
        """
        Args:
            tokenizer: model name or path whose tokenizer to use (linked to the model's `model_name`).
            source: hub id, folder of split files, or aclImdb/ folder; None: the shared mirror
                `../shared/data/imdb` when it exists, else `stanfordnlp/imdb`.
            max_length: longest tokenized review, special tokens included.
            truncation: `head` keeps the start of long reviews; `head_tail` their start and end.
            batch_size: reviews per training batch (per device).
            eval_batch_size: reviews per evaluation batch; None: twice `batch_size`.
            val_size: validation split held out of train: a fraction (< 1) or a number of reviews.
            num_labels: number of classes; labels must lie in 0..num_labels-1.
            test_split: the split `test` evaluates; `validation` for sources without a test split.
            limit_train: use only this many training reviews (after shuffling), for quick runs.
            limit_val: use only this many validation reviews.
            limit_test: use only this many test reviews.
            predict_file: text file with one review per line, for `predict`.
            predict_texts: reviews for `predict`, given in the config.
            num_workers: DataLoader worker processes.
            cache_dir: where tokenized splits are cached.
            seed: seed of the validation split and of the training order.
        """
        super().__init__()
        self.save_hyperparameters()
        self.source = source or default_source()
        self.eval_batch_size = eval_batch_size or 2 * batch_size
        self.splits: dict[str, datasets.Dataset] = {}
        self._tokenizer = None

    @property
    def tokenizer(self):
        if self._tokenizer is None:
            self._tokenizer = from_pretrained(AutoTokenizer, self.hparams.tokenizer)
        return self._tokenizer

    # ---- tokenize once, on one process per node (Lightning calls prepare_data before setup) ----

    def _needed(self, stage: str | None) -> list[str]:
        if stage == "predict":
            return []
        if stage == "test" and self.hparams.test_split != "validation":
            return [self.hparams.test_split]
        return ["train"]

    def _cache_path(self, fingerprint: str, split: str) -> Path:
        tok = self.tokenizer
        # The vocabulary and special tokens identify a tokenizer (its serialized state also holds
        # the last call's truncation settings, so it is not stable).
        vocab = json.dumps([type(tok).__name__, sorted(tok.get_vocab().items()), tok.all_special_tokens])
        key = json.dumps(
            [CACHE_VERSION, fingerprint, split, hashlib.sha256(vocab.encode()).hexdigest(),
             self.hparams.max_length, self.hparams.truncation]
        )
        digest = hashlib.sha256(key.encode()).hexdigest()[:16]
        return Path(self.hparams.cache_dir) / "tokenized" / f"{split}-{digest}"

    def prepare_data(self) -> None:
        stage = self.trainer.state.fn if self.trainer is not None else None
        self._load_tokenized(self._needed(stage), write=True)

    def _load_tokenized(self, splits: list[str], write: bool = False) -> dict[str, datasets.Dataset]:
        if not splits:
            return {}
        raw, fingerprint = load_source(self.source)
        out = {}
        for split in splits:
            if split not in raw:
                raise UserError(
                    f"data source {self.source!r} has no {split!r} split (it has: {', '.join(raw)}); "
                    "fix: point data.source at a source with it, or set data.test_split validation"
                )
            path = self._cache_path(fingerprint, split)
            if path.exists():
                start = time.perf_counter()
                out[split] = datasets.load_from_disk(str(path))
                if write:
                    rank_zero_info(f"reused tokenized {split} from {path} ({time.perf_counter() - start:.2f}s)")
                continue
            if not write:
                raise RuntimeError(f"tokenized cache {path} missing: prepare_data did not run")
            ds = self._validate(raw[split], split)
            start = time.perf_counter()
            ds = ds.map(
                lambda b: {"input_ids": (ids := tokenize(b["text"], self.tokenizer, self.hparams.max_length, self.hparams.truncation)),
                           "length": [len(x) for x in ids]},
                batched=True, remove_columns=[c for c in ds.column_names if c != "label"],
                desc=f"tokenizing {split}",
            )
            tmp = path.with_name(path.name + ".tmp")
            shutil.rmtree(tmp, ignore_errors=True)
            ds.save_to_disk(str(tmp))
            os.replace(tmp, path)  # atomic: a crashed run never leaves a half-written cache
            rank_zero_info(f"tokenized {split} ({len(ds)} reviews) in {time.perf_counter() - start:.1f}s -> {path}")
            out[split] = datasets.load_from_disk(str(path))
        return out

    def _validate(self, ds: datasets.Dataset, split: str) -> datasets.Dataset:
        missing = {"text", "label"} - set(ds.column_names)
        if missing:
            raise UserError(
                f"split {split!r} of {self.source!r} lacks column(s) {sorted(missing)} (it has {ds.column_names}); "
                "fix: provide a 'text' column with the review and a 'label' column with the class id"
            )
        if split != "unsupervised":
            labels = set(ds.unique("label"))
            bad = sorted(x for x in labels if not (isinstance(x, int) and 0 <= x < self.hparams.num_labels))
            if bad:
                raise UserError(
                    f"split {split!r} of {self.source!r} has labels {bad[:5]} outside the classes "
                    f"0..{self.hparams.num_labels - 1}; fix: relabel the data or set data.num_labels"
                )
        return ds

    # ---- split and batch (every process) ----

    def setup(self, stage: str | None = None) -> None:
        hp = self.hparams
        if stage == "predict":
            self.splits["predict"] = self._predict_dataset()
            return
        tokenized = self._load_tokenized(self._needed(stage))
        if "train" in tokenized:
            n_val = hp.val_size if hp.val_size >= 1 else math.ceil(hp.val_size * len(tokenized["train"]))
            parts = tokenized["train"].train_test_split(test_size=int(n_val), seed=hp.seed)
            self.splits["train"] = _limit(parts["train"], hp.limit_train)
            self.splits["validation"] = _limit(parts["test"], hp.limit_val)
        if stage == "test":
            split = hp.test_split
            self.splits["test"] = _limit(self.splits["validation"] if split == "validation" else tokenized[split], hp.limit_test)

    def _predict_dataset(self) -> datasets.Dataset:
        hp = self.hparams
        texts = list(hp.predict_texts or [])
        if hp.predict_file:
            path = Path(hp.predict_file)
            if not path.is_file():
                raise UserError(f"predict file {hp.predict_file!r} does not exist: fix data.predict_file")
            texts += [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        if not texts:
            raise UserError("nothing to predict: set data.predict_file (one review per line) or data.predict_texts")
        ids = tokenize(texts, self.tokenizer, hp.max_length, hp.truncation)
        return datasets.Dataset.from_dict(
            {"input_ids": ids, "length": [len(x) for x in ids], "idx": list(range(len(texts))), "text": texts}
        )

    def train_dataloader(self) -> DataLoader:
        ds = self.splits["train"]
        sampler = LengthGroupedSampler(ds["length"], self.hparams.batch_size, seed=self.hparams.seed)
        return self._loader(ds, self.hparams.batch_size, sampler=sampler)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.splits["validation"], self.eval_batch_size, by_length=True)

    def test_dataloader(self) -> DataLoader:
        return self._loader(self.splits["test"], self.eval_batch_size, by_length=True)

    def predict_dataloader(self) -> DataLoader:
        return self._loader(self.splits["predict"], self.eval_batch_size, by_length=True)

    def _loader(self, ds: datasets.Dataset, batch_size: int, sampler=None, by_length: bool = False) -> DataLoader:
        if by_length:  # longest first: similar lengths per batch, and memory peaks at the start
            ds = ds.sort("length", reverse=True)
        ds = ds.remove_columns("length")
        return DataLoader(
            ds, batch_size=batch_size, sampler=sampler, collate_fn=Collator(self.tokenizer),
            num_workers=self.hparams.num_workers, persistent_workers=self.hparams.num_workers > 0,
        )


def _limit(ds: datasets.Dataset, n: int | None) -> datasets.Dataset:
    return ds.select(range(min(n, len(ds)))) if n is not None else ds
