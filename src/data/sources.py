"""Where reviews come from: a hub id (`stanfordnlp/imdb`), a folder of split files (`train.parquet`,
`test.csv`, `unsupervised.jsonl`, ...; the shared mirror's layout) or the original `aclImdb/` tree.

Every source becomes a `datasets.DatasetDict` of `text` and `label` columns (-1 for unlabelled reviews),
with a fingerprint that changes when its files change (the tokenized cache is keyed by it).

To run: python -c "from src.data.sources import load_source, default_source; print(load_source(default_source())[0])"
"""

import hashlib
import json
from pathlib import Path

import datasets

from src.errors import UserError, reason
from src.hub import require_hub
from src.precheck import HUB_ID, check_source

PROJECT_ROOT = Path(__file__).resolve().parents[2]
LOCAL_MIRROR = PROJECT_ROOT.parent / "shared" / "data" / "imdb"
SPLITS = ("train", "test", "unsupervised")
FORMATS = {".parquet": "parquet", ".csv": "csv", ".jsonl": "json", ".json": "json"}


def default_source() -> str:
    """The shared offline mirror when it exists, else the hub id."""
    return str(LOCAL_MIRROR) if LOCAL_MIRROR.is_dir() else HUB_ID


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
    check_source(source)  # anything else that names no folder here is a path that does not exist
    require_hub(source, "dataset", "data source", f"set data.source to a local folder such as {LOCAL_MIRROR}")
    try:
        return datasets.load_dataset(source), source
    except Exception as err:  # the hub raises many types: connection, not found, offline
        raise UserError(
            f"cannot load data source {source!r} from the Hugging Face Hub ("
            f"{reason(err)}); fix: set data.source to a local folder such as {LOCAL_MIRROR}"
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
        raise UserError(f"cannot read {path} as {FORMATS[path.suffix]} ({reason(err)}); "
                        "fix: repair or replace the file") from None


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
