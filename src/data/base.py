"""The base of every data module: load a source, check it, tokenize once (cached on disk, one process per
node), hold out a seeded validation split, and batch with dynamic padding (training batches grouped by
length and resumable mid-epoch; evaluation batches sorted by length).

A task is a subclass (classification.py, causal_lm.py, masked_lm.py) that says how a review is tokenized,
what the training and evaluation sets are made of and how `predict` reads its inputs. Every task holds out
the same validation reviews (same seed and size), so language-model and classifier runs share it.

To run: python -m src fit --config configs/bert_imdb.yaml
"""

import hashlib
import json
import math
import os
import random
import shutil
import time
from pathlib import Path

import datasets
import lightning as L
from filelock import FileLock
from lightning.pytorch.utilities import rank_zero_info
from torch.utils.data import DataLoader

from src.data.collate import Collator
from src.data.sampler import LengthGroupedSampler, ResumableLoader
from src.data.sources import default_source, load_source, read_utf8
from src.errors import UserError, check_ranges
from src.pretrained import load_tokenizer

CACHE_VERSION = 1  # bump when tokenization changes, so stale caches are not reused


class ReviewDataModule(L.LightningDataModule):
    """Reviews from a source, split, tokenized once and batched; subclasses define the task."""

    padding_side = "right"  # of predict batches

    def __init__(
        self,
        tokenizer: str = "sentence-transformers/all-MiniLM-L6-v2",
        source: str | None = None,
        batch_size: int = 16,
        eval_batch_size: int | None = None,
        val_size: int | float = 0.1,
        test_split: str = "test",
        limit_train: int | None = None,
        limit_val: int | None = None,
        limit_test: int | None = None,
        predict_file: str | None = None,
        predict_texts: list[str] | None = None,
        predict_split: str | None = None,
        limit_predict: int | None = None,
        num_workers: int = 0,
        cache_dir: str = "outputs/cache",
        seed: int = 42,
        sample_seed: int | None = None,
    ):
        """
        Args:
            tokenizer: model name or path whose tokenizer to use (linked to the model's `model_name`).
            source: hub id, folder of split files, or aclImdb/ folder; None: the shared mirror
                `../shared/data/imdb` when it exists, else `stanfordnlp/imdb`.
            batch_size: training batch size per process.
            eval_batch_size: validation/test/predict batch size; None: twice `batch_size`.
            val_size: validation split held out of train: a fraction (< 1) or a number of reviews.
            test_split: the split `test` evaluates; `validation` for sources without a test split.
            limit_train: use only this many training reviews (after shuffling), for quick runs.
            limit_val: use only this many validation reviews (the first of the seeded validation split: a random
                sample).
            limit_test: use only this many test reviews: a class-balanced sample drawn with `seed` (the same reviews
                for the same seed), never the first of a split sorted by label.
            predict_file: text file with one input per line, for `predict`; blank lines are skipped, and a
                prediction's `id` is its line's number (0-based, counted after any `predict_texts`).
            predict_texts: inputs for `predict`, given in the config.
            predict_split: a split of the source whose reviews `predict` reads (e.g. `unsupervised`, to label
                reviews with a teacher for distillation), in a seeded order.
            limit_predict: predict only this many reviews of `predict_split`.
            num_workers: DataLoader worker processes.
            cache_dir: where tokenized splits are cached.
            seed: seed of the validation split (and, unless `sample_seed` is set, of the training order).
            sample_seed: seed of the random choices among the training reviews: the training order, the
                `limit_train` reviews (a seeded sample instead of the first), the order `predict_split` is read
                in. A study sets it to each run's seed, so that seeds vary every choice; None: `seed`.
        """
        super().__init__()
        self.save_hyperparameters()
        check_ranges("data", *[(name, self.hparams[name], self.hparams[name] is None or self.hparams[name] >= low,
                                 f"{low} or more") for name, low in (
            ("batch_size", 1), ("eval_batch_size", 1), ("num_workers", 0), ("limit_train", 1), ("limit_val", 1),
            ("limit_test", 1), ("limit_predict", 1))])
        if not val_size > 0:
            raise UserError(f"data.val_size is {val_size}: the fit validates on these reviews held out of train; fix: "
                            "a fraction below 1 (--data.val_size 0.1) or a number of reviews (--data.val_size 2500)")
        self.source = source or default_source()
        self.eval_batch_size = eval_batch_size or 2 * batch_size
        self.splits: dict[str, datasets.Dataset] = {}
        self._train_loader: ResumableLoader | None = None
        self._resume: dict | None = None  # the training loader's position, from a checkpoint

    # ---- what a task defines ----

    report_texts = False  # whether evaluation batches carry each review's original text (for reports of mistakes)

    def cache_settings(self) -> list:
        """The task's tokenization settings: part of the cache key."""
        raise NotImplementedError

    def tokenize_batch(self, batch: dict) -> dict:
        """A `datasets.map` function: `text` (and `label`) in, `input_ids` and `length` out."""
        raise NotImplementedError

    def window(self) -> tuple[str, int]:
        """The option that bounds an example's length in tokens, and its value."""
        raise NotImplementedError

    def check_window(self) -> None:
        """A `UserError` when an example could be longer than the model reads: its position embeddings end there, and
        the forward would fail on the first long review, deep in the model."""
        option, length = self.window()
        check_ranges("", (option, length, length >= 8, "8 or more"))  # below, little of a review is left
        limit = self.tokenizer.model_max_length
        if limit < 1_000_000 and length > limit:  # tokenizers that know no limit give 1e30
            raise UserError(f"{option} is {length}, longer than the {limit} tokens {self.hparams.tokenizer!r} reads "
                            f"(its tokenizer's model_max_length); fix: --{option} {limit} or less")

    def train_set(self, train: datasets.Dataset, tokenized: dict[str, datasets.Dataset]) -> datasets.Dataset:
        """The training examples, from the tokenized training reviews left after the validation split."""
        if self.hparams.sample_seed is not None and self.hparams.limit_train is not None:
            train = train.shuffle(seed=self.hparams.sample_seed)  # a seeded sample, not always the same first rows
        return take(train, self.hparams.limit_train)

    @property
    def order_seed(self) -> int:
        """The seed of the training order and of the other choices among training reviews (`sample_seed`)."""
        return self.hparams.seed if self.hparams.sample_seed is None else self.hparams.sample_seed

    def eval_set(self, reviews: datasets.Dataset) -> datasets.Dataset:
        """Validation or test examples from tokenized reviews."""
        return reviews

    def predict_ids(self, texts: list[str]) -> list[list[int]]:
        """Token ids of `predict`'s inputs."""
        raise NotImplementedError

    def check_labels(self, ds: datasets.Dataset, split: str) -> None:
        """Raise a `UserError` when a labelled split's labels do not fit the task."""

    def extra_fit_splits(self) -> list[str]:
        """Splits besides `train` that fit reads (e.g. `unsupervised` text)."""
        return []

    def train_collator(self):
        return Collator(self.tokenizer)

    # ---- where training stands, saved in every checkpoint ----
    # Lightning restores a stateful training loader only when it builds the loader after restoring the loops, but
    # `trainer.estimated_stepping_batches` (the schedule's length) builds it earlier. The data module is restored
    # before either, so it carries the loader's position (tests/test_resume.py kills a fit and checks the batches).

    def state_dict(self) -> dict:
        return self._train_loader.state_dict() if self._train_loader is not None else {}

    def load_state_dict(self, state_dict: dict) -> None:
        self._resume = state_dict or None

    # ---- shared ----

    @property
    def tokenizer(self):
        return load_tokenizer(self.hparams.tokenizer)

    def _needed(self, stage: str | None) -> list[str]:
        if stage == "predict":
            return []
        if stage == "test" and self.hparams.test_split != "validation":
            return [self.hparams.test_split]
        return ["train", *self.extra_fit_splits()] if stage in ("fit", None) else ["train"]

    def _cache_path(self, fingerprint: str, split: str) -> Path:
        tok = self.tokenizer
        # The vocabulary and special tokens identify a tokenizer (its serialized state also holds
        # the last call's truncation settings, so it is not stable).
        vocab = json.dumps([type(tok).__name__, sorted(tok.get_vocab().items()), tok.all_special_tokens])
        key = json.dumps([CACHE_VERSION, fingerprint, split, hashlib.sha256(vocab.encode()).hexdigest(),
                          self.cache_settings()])
        digest = hashlib.sha256(key.encode()).hexdigest()[:16]
        return Path(self.hparams.cache_dir) / "tokenized" / f"{split}-{digest}"

    def prepare_data(self) -> None:
        # Lightning calls this on one process per node before `setup`: tokenize and cache there.
        self.check_window()  # before the tokenizing, which an example too long for the model would waste
        stage = self.trainer.state.fn if self.trainer is not None else None
        self._load_tokenized(self._needed(stage), write=True)

    def _load_tokenized(self, splits: list[str], write: bool = False) -> dict[str, datasets.Dataset]:
        if not splits:
            return {}
        raw, fingerprint = load_source(self.source)
        out = {}
        for split in splits:
            if split not in raw:
                other = "data.use_unsupervised false" if split == "unsupervised" else "data.test_split validation"
                raise UserError(
                    f"data source {self.source!r} has no {split!r} split (it has: {', '.join(raw)}); "
                    f"fix: point data.source at a source with it, or set {other}"
                )
            path = self._cache_path(fingerprint, split)
            made = False
            if not path.exists() and write:
                path.parent.mkdir(parents=True, exist_ok=True)
                # Runs of a study spread over workers may need the same split at once: one tokenizes, the others wait.
                with FileLock(path.parent / f".{path.name}.lock"):
                    if made := not path.exists():
                        self._tokenize(raw[split], split, path)
            if not path.exists():
                raise RuntimeError(f"tokenized cache {path} missing: prepare_data did not run")
            start = time.perf_counter()
            out[split] = datasets.load_from_disk(str(path))
            if write and not made:
                rank_zero_info(f"reused tokenized {split} from {path} ({time.perf_counter() - start:.2f}s)")
        return out

    def _tokenize(self, raw: datasets.Dataset, split: str, path: Path) -> None:
        ds = self._check(raw, split)
        start = time.perf_counter()
        ds = ds.map(self.tokenize_batch, batched=True, remove_columns=[c for c in ds.column_names if c != "label"],
                    desc=f"tokenizing {split}")
        tmp = path.with_name(path.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        ds.save_to_disk(str(tmp))
        os.replace(tmp, path)  # atomic: a crashed run never leaves a half-written cache
        rank_zero_info(f"tokenized {split} ({len(ds)} reviews) in {time.perf_counter() - start:.1f}s -> {path}")

    def _check(self, ds: datasets.Dataset, split: str) -> datasets.Dataset:
        if len(ds) == 0:
            raise UserError(f"split {split!r} of {self.source!r} is empty; fix: give it reviews, or point data.source "
                            "at another source")
        missing = {"text", "label"} - set(ds.column_names)
        if missing:
            raise UserError(
                f"split {split!r} of {self.source!r} lacks column(s) {sorted(missing)} (it has {ds.column_names}); "
                "fix: provide a 'text' column with the review and a 'label' column with the class id"
            )
        if split != "unsupervised":
            self.check_labels(ds, split)
        return ds

    def setup(self, stage: str | None = None) -> None:
        hp = self.hparams
        if stage == "predict":
            self.splits["predict"] = self._predict_dataset()
            return
        tokenized = self._load_tokenized(self._needed(stage))
        # Where the task reports reviews, their original text rides beside the evaluated ones: tokenized rows keep
        # the raw split's order, so the same split and choice of rows apply to both.
        raw = load_source(self.source)[0] if self.report_texts and tokenized else None
        if "train" in tokenized:
            parts = held_out_split(tokenized["train"], hp.val_size, hp.seed)
            raw_held_out = held_out_split(raw["train"], hp.val_size, hp.seed)["test"] if raw is not None else None
            if stage in ("fit", None):  # validate/test: building the training set would be wasted work
                self.splits["train"] = self.train_set(parts["train"], tokenized)
                if not len(self.splits["train"]):  # else a fit of no steps, exported as if trained
                    raise UserError("the training set is empty (the data's limits, label budget or label filter leave "
                                    "no review); fix: raise data.limit_train or data.label_budget, or add soft labels")
            self.splits["validation"] = self._evaluated(parts["test"], raw_held_out, lambda s: take(s, hp.limit_val))
            if stage == "test" and hp.test_split == "validation":
                self.splits["test"] = self._evaluated(parts["test"], raw_held_out, lambda s: take(s, hp.limit_test))
        if stage == "test" and hp.test_split != "validation":
            self.splits["test"] = self._evaluated(tokenized[hp.test_split], raw[hp.test_split] if raw else None,
                                                  lambda s: take_balanced(s, hp.limit_test, hp.seed, "test"))

    def _evaluated(self, reviews: datasets.Dataset, raw: datasets.Dataset | None, pick) -> datasets.Dataset:
        """The evaluated reviews `pick` chooses, with their original text beside them where `raw` (the same rows,
        untokenized) is given."""
        chosen = pick(reviews)
        if raw is not None:
            chosen = chosen.add_column("text", pick(raw)["text"])
        return self.eval_set(chosen)

    def _predict_dataset(self) -> datasets.Dataset:
        hp = self.hparams
        texts = list(hp.predict_texts or [])
        idx = list(range(len(texts)))
        if hp.predict_file:
            path = Path(hp.predict_file)
            if not path.is_file():
                raise UserError(f"predict file {hp.predict_file!r} does not exist: fix data.predict_file")
            # Lines end at "\n" only: splitlines would also cut a review at U+2028 or U+0085 inside it.
            lines = [(n, line.rstrip("\r")) for n, line in enumerate(read_utf8(path).split("\n")) if line.strip()]
            if not lines:
                raise UserError(f"predict file {hp.predict_file!r} holds no text (empty or blank lines only); fix: "
                                "write one input per line")
            # Blank lines are skipped, and a row's id stays its line's number (0-based, after any predict_texts).
            idx += [len(texts) + n for n, _ in lines]
            texts += [line for _, line in lines]
        if hp.predict_split:
            raw, _ = load_source(self.source)
            if hp.predict_split not in raw:
                raise UserError(f"data source {self.source!r} has no {hp.predict_split!r} split (it has: "
                                f"{', '.join(raw)}); fix: set data.predict_split to one of them")
            split = take(raw[hp.predict_split].shuffle(seed=self.order_seed), hp.limit_predict)["text"]
            start = idx[-1] + 1 if idx else 0
            idx += range(start, start + len(split))
            texts += split
        if not texts:
            raise UserError("nothing to predict: set data.predict_file (one input per line), data.predict_texts or "
                            "data.predict_split")
        ids = self.predict_ids(texts)
        lengths = [len(x) for x in ids]
        return datasets.Dataset.from_dict({"input_ids": ids, "length": lengths, "idx": idx, "text": texts})

    def train_dataloader(self) -> DataLoader:
        ds, trainer = self.splits["train"], self.trainer
        sampler = LengthGroupedSampler(ds["length"], self.hparams.batch_size, seed=self.order_seed,
                                       num_replicas=trainer.world_size if trainer else 1,
                                       rank=trainer.global_rank if trainer else 0)
        self._train_loader = ResumableLoader(ds.remove_columns("length"), batch_size=self.hparams.batch_size,
                                             sampler=sampler, collate_fn=self.train_collator(),
                                             **self._loader_options())
        if self._resume is not None:
            self._train_loader.load_state_dict(self._resume)
            self._resume = None
        return self._train_loader

    def val_dataloader(self) -> DataLoader:
        return self._eval_loader(self.splits["validation"])

    def test_dataloader(self) -> DataLoader:
        return self._eval_loader(self.splits["test"])

    def predict_dataloader(self) -> DataLoader:
        return self._eval_loader(self.splits["predict"], Collator(self.tokenizer, self.padding_side))

    def _eval_loader(self, ds: datasets.Dataset, collate_fn=None) -> DataLoader:
        # Longest first: similar lengths per batch, and memory peaks at the start.
        lengths = ds["length"][:]  # a list: item lookups in the lazy column cost 0.1 ms each
        ds = ds.select(sorted(range(len(ds)), key=lambda i: -lengths[i])).remove_columns("length")
        return DataLoader(ds, batch_size=self.eval_batch_size, collate_fn=collate_fn or Collator(self.tokenizer),
                          **self._loader_options())

    def _loader_options(self) -> dict:
        n = self.hparams.num_workers
        # Pinned batches on a GPU: Lightning copies them with non_blocking=True, and a copy from pageable memory
        # makes the host wait for every kernel queued (a host sync per tensor per step); the Trainer pins by default.
        pin = self.trainer is not None and self.trainer.strategy.root_device.type == "cuda"
        return {"num_workers": n, "persistent_workers": n > 0, "pin_memory": pin}


def held_out_split(reviews: datasets.Dataset, val_size: float, seed: int) -> datasets.DatasetDict:
    """The seeded split of the training reviews: `train`, and the held-out `test` part the data modules validate on.
    Rows keep their order through tokenization, so raw and tokenized reviews split alike (the study and the
    benchmarks draw their evaluation reviews this way)."""
    n_val = int(val_size if val_size >= 1 else math.ceil(val_size * len(reviews)))
    if n_val >= len(reviews):
        raise UserError(f"data.val_size is {val_size}: {n_val} held out of {len(reviews)} training reviews leaves none "
                        "to train on; fix: a fraction (--data.val_size 0.1) or fewer reviews")
    return reviews.train_test_split(test_size=n_val, seed=seed)


def take(ds: datasets.Dataset, n: int | None) -> datasets.Dataset:
    """The first `n` rows (all for None): only for a split already in a seeded random order."""
    return ds.select(range(min(n, len(ds)))) if n is not None else ds


def balanced_sample(labels: list[int], n: int, num_labels: int, seed: int) -> list[int]:
    """Sorted indices of a seeded sample of `n` rows, `n // num_labels` of each class (one more for the first
    `n % num_labels` classes)."""
    rng = random.Random(seed)
    chosen = []
    for c in range(num_labels):
        rows = [i for i, y in enumerate(labels) if y == c]
        want = n // num_labels + (c < n % num_labels)
        if want > len(rows):
            raise UserError(f"a class-balanced sample of {n} needs {want} reviews of class {c}, there are "
                            f"{len(rows)}; fix: lower the number (data.label_budget, eval_size, k)")
        chosen += rng.sample(rows, want)
    return sorted(chosen)


def take_balanced(ds: datasets.Dataset, n: int | None, seed: int, split: str) -> datasets.Dataset:
    """A seeded, class-balanced sample of `n` rows (all for None), in the split's order: a split as published is
    often sorted by label (IMDB's test split: 6,250 negative reviews first), so its first `n` rows would be of one
    class."""
    if n is None or n >= len(ds):
        return ds
    labels = ds["label"]
    classes = len(set(labels))
    try:
        return ds.select(balanced_sample(labels, n, classes, seed))
    except UserError:
        each = -(-n // classes)
        raise UserError(f"data.limit_{split} {n}: a class-balanced sample of the {split} split needs {each} reviews "
                        f"of each of its {classes} classes, and one class has fewer; fix: a smaller "
                        f"--data.limit_{split}") from None
