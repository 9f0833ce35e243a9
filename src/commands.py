"""Every command of `python -m src`, in one table, and `run(argv)`, which runs one and raises a `UserError` for bad
input: the entry point (`src/__main__.py`) turns errors into exit codes, and a study runs its prerequisites and runs
in its own process by calling `run` directly (`study run --in_process`).

To run: from src.commands import run; run(["fit", "--config", "configs/bert_imdb.yaml"])
"""

import sys
from collections.abc import Callable

from src.errors import UserError


def _cli(argv: list[str]) -> None:
    from src import precheck

    precheck.check(argv)  # before torch and the model are imported: the error alone, at once
    from src.cli import main

    main(None if argv == sys.argv[1:] else argv)  # None: LightningCLI reads the command line itself (else it warns)


def _serve(argv: list[str]) -> None:
    from src.serve import main

    main(argv)


def _plot(argv: list[str]) -> None:
    from src.plot import main

    main(argv)


def _study(argv: list[str]) -> None:
    from src.studies.main import study

    study(argv)


def _prompts(argv: list[str]) -> None:
    from src.studies.main import prompt_grid

    prompt_grid(argv)


# name -> (what it does, its entry, whether the entry reads the command's name): the LightningCLI subcommands, then
# the project's own commands
COMMANDS: dict[str, tuple[str, Callable[[list[str]], None], bool]] = {
    "fit": ("train a recipe (classifier, masked LM, causal LM) or fit a zero-shot calibration", _cli, True),
    "validate": ("evaluate a checkpoint on the validation split", _cli, True),
    "test": ("evaluate a checkpoint on the test split", _cli, True),
    "predict": ("classify reviews, fill masks or generate text", _cli, True),
    "serve": ("a trained run, checkpoint or export behind HTTP", _serve, False),
    "plot": ("a run's training curves from its TensorBoard events, as a PNG", _plot, False),
    "study": ("run or report a study (approaches x label budgets x seeds)", _study, False),
    "prompts": ("run or report the prompt grid, and choose the recipe's prompt", _prompts, False),
}


def usage() -> str:
    width = max(map(len, COMMANDS))
    rows = "\n".join(f"  {name:<{width}}  {what}" for name, (what, _, _) in COMMANDS.items())
    return ("usage: python -m src <command> [options]\n\nFine-tune, pretrain and prompt transformers on IMDB movie "
            f"reviews with PyTorch Lightning.\n\ncommands:\n{rows}\n\nA command's options: python -m src <command> "
            "--help. Example: python -m src fit --config configs/bert_imdb.yaml")


def run(argv: list[str]) -> None:
    """Run `python -m src <argv>`; a `UserError` names what is wrong with the input and its fix."""
    if not argv:
        raise UserError(f"no command given; fix: python -m src <command> with one of {', '.join(COMMANDS)} "
                        "(python -m src --help)")
    if argv[0] in ("-h", "--help"):
        print(usage())
        return
    if argv[0] not in COMMANDS:
        raise UserError(f"unknown command {argv[0]!r}; fix: one of {', '.join(COMMANDS)} (python -m src --help)")
    _, entry, named = COMMANDS[argv[0]]
    entry(argv if named else argv[1:])

