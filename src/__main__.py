"""`python -m src <command>`: one entry table for every command, one error exit (a `UserError` is one line, exit 2).

To run: python -m src fit --config configs/bert_imdb.yaml
        python -m src serve outputs/bert_imdb/version_0   (HTTP, see src/serve.py)
        python -m src --help
"""

import sys


def _cli(argv: list[str]) -> None:
    from src.cli import main

    main(None if argv == sys.argv[1:] else argv)  # None: LightningCLI reads the command line itself


def _serve(argv: list[str]) -> None:
    from src.serve import main

    main(argv)


def _study(argv: list[str]) -> None:
    from src.studies.main import study

    study(argv)


def _prompts(argv: list[str]) -> None:
    from src.studies.main import prompt_grid

    prompt_grid(argv)


# name -> (what it does, its entry): the LightningCLI subcommands, then the project's own commands
COMMANDS = {
    "fit": ("train a recipe (classifier, masked LM, causal LM) or fit a zero-shot calibration", _cli),
    "validate": ("evaluate a checkpoint on the validation split", _cli),
    "test": ("evaluate a checkpoint on the test split", _cli),
    "predict": ("classify reviews, fill masks or generate text", _cli),
    "serve": ("a trained run, checkpoint or export behind HTTP", _serve),
    "study": ("run or report a study (approaches x label budgets x seeds)", _study),
    "prompts": ("run or report the prompt grid, and choose the recipe's prompt", _prompts),
}


def usage() -> str:
    width = max(map(len, COMMANDS))
    rows = "\n".join(f"  {name:<{width}}  {what}" for name, (what, _) in COMMANDS.items())
    return ("usage: python -m src <command> [options]\n\nFine-tune, pretrain and prompt transformers on IMDB movie "
            f"reviews with PyTorch Lightning.\n\ncommands:\n{rows}\n\nA command's options: python -m src <command> "
            "--help. Example: python -m src fit --config configs/bert_imdb.yaml")


def main(argv: list[str] | None = None) -> None:
    from src.errors import UserError

    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help"):
        print(usage(), file=sys.stdout if argv else sys.stderr)
        sys.exit(0 if argv else 2)
    if argv[0] not in COMMANDS:
        print(f"error: unknown command {argv[0]!r}; fix: one of {', '.join(COMMANDS)} (python -m src --help)",
              file=sys.stderr)
        sys.exit(2)
    _, entry = COMMANDS[argv[0]]
    try:
        entry(argv if entry is _cli else argv[1:])
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
