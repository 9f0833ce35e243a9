"""`python -m src <command>`: the one place that turns errors into exit codes (a `UserError` is one line, exit 2);
the commands themselves are in src/commands.py.

To run: python -m src fit --config configs/bert_imdb.yaml
        python -m src serve outputs/bert_imdb/version_0   (HTTP, see src/serve.py)
        python -m src --help
"""

import sys


def main(argv: list[str] | None = None) -> None:
    from src.commands import run
    from src.errors import UserError

    try:
        run(sys.argv[1:] if argv is None else argv)
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(err.exit_code)


if __name__ == "__main__":
    main()
