"""What reproduces a run: the commit (and whether the tree was dirty), the package versions, and a hash of every
file the run read beyond the source code (configs, a teacher's predictions, an export folder, the data source).

To run: python -c "from src.studies.provenance import environment; print(environment())"
"""

import functools
import importlib.metadata
import json
import subprocess
from pathlib import Path

from src.hardware import cpu_kind
from src.hashing import hash_path

PACKAGES = ("torch", "transformers", "lightning", "datasets", "torchmetrics")


@functools.cache
def hash_source(source: str) -> str:
    """The data source's hash: its files' bytes for a local folder, else the hub id itself (the hub versions it)."""
    return hash_path(source) if Path(source).is_dir() else source


def inputs(args: list[str]) -> dict[str, str]:
    """A hash of every existing file or folder named in a run's arguments (its configs, a teacher's predictions,
    the export a model starts from), by the path as given; an argument that is a JSON list (an ensemble teacher's
    predictions) names each of its strings."""
    return {a: hash_path(a) for a in dict.fromkeys(p for arg in args for p in _named(arg)) if _is_path(a)}


def _named(arg: str) -> list[str]:
    if arg.startswith("["):
        try:
            value = json.loads(arg)
        except ValueError:
            return [arg]
        return [v for v in value if isinstance(v, str)] if isinstance(value, list) else [arg]
    return [arg]


def _is_path(arg: str) -> bool:
    return "/" in arg and not arg.startswith("-") and "\n" not in arg and len(arg) < 500 and Path(arg).exists()


@functools.cache
def environment() -> dict:
    """The commit, whether the tracked tree differed from it, the versions of the packages that compute a run, and the
    CPU kind (AVX2, AVX512-BF16, AMX: a pair of rows that ran on different kinds compares more than its approaches)."""
    def git(*args: str) -> str:
        try:
            return subprocess.run(["git", *args], capture_output=True, text=True, timeout=30).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return ""

    dirty = bool(git("status", "--porcelain", "--untracked-files=no"))
    return {"commit": git("rev-parse", "HEAD") or None, "dirty": dirty,
            "versions": {p: importlib.metadata.version(p) for p in PACKAGES}, "cpu": cpu_kind()}
