"""The study commands: `python -m src study run|report` (a study file), `python -m src study demonstrations` (an
in-context run's demonstrations as a config overlay) and `python -m src prompts run|report` (the prompt grid). Bad
input raises a `UserError`, which `python -m src` prints as one line with exit code 2.

To run: python -m src study run --config configs/studies/label_budget.yaml
        python -m src prompts run --config configs/studies/prompts.yaml
"""

import argparse

from src.errors import ArgumentParser, UserError
from src.studies import prompts, workers
from src.studies.kinds.demonstrations import write_overlay
from src.studies.report import report
from src.studies.run import run_spec
from src.studies.runner import run_study
from src.studies.schema import load_study


def study_arguments() -> ArgumentParser:
    parser = ArgumentParser(prog="python -m src study", description="a study: approaches x label budgets x "
                                     "seeds on the same evaluation reviews, and its report (src/studies/)")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, help_ in (("run", "run the study's runs not yet done, then report into the study's folder"),
                        ("report", "write the report of what is done, also into the study's doc")):
        p = sub.add_parser(name, help=help_)
        p.add_argument("--config", required=True, help="the study file, e.g. configs/studies/label_budget.yaml")
        p.add_argument("--quick", action="store_true", help="2 seeds, the 2 smallest budgets, 16 evaluation reviews")
        if name == "run":
            p.add_argument("--only", nargs="+", help="run only these approaches")
            p.add_argument("--in_process", action="store_true",
                           help="run every run and prerequisite in this process (no start-up per run; for a GPU, "
                                "no isolation)")
            p.add_argument("--workers", type=int, default=1,
                           help="runs at once, each its own process, through submitit: CPU workers share the cores; "
                                "with --gpus, one run per GPU; with --engine slurm, the job array's parallelism")
            p.add_argument("--gpus", type=int, nargs="+",
                           help="the local GPUs to spread runs over, one per worker (a GPU listed twice takes two "
                                "runs at once: small models leave it idle)")
            p.add_argument("--engine", choices=["local", "slurm"], default="local",
                           help="local: this machine; slurm: a SLURM job array (run from a login node)")
            p.add_argument("--slurm", nargs="+", default=[], metavar="KEY=VALUE",
                           help="submitit parameters of the SLURM jobs, e.g. slurm_partition=gpu gpus_per_node=1 "
                                "cpus_per_task=8 timeout_min=60")
    p = sub.add_parser("run_one", help="one planned run from the spec.json that `study run` writes for it (what "
                       "`study run` starts for each run); its row goes to result.json beside the spec")
    p.add_argument("spec", help="<study folder>/runs/<approach>/n<labels>_seed<seed>/spec.json")
    p = sub.add_parser("demonstrations", help="write the k demonstrations a study's in-context run draws with a seed, "
                       "as a config overlay for configs/studies/in_context.yaml (an ensemble's in-context member)")
    p.add_argument("--k", type=int, required=True, help="how many demonstrations (class-balanced)")
    p.add_argument("--seed", type=int, required=True, help="the seed of the draw and of their order")
    p.add_argument("--output", required=True, help="the overlay to write, e.g. outputs/demos/k16_seed0.yaml")
    p.add_argument("--source", default=None, help="the data source (default: the shared mirror, else stanfordnlp/imdb)")
    p.add_argument("--val_size", type=float, default=2500, help="the held-out validation split, as the study's")
    p.add_argument("--split_seed", type=int, default=42, help="the seed of that split, as the study's")
    return parser


def study(argv: list[str]) -> None:
    args = study_arguments().parse_args(argv)
    if args.command == "run_one":
        return run_spec(args.spec)
    if args.command == "demonstrations":
        val_size = int(args.val_size) if args.val_size >= 1 else args.val_size
        return write_overlay(args.output, args.source, args.k, args.seed, val_size, args.split_seed)
    spec = load_study(args.config, args.quick)
    if args.command == "run":
        run_study(spec, args.only, args.in_process, pool(args, spec.folder() / "workers"))
    report(spec, doc=args.command == "report")


def pool(args: argparse.Namespace, folder) -> workers.Spread | None:
    """Where the runs go: None (one after the other, here), local workers or a SLURM array (src/studies/workers.py)."""
    if args.engine == "local" and args.workers == 1 and not args.gpus:
        return None
    if args.in_process:
        raise UserError("--in_process runs every run in the study's process, one at a time; fix: drop it, or drop "
                        "--workers/--gpus/--engine")
    if args.workers < 1:
        raise UserError(f"--workers {args.workers}: fix: give 1 or more")
    if args.engine == "slurm":
        return workers.Slurm(folder, args.workers, workers.parse_parameters(args.slurm))
    return workers.Local(folder, len(args.gpus) if args.gpus and args.workers == 1 else args.workers, args.gpus)


def prompts_arguments() -> ArgumentParser:
    parser = ArgumentParser(prog="python -m src prompts", description="the prompt grid: zero-shot accuracy "
                                     "of prompts x label words x chat template under every calibration, on "
                                     "validation reviews; its report chooses the recipe's prompt")
    parser.add_argument("command", choices=["run", "report"], help="run the prompts not yet scored (and report into "
                        "the grid's folder), or report (also into its doc, and write the chosen prompt)")
    parser.add_argument("--config", required=True, help="the prompt grid, e.g. configs/studies/prompts.yaml")
    parser.add_argument("--quick", action="store_true", help="16 evaluation reviews, in its own folder")
    parser.add_argument("--in_process", action="store_true",
                        help="score every prompt in this process (no start-up per prompt; for a GPU, no isolation)")
    return parser


def prompt_grid(argv: list[str]) -> None:
    args = prompts_arguments().parse_args(argv)
    grid, spec = prompts.load_grid(args.config, args.quick)
    if args.command == "run":
        run_study(spec, in_process=args.in_process)
    prompts.report(grid, spec, doc=args.command == "report")
