"""Content hashes of files and folders, and of evaluation reviews: what keys a cache (a converted GGUF file), what a
study row records of the files a run read and of the reviews it was scored on.

To run: python -c "from src.hashing import hash_path; print(hash_path('configs/bert_imdb.yaml'))"
"""

import hashlib
import json
from pathlib import Path


def hash_path(path: str | Path) -> str:
    """sha256 (16 hex digits) of a file's bytes, or of a folder's files (their relative names and bytes)."""
    path = Path(path)
    digest = hashlib.sha256()
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    for f in files:
        digest.update(str(f.relative_to(path) if f != path else f.name).encode())
        with open(f, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()[:16]


def texts_hash(texts: list[str], labels: list[int]) -> str:
    """The evaluation reviews' hash: their texts and labels, in order."""
    return hashlib.sha256(json.dumps([texts, labels]).encode()).hexdigest()[:16]
