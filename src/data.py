"""IMDB reviews as a LightningDataModule: load, split, tokenize once (cached on disk), batch.

Tasks: `classification` (labelled reviews, optionally inside a prompt template for zero-shot
scoring by a causal LM), `causal_lm` (review text packed into fixed-size blocks) and `masked_lm`
(packed blocks, masked by `DataCollatorForLanguageModeling`: fresh masks for every training batch,
one fixed set of masks for evaluation so that perplexities compare across runs).

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
from lightning.pytorch.utilities import rank_zero_info
from torch.utils.data import DataLoader, DistributedSampler
from transformers import DataCollatorForLanguageModeling

from src.errors import UserError
from src.pretrained import load_tokenizer

PROJECT_ROOT = Path(__file__).resolve().parents[1]
LOCAL_MIRROR = PROJECT_ROOT.parent / "shared" / "data" / "imdb"
HUB_ID = "stanfordnlp/imdb"
SPLITS = ("train", "test", "unsupervised")
FORMATS = {".parquet": "parquet", ".csv": "csv", ".jsonl": "json", ".json": "json"}
CACHE_VERSION = 1  # bump when tokenization changes, so stale caches are not reused


def default_source() -> str:
    """The shared offline mirror when it exists, else the hub id."""
    return str(LOCAL_MIRROR) if LOCAL_MIRROR.is_dir() else HUB_ID


def clean(text: str | None) -> str:
    """IMDB reviews carry HTML line breaks; a missing review is an empty one."""
    return (text or "").replace("<br />", " ").replace("<br/>", " ")


def read_utf8(path: Path) -> str:
    data = path.read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data[: err.start].count(b"\n") + 1
        raise _not_utf8(path, err, f" on line {line}") from None


def _not_utf8(path: Path, err: UnicodeDecodeError, where: str = "") -> UserError:
    return UserError(
        f"{path} is not valid UTF-8 ({err.reason}{where}); "
        f"fix: re-encode it, e.g. iconv -f latin1 -t utf-8 {path.name} > fixed-{path.name}"
    )


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
        dd = datasets.DatasetDict({s: _load_file(f) for s, f in files.items()})
        return dd, _fingerprint_files(path, "*.*")
    looks_like_path = source.startswith((".", "/", "~")) or source.count("/") > 1 or path.suffix in FORMATS
    if looks_like_path:
        raise UserError(
            f"data source {source!r} does not exist: fix data.source (a folder, or a hub id such as {HUB_ID})"
        )
    try:
        return datasets.load_dataset(source), source
    except Exception as err:  # the hub raises many types: connection, not found, offline
        raise UserError(
            f"cannot load data source {source!r} from the Hugging Face Hub ({type(err).__name__}: "
            f"{str(err).splitlines()[0] if str(err) else ''}); fix: set data.source to a local folder "
            f"such as {LOCAL_MIRROR}"
        ) from None


def _load_file(path: Path) -> datasets.Dataset:
    try:
        return datasets.load_dataset(FORMATS[path.suffix], data_files=str(path), split="train")
    except Exception as err:  # datasets wraps the reader's error
        cause = err
        while cause is not None and not isinstance(cause, UnicodeDecodeError):
            cause = cause.__cause__ or cause.__context__
        if cause is not None:
            raise _not_utf8(path, cause) from None
        if "corresponds to no data" in str(err):
            raise UserError(f"split file {path} holds no reviews; fix: fill it, or remove it from the folder") from None
        raise UserError(f"cannot read {path} as {FORMATS[path.suffix]} ({type(err).__name__}: "
                        f"{str(err).splitlines()[0] if str(err) else ''}); fix: repair or replace the file") from None


def _load_aclimdb(root: Path) -> datasets.DatasetDict:
    splits = {}
    for split, folders in (("train", ("neg", "pos")), ("test", ("neg", "pos")), ("unsupervised", ("unsup",))):
        parent = root / ("train" if split == "unsupervised" else split)
        rows = {"text": [], "label": []}
        for label, folder in enumerate(folders):
            for f in sorted((parent / folder).glob("*.txt"), key=lambda p: p.name):
                rows["text"].append(read_utf8(f))
                rows["label"].append(-1 if folder == "unsup" else label)
        if rows["text"]:
            splits[split] = datasets.Dataset.from_dict(rows)
    return datasets.DatasetDict(splits)


def _fingerprint_files(root: Path, pattern: str) -> str:
    stats = [(str(f.relative_to(root)), f.stat().st_size, f.stat().st_mtime_ns) for f in sorted(root.glob(pattern))]
    return f"{root.resolve()}:{hashlib.sha256(json.dumps(stats).encode()).hexdigest()[:16]}"


def tokenize(
    texts: list[str], tokenizer, max_length: int, truncation: str, template: str | None = None
) -> list[list[int]]:
    """Token ids with special tokens, at most `max_length` long.

    `head` keeps the start of a long review; `head_tail` keeps its first quarter and last three
    quarters of the budget (Sun et al. 2019: the end of a review carries much of its verdict).
    With a `template` ("Review: {text}\\nOverall, the movie was", for causal LMs) only the review is
    truncated, so the prompt's end, where the answer follows, is always kept.
    """
    texts = [clean(t) for t in texts]
    if template is not None:
        prefix, suffix = template.split("{text}")
        head_ids = tokenizer(prefix)["input_ids"] if prefix else []
        tail_ids = tokenizer(suffix, add_special_tokens=False)["input_ids"] if suffix else []
        budget = max_length - len(head_ids) - len(tail_ids)
        body = tokenizer(texts, add_special_tokens=False, verbose=False)["input_ids"]
        return [head_ids + _cut(ids, budget, truncation) + tail_ids for ids in body]
    if truncation == "head":
        return tokenizer(texts, truncation=True, max_length=max_length)["input_ids"]
    # Special tokens sit at both ends, so a head+tail cut keeps them.
    return [_cut(ids, max_length, truncation) for ids in tokenizer(texts, verbose=False)["input_ids"]]


def _cut(ids: list[int], budget: int, truncation: str) -> list[int]:
    if len(ids) <= budget:
        return ids
    if truncation == "head":
        return ids[:budget]
    head = budget // 4
    return ids[:head] + ids[len(ids) - (budget - head) :]


def pack(ds: datasets.Dataset, block_size: int) -> datasets.Dataset:
    """Concatenate tokenized reviews and cut them into `block_size` blocks: no padding (HF `group_texts`).

    Per-token columns (`input_ids`, and `offset_mapping` for whole-word masking) are packed alike.
    """
    columns = [c for c in ("input_ids", "offset_mapping") if c in ds.column_names]

    def group(batch: dict) -> dict:
        out = {}
        for column in columns:
            flat = [t for ids in batch[column] for t in ids]
            n = len(flat) // block_size * block_size
            out[column] = [flat[i : i + block_size] for i in range(0, n, block_size)]
        out["length"] = [block_size] * len(out["input_ids"])
        return out

    return ds.map(group, batched=True, batch_size=2000, remove_columns=ds.column_names, desc="packing blocks")


class LengthGroupedSampler(DistributedSampler):
    """Shuffled indices in which neighbours have similar lengths, so padded batches waste little.

    Indices are shuffled, cut into mega-batches of `mega_batch` global batches, each sorted by length
    (longest first), and the global batches are shuffled again: random batches, little padding.
    A global batch holds `batch_size` reviews per process; process `rank` of `num_replicas` takes its
    slice of every global batch, so a DDP run sees the batches a single process would see with
    `num_replicas` times the batch size (the last global batch is padded with repeats, as
    DistributedSampler does, so that all processes take the same number of steps).
    The order depends only on the seed and the epoch, so `skip_batches` resumes an epoch mid-way.
    """

    # A DistributedSampler subclass only so that Lightning does not wrap it in another: it shards itself.
    def __init__(self, lengths: list[int], batch_size: int, seed: int, mega_batch: int = 50, num_replicas: int = 1,
                 rank: int = 0):
        self.lengths, self.batch_size, self.seed, self.mega_batch = lengths, batch_size, seed, mega_batch
        self.num_replicas, self.rank = num_replicas, rank
        self.epoch = 0
        self.resume: tuple[int, int] | None = None  # (epoch, batches already done in it)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def skip_batches(self, epoch: int, batches: int) -> None:
        """Start epoch `epoch` after its first `batches` batches (once: later epochs start from the top)."""
        self.resume = (epoch, batches)

    def _order(self) -> list[int]:
        rng = random.Random(self.seed + self.epoch)
        order = list(range(len(self.lengths)))
        rng.shuffle(order)
        size = self.batch_size * self.num_replicas
        batches = []
        for start in range(0, len(order), size * self.mega_batch):
            mega = sorted(order[start : start + size * self.mega_batch], key=lambda i: -self.lengths[i])
            batches += [mega[i : i + size] for i in range(0, len(mega), size)]
        rng.shuffle(batches)
        # The one short batch goes last: the DataLoader cuts the flat order into consecutive chunks,
        # which then match these batches. Several processes pad it with repeats, to equal step counts.
        batches.sort(key=lambda batch: len(batch) < size)
        if self.num_replicas > 1 and len(batches[-1]) < size:
            batches[-1] = batches[-1] + order[: size - len(batches[-1])]
        return [i for batch in batches for i in batch[self.rank * self.batch_size : (self.rank + 1) * self.batch_size]]

    def __len__(self) -> int:
        if self.num_replicas == 1:
            return len(self.lengths)
        return math.ceil(len(self.lengths) / (self.batch_size * self.num_replicas)) * self.batch_size

    def __iter__(self) -> Iterator[int]:
        order = self._order()
        if self.resume is not None:
            epoch, done = self.resume
            self.resume = None
            if epoch == self.epoch:
                order = order[done * self.batch_size :]
        return iter(order)


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


class IMDBDataModule(L.LightningDataModule):
    """IMDB movie reviews: labelled reviews for classification, or review text for language modelling."""

    def __init__(
        self,
        tokenizer: str = "sentence-transformers/all-MiniLM-L6-v2",
        task: Literal["classification", "causal_lm", "masked_lm"] = "classification",
        source: str | None = None,
        max_length: int = 256,
        truncation: Literal["head", "head_tail"] = "head_tail",
        prompt_template: str | None = None,
        block_size: int = 256,
        use_unsupervised: bool = True,
        mlm_probability: float = 0.15,
        whole_word_mask: bool = False,
        only_label: int | None = None,
        label_prefixes: list[str] | None = None,
        chat_template: bool = False,
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
            task: `classification` (labelled reviews), `causal_lm` (review text packed into blocks;
                `predict` then reads prompts) or `masked_lm` (packed blocks with masked tokens;
                `predict` then fills the mask tokens of its texts).
            source: hub id, folder of split files, or aclImdb/ folder; None: the shared mirror
                `../shared/data/imdb` when it exists, else `stanfordnlp/imdb`.
            max_length: longest tokenized review, special tokens and prompt included.
            truncation: `head` keeps the start of long reviews; `head_tail` their start and end.
            prompt_template: classification with a causal LM: each review is put in this template at
                `{text}`, e.g. "Review: {text}\\nOverall, the movie was".
            block_size: causal_lm, masked_lm: tokens per block.
            use_unsupervised: causal_lm, masked_lm: also train on the unsupervised split.
            mlm_probability: masked_lm: fraction of tokens chosen for prediction; of those 80% become
                the mask token, 10% a random token, 10% stay (BERT's recipe).
            whole_word_mask: masked_lm: choose whole words, all their word pieces together (then
                every chosen token becomes the mask token: transformers' collator allows no random ones).
            only_label: causal_lm: train only on reviews with this label (e.g. 1: positive ones).
            label_prefixes: causal_lm: text put before each labelled review, by label, for generation
                conditioned on sentiment, e.g. ["Negative review: ", "Positive review: "].
            chat_template: causal_lm predict: wrap each prompt in the tokenizer's chat template.
            batch_size: reviews (or blocks) per training batch, per device.
            eval_batch_size: reviews per evaluation batch; None: twice `batch_size`.
            val_size: validation split held out of train: a fraction (< 1) or a number of reviews.
            num_labels: number of classes; labels must lie in 0..num_labels-1.
            test_split: the split `test` evaluates; `validation` for sources without a test split.
            limit_train: use only this many training reviews (after shuffling), for quick runs.
            limit_val: use only this many validation reviews.
            limit_test: use only this many test reviews.
            predict_file: text file with one review (or prompt) per line, for `predict`.
            predict_texts: reviews (or prompts) for `predict`, given in the config.
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
        self._resume: tuple[int, int] | None = None

    # ---- where training stands, saved in every checkpoint (Lightning calls these) ----

    def state_dict(self) -> dict:
        """The epoch and the batches of it already trained, so that a resumed run continues with the next
        batch instead of replaying the epoch (the training order depends only on the seed and the epoch)."""
        trainer = self.trainer
        if trainer is None or trainer.state.fn != "fit":
            return {}
        epoch, done = trainer.current_epoch, trainer.fit_loop.epoch_loop.batch_progress.current.processed
        if done >= trainer.num_training_batches:  # saved at the epoch's end: resume at the next one
            epoch, done = epoch + 1, 0
        return {"epoch": epoch, "batches_done": done}

    def load_state_dict(self, state_dict: dict) -> None:
        if state_dict:
            self._resume = (state_dict["epoch"], state_dict["batches_done"])

    @property
    def tokenizer(self):
        if self._tokenizer is None:
            self._tokenizer = load_tokenizer(self.hparams.tokenizer)
        return self._tokenizer

    # ---- tokenize once, on one process per node (Lightning calls prepare_data before setup) ----

    def _needed(self, stage: str | None) -> list[str]:
        if stage == "predict":
            return []
        if stage == "test" and self.hparams.test_split != "validation":
            return [self.hparams.test_split]
        lm_extra = ["unsupervised"] if self.hparams.task != "classification" and self.hparams.use_unsupervised else []
        return ["train", *lm_extra] if stage == "fit" or stage is None else ["train"]

    def _cache_path(self, fingerprint: str, split: str) -> Path:
        tok, hp = self.tokenizer, self.hparams
        # The vocabulary and special tokens identify a tokenizer (its serialized state also holds
        # the last call's truncation settings, so it is not stable).
        vocab = json.dumps([type(tok).__name__, sorted(tok.get_vocab().items()), tok.all_special_tokens])
        settings = {
            "classification": [hp.task, hp.max_length, hp.truncation, hp.prompt_template],
            "causal_lm": [hp.task, hp.label_prefixes],
            "masked_lm": [hp.task, hp.whole_word_mask],
        }[hp.task]
        key = json.dumps([CACHE_VERSION, fingerprint, split, hashlib.sha256(vocab.encode()).hexdigest(), settings])
        digest = hashlib.sha256(key.encode()).hexdigest()[:16]
        return Path(hp.cache_dir) / "tokenized" / f"{split}-{digest}"

    def prepare_data(self) -> None:
        stage = self.trainer.state.fn if self.trainer is not None else None
        self._load_tokenized(self._needed(stage), write=True)

    def _tokenize_batch(self, batch: dict) -> dict:
        hp, tok = self.hparams, self.tokenizer
        if hp.task == "classification":
            ids = tokenize(batch["text"], tok, hp.max_length, hp.truncation, hp.prompt_template)
        elif hp.task == "masked_lm":  # whole reviews, each as [CLS] review [SEP], to be packed (HF run_mlm)
            enc = tok([clean(t) for t in batch["text"]], return_offsets_mapping=hp.whole_word_mask, verbose=False)
            out = {"input_ids": enc["input_ids"], "length": [len(x) for x in enc["input_ids"]]}
            if hp.whole_word_mask:  # where each token starts and ends: pieces of one word touch
                out["offset_mapping"] = enc["offset_mapping"]
            return out
        else:  # whole reviews, each ended by EOS, to be packed into blocks
            texts = [clean(t) for t in batch["text"]]
            if hp.label_prefixes:
                texts = [hp.label_prefixes[y] + t if y >= 0 else t for t, y in zip(texts, batch["label"])]
            ids = [x + [tok.eos_token_id] for x in tok(texts, add_special_tokens=False, verbose=False)["input_ids"]]
        return {"input_ids": ids, "length": [len(x) for x in ids]}

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
            ds = ds.map(self._tokenize_batch, batched=True, remove_columns=[c for c in ds.column_names if c != "label"],
                        desc=f"tokenizing {split}")
            tmp = path.with_name(path.name + ".tmp")
            shutil.rmtree(tmp, ignore_errors=True)
            ds.save_to_disk(str(tmp))
            os.replace(tmp, path)  # atomic: a crashed run never leaves a half-written cache
            rank_zero_info(f"tokenized {split} ({len(ds)} reviews) in {time.perf_counter() - start:.1f}s -> {path}")
            out[split] = datasets.load_from_disk(str(path))
        return out

    def _validate(self, ds: datasets.Dataset, split: str) -> datasets.Dataset:
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
            # The same reviews are held out whatever the task, so LM and classifier runs share a validation split.
            n_val = hp.val_size if hp.val_size >= 1 else math.ceil(hp.val_size * len(tokenized["train"]))
            parts = tokenized["train"].train_test_split(test_size=int(n_val), seed=hp.seed)
            train, val = parts["train"], _limit(parts["test"], hp.limit_val)
            if hp.task == "classification":
                self.splits["train"], self.splits["validation"] = _limit(train, hp.limit_train), val
            else:
                if stage in ("fit", None):  # validate/test: packing the training text would be wasted work
                    if "unsupervised" in tokenized:
                        train = datasets.concatenate_datasets([train, tokenized["unsupervised"]]).shuffle(seed=hp.seed)
                    self.splits["train"] = pack(_limit(_filter(train, hp.only_label), hp.limit_train), hp.block_size)
                self.splits["validation"] = self._lm_eval_set(val)
        if stage == "test":
            split = hp.test_split
            if split == "validation":
                self.splits["test"] = _limit(self.splits["validation"], hp.limit_test)
            elif hp.task == "classification":
                self.splits["test"] = _limit(tokenized[split], hp.limit_test)
            else:
                self.splits["test"] = self._lm_eval_set(_limit(tokenized[split], hp.limit_test))

    def _lm_eval_set(self, reviews: datasets.Dataset) -> datasets.Dataset:
        """Packed blocks; for masked_lm also masked, once and seeded, so every evaluation sees the same masks."""
        blocks = pack(_filter(reviews, self.hparams.only_label), self.hparams.block_size)
        if self.hparams.task != "masked_lm":
            return blocks
        collator = self.mlm_collator(seed=self.hparams.seed)
        columns = [c for c in ("input_ids", "offset_mapping") if c in blocks.column_names]

        def mask(batch: dict) -> dict:
            out = collator([dict(zip(columns, values)) for values in zip(*(batch[c] for c in columns))])
            return {"input_ids": out["input_ids"].tolist(), "labels": out["labels"].tolist()}

        # In memory: the cached dataset's folder is left untouched (and unraced by other ranks).
        return blocks.map(mask, batched=True, batch_size=1000, remove_columns=columns[1:], keep_in_memory=True,
                          desc="masking evaluation blocks")

    def mlm_collator(self, seed: int | None = None) -> DataCollatorForLanguageModeling:
        """Pads a batch and masks it: BERT's 80/10/10 replacement, or whole words with the mask token."""
        hp = self.hparams
        replace = {"mask_replace_prob": 1.0, "random_replace_prob": 0.0} if hp.whole_word_mask else {}
        return DataCollatorForLanguageModeling(
            self.tokenizer, mlm_probability=hp.mlm_probability, whole_word_mask=hp.whole_word_mask,
            pad_to_multiple_of=8, seed=seed, **replace,
        )

    def _predict_dataset(self) -> datasets.Dataset:
        hp = self.hparams
        texts = list(hp.predict_texts or [])
        if hp.predict_file:
            path = Path(hp.predict_file)
            if not path.is_file():
                raise UserError(f"predict file {hp.predict_file!r} does not exist: fix data.predict_file")
            texts += [line for line in read_utf8(path).splitlines() if line.strip()]
        if not texts:
            raise UserError("nothing to predict: set data.predict_file (one review per line) or data.predict_texts")
        if hp.task == "causal_lm":
            ids = [self._prompt_ids(t) for t in texts]
        else:
            ids = tokenize(texts, self.tokenizer, hp.max_length, hp.truncation, hp.prompt_template)
        return datasets.Dataset.from_dict(
            {"input_ids": ids, "length": [len(x) for x in ids], "idx": list(range(len(texts))), "text": texts}
        )

    def _prompt_ids(self, prompt: str) -> list[int]:
        tok = self.tokenizer
        if self.hparams.chat_template and tok.chat_template:
            prompt = tok.apply_chat_template([{"role": "user", "content": prompt}], tokenize=False,
                                             add_generation_prompt=True)
            return tok(prompt, add_special_tokens=False)["input_ids"]
        return tok(prompt)["input_ids"]

    def train_dataloader(self) -> DataLoader:
        ds = self.splits["train"]
        trainer = self.trainer
        sampler = LengthGroupedSampler(ds["length"], self.hparams.batch_size, seed=self.hparams.seed,
                                       num_replicas=trainer.world_size if trainer else 1,
                                       rank=trainer.global_rank if trainer else 0)
        if self._resume is not None:  # set by load_state_dict when fit resumes from a checkpoint
            epoch, done = self._resume
            sampler.set_epoch(epoch)  # Lightning makes the first iterator before it restores the epoch
            sampler.skip_batches(epoch, done)
            self._resume = None
        collate = self.mlm_collator() if self.hparams.task == "masked_lm" else None  # fresh masks every batch
        return self._loader(ds, self.hparams.batch_size, sampler=sampler, collate_fn=collate)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.splits["validation"], self.eval_batch_size, by_length=True)

    def test_dataloader(self) -> DataLoader:
        return self._loader(self.splits["test"], self.eval_batch_size, by_length=True)

    def predict_dataloader(self) -> DataLoader:
        side = "left" if self.hparams.task == "causal_lm" else "right"
        return self._loader(self.splits["predict"], self.eval_batch_size, by_length=True, padding_side=side)

    def _loader(self, ds: datasets.Dataset, batch_size: int, sampler=None, by_length: bool = False,
                padding_side: str = "right", collate_fn=None) -> DataLoader:
        if by_length:  # longest first: similar lengths per batch, and memory peaks at the start
            ds = ds.sort("length", reverse=True)
        ds = ds.remove_columns("length")
        return DataLoader(
            ds, batch_size=batch_size, sampler=sampler,
            collate_fn=collate_fn or Collator(self.tokenizer, padding_side),
            num_workers=self.hparams.num_workers, persistent_workers=self.hparams.num_workers > 0,
        )


def _limit(ds: datasets.Dataset, n: int | None) -> datasets.Dataset:
    return ds.select(range(min(n, len(ds)))) if n is not None else ds


def _filter(ds: datasets.Dataset, label: int | None) -> datasets.Dataset:
    return ds.filter(lambda y: y == label, input_columns="label") if label is not None else ds
