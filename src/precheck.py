"""What a `fit`/`validate`/`test`/`predict` command line can be checked for before torch, Lightning and the model are
imported (seconds): a data folder that does not exist. The error then comes alone, in a fraction of a second; the CLI
checks everything else once it has parsed the line.

To run: python -m src fit --config configs/bert_imdb.yaml --data.source /no/such/folder   (one line, exit 2)
"""

from pathlib import Path

import yaml

from src.errors import UserError

HUB_ID = "stanfordnlp/imdb"
FORMATS = (".parquet", ".csv", ".json", ".jsonl")


def looks_like_path(source: str) -> bool:
    """A hub id is `name` or `owner/name`; anything else names a folder or a file."""
    return (source.startswith((".", "/", "~")) or source.endswith(("/", "\\")) or source.count("/") > 1
            or "\\" in source or Path(source).suffix in FORMATS)


def check_source(source: str) -> None:
    """A `UserError` when `source` names a local folder that is not there."""
    if not Path(source).expanduser().is_dir() and looks_like_path(source):
        raise UserError(f"data folder {source!r} not found: fix data.source (a folder, or a hub id such as {HUB_ID})")


def named_source(argv: list[str]) -> str | None:
    """The data source the line names, as the CLI resolves it: its `--config` files in order, then the options after
    them, the last one winning (None: the recipe's default)."""
    source, i = None, 0
    while i < len(argv):
        key, eq, value = argv[i].partition("=")
        if key in ("--config", "--data.source", "--data.init_args.source"):
            if not eq:
                i += 1
                value = argv[i] if i < len(argv) else ""
            if key != "--config":
                source = value
            elif Path(value).is_file():  # a missing config is the CLI's to report
                data = (yaml.safe_load(Path(value).read_text()) or {}).get("data")
                if isinstance(data, dict):
                    args = data.get("init_args") if isinstance(data.get("init_args"), dict) else data
                    source = args.get("source", source)
        i += 1
    return source if isinstance(source, str) and source not in ("null", "None") else None


def check(argv: list[str]) -> None:
    """The checks that need no model: a `UserError` for the first that fails (none for `--help` or `--print_config`,
    which run nothing)."""
    if any(a.split("=")[0] in ("--help", "-h", "--print_config") for a in argv):
        return
    source = named_source(argv)
    if source:
        check_source(source)
