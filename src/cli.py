"""The command line: LightningCLI with the LightningModule and the LightningDataModule chosen by `class_path`.

To run: python -m src fit --config configs/bert_imdb.yaml
        python -m src predict --config configs/bert_imdb.yaml --ckpt_path <checkpoint>
"""

import argparse
import functools
import importlib.util
import logging
import re
import sys
import warnings
from pathlib import Path

import datasets
import torch
from jsonargparse import Namespace
from lightning.pytorch.cli import LightningCLI
from lightning.pytorch.utilities import rank_zero_info, rank_zero_warn
from lightning.pytorch.utilities.exceptions import SIGTERMException
from transformers.utils import logging as transformers_logging

from src.callbacks import ModelTable, Overview, ProgressLines, Quantize, RunSummary, StopOnNonFiniteLoss, Throughput
from src.data import ReviewDataModule
from src.errors import Stopped, UserError, reason
from src.hardware import cpu_has_fast_bf16
from src.models import HFModule

DESCRIPTION = (
    "Fine-tune, pretrain and prompt transformers on IMDB movie reviews with PyTorch Lightning. Pick a recipe "
    "from configs/ and a subcommand: fit trains (classifier, masked LM, causal LM), validate and test evaluate, "
    "predict classifies reviews, fills masks or generates text. Example: python -m src fit --config "
    "configs/bert_imdb.yaml; every option of a subcommand, with its documentation: python -m src fit --help."
)


class CLI(LightningCLI):
    def add_arguments_to_parser(self, parser) -> None:
        # The data module tokenizes with the model's own tokenizer.
        parser.link_arguments("model.init_args.model_name", "data.init_args.tokenizer")
        # Always on, whatever the config's callbacks: a NaN loss stops the run before it breaks the weights;
        # throughput is logged; a log file gets progress lines; a fit ends with its summary (and the hparams with
        # final metrics in TensorBoard).
        parser.add_lightning_class_args(StopOnNonFiniteLoss, "stop_on_non_finite_loss")
        parser.add_lightning_class_args(Throughput, "throughput")
        parser.add_lightning_class_args(Overview, "overview")  # TensorBoard's first screen: loss, accuracy, lr
        parser.add_lightning_class_args(ProgressLines, "progress_lines")
        parser.add_lightning_class_args(RunSummary, "run_summary")
        parser.add_lightning_class_args(ModelTable, "model_table")  # in place of Lightning's (its FLOPs column read 0)
        # predict: the fastest quantizer this machine runs that keeps the labels (--quantize.how none: full precision)
        parser.add_lightning_class_args(Quantize, "quantize")
        parser.add_argument("--test_after_fit", type=bool, default=False,
                            help="fit: then score the test split with the best checkpoint (as `make fit` does)")

    def after_fit(self) -> None:
        """`--test_after_fit true`: the run ends as the guide's script does, on the test split, with its best
        checkpoint (the last weights where no checkpoint monitors a metric)."""
        if not self.config.fit.get("test_after_fit"):
            return
        best = self.trainer.checkpoint_callback and self.trainer.checkpoint_callback.best_model_path
        # The path itself: "best" makes Lightning warn when the recipe has a second checkpoint callback (last.ckpt).
        self.trainer.test(self.model, datamodule=self.datamodule, ckpt_path=best or None)

    def parse_arguments(self, parser, args) -> None:
        """Then: `fit --ckpt_path last` finds the newest run's last.ckpt and continues in that run's folder, and a
        missing or unreadable checkpoint is a one-line error before Lightning reads its hyperparameters."""
        super().parse_arguments(parser, args)
        subcommand = self.config.get("subcommand")
        config = self.config[subcommand] if subcommand else self.config
        if config.get("ckpt_path") == "last" and subcommand == "fit":
            config.ckpt_path = _resume_last(config.trainer)
        elif config.get("ckpt_path") in ("best", "last") and subcommand in ("validate", "test", "predict"):
            config.ckpt_path = _newest_run_checkpoint(config.trainer, config.ckpt_path)
        path = config.get("ckpt_path")
        if not path or path in ("best", "last", "hpc"):
            return
        if not Path(path).is_file():
            raise UserError(f"checkpoint {path!r} does not exist: fix --ckpt_path")
        try:
            state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)  # mmap: checks, reads little
        except Exception as err:  # torch raises several types for a truncated or foreign file
            raise UserError(
                f"checkpoint {path!r} cannot be read ({reason(err)}): "
                "it is truncated, corrupt or not a Lightning checkpoint; fix: pass another --ckpt_path, "
                "e.g. the run's best-*.ckpt"
            ) from None
        made_by = state.get("hyper_parameters", {}).get("_class_path") if isinstance(state, dict) else None
        wanted = config.model.get("class_path") if hasattr(config.model, "get") else None
        if made_by and wanted and made_by != wanted:  # Lightning would quietly build the checkpoint's class
            raise UserError(f"checkpoint {path!r} was written by {made_by}, the config builds {wanted}; fix: pass the "
                            "config the checkpoint's run used (its config.yaml), or a checkpoint of this config")

    def before_instantiate_classes(self) -> None:
        config = self.config[self.subcommand] if self.subcommand else self.config
        if "weights_only" in config and config.weights_only is None:
            # Our checkpoints hold tensors and plain values only: never unpickle arbitrary objects from one.
            config.weights_only = True
        trainer = config.trainer
        if self.subcommand in ("validate", "test", "predict") and config.get("ckpt_path"):
            _log_beside_checkpoint(trainer, Path(config.ckpt_path), self.subcommand)
        if self.subcommand in ("validate", "test", "predict"):
            # Restoring a fit's checkpoint into an evaluation, Lightning compares the checkpoint callbacks' folder
            # with the one this run would save into, and warns about a folder that is never made: nothing saves here.
            warnings.filterwarnings("ignore", message="The dirpath has changed from")
        _budget_progress_bar(trainer)
        _check_data_settings(config)
        on_cpu = trainer.accelerator == "cpu" or (trainer.accelerator == "auto" and not torch.cuda.is_available())
        if on_cpu and str(trainer.precision).startswith("bf16") and not cpu_has_fast_bf16():
            # Measured on an AVX2-only CPU: a bf16-autocast MiniLM step took 14x as long as fp32 (train_step.py).
            rank_zero_warn(
                f"precision {trainer.precision} on a CPU without AVX512-BF16/AMX is many times slower than "
                "fp32, so this run uses 32-true (GPUs and bf16 CPUs keep the configured precision)"
            )
            trainer.precision = "32-true"


def _check_data_settings(config) -> None:
    """jsonargparse builds the model before the data module: a data setting out of range would be its one-line error
    only after the model loaded (seconds, and its notes printed first). The data module is cheap to build (its
    tokenizer loads on first use), so it is built here first, from the same settings, for its checks alone."""
    data = config.get("data")
    if not (hasattr(data, "get") and data.get("class_path")):
        return
    module, name = data.class_path.rsplit(".", 1)
    init = data.get("init_args")
    getattr(importlib.import_module(module), name)(**(init.as_dict() if init is not None else {}))


def _budget_progress_bar(trainer) -> None:
    """A time-budgeted fit on a terminal gets the bar that shows its budget ("12:31 of 45:00") where Lightning's rich
    bar would read "Epoch 1/-2" (its epoch count against `max_epochs: -1`); a configured bar is left alone."""
    callbacks = [c for c in trainer.get("callbacks") or [] if hasattr(c, "get")]
    paths = [str(c.get("class_path", "")) for c in callbacks]
    if trainer.get("enable_progress_bar") is False or not any(p.endswith(".TimeBudget") for p in paths):
        return
    if not any("ProgressBar" in p for p in paths) and importlib.util.find_spec("rich") is not None:
        trainer.callbacks = [*(trainer.get("callbacks") or []),
                             Namespace(class_path="src.callbacks.BudgetProgressBar", init_args=Namespace())]


def _logger_init_args(trainer):
    """The parsed `trainer.logger.init_args` (to point the logger at a folder), or None when there is no such logger."""
    logger = trainer.get("logger")
    return logger.get("init_args") if hasattr(logger, "get") else None


def _log_beside_checkpoint(trainer, ckpt: Path, subcommand: str) -> None:
    """`validate`, `test` and `predict` of a run's checkpoint write into `<run folder>/<subcommand>/version_N` (metrics,
    predictions), beside the run they evaluate, instead of opening an unrelated new run."""
    init = _logger_init_args(trainer)
    if init is None or ckpt.parent.name != "checkpoints" or not (ckpt.parent.parent / "config.yaml").is_file():
        return  # no logger to point, or not a checkpoint inside a run folder
    init.save_dir, init.name, init.version = str(ckpt.parent.parent), subcommand, None


def _runs(trainer) -> tuple[Path, str] | None:
    """The config's run folders, `<save_dir>/<name>` and a glob of its versions (the one the logger names, if it
    names one: a study's prerequisite does), or None when the config has no logger folder."""
    init = _logger_init_args(trainer)
    if init is None or init.get("save_dir") is None:
        return None
    version = init.get("version")
    pattern = "version_*" if version is None else version if isinstance(version, str) else f"version_{version}"
    return Path(init.save_dir) / (init.get("name") or ""), pattern  # TensorBoardLogger: no name, no subfolder


def _newest_run_checkpoint(trainer, which: str) -> str:
    """`validate`/`test`/`predict --ckpt_path best|last`: that checkpoint of the config's newest run. (Lightning reads
    them as the checkpoints of this process's own fit: in a new process it finds none, and evaluates or predicts with
    the untrained model after a warning.)"""
    runs, pattern = _runs(trainer) or (None, None)
    ckpts = sorted(runs.glob(f"{pattern}/checkpoints/*.ckpt"), key=lambda p: p.stat().st_mtime) if runs else []
    if not ckpts:
        raise UserError(f"--ckpt_path {which}: no run with checkpoints under {runs}/{pattern}; fix: fit first, or pass "
                        "a checkpoint file, e.g. outputs/bert_imdb/version_0/checkpoints/last.ckpt")
    folder = ckpts[-1].parent
    found = sorted(folder.glob("last.ckpt" if which == "last" else "best*.ckpt"), key=lambda p: p.stat().st_mtime)
    if not found:
        raise UserError(f"--ckpt_path {which}: the newest run, {folder.parent}, has no {which} checkpoint; fix: pass "
                        f"one of its checkpoints: {', '.join(sorted(p.name for p in folder.glob('*.ckpt')))}")
    rank_zero_info(f"--ckpt_path {which}: {found[-1]}")
    return str(found[-1])


def _resume_last(trainer) -> str | None:
    """The run's `last.ckpt`: in `<save_dir>/<name>/<version>` when the logger names its version (a study's
    prerequisite does), else the newest `<save_dir>/<name>/version_*`, and the logger is pointed at its folder."""
    where = _runs(trainer)
    if where is None:
        return "last"  # leave it to Lightning
    runs, pattern = where
    found = sorted(runs.glob(f"{pattern}/checkpoints/last.ckpt"), key=lambda p: p.stat().st_mtime)
    if not found:
        rank_zero_warn(f"--ckpt_path last: no last.ckpt under {runs}/{pattern}/checkpoints; starting a new run")
        return None
    _logger_init_args(trainer).version = found[-1].parents[1].name  # log into the interrupted run's folder
    rank_zero_info(f"resuming from {found[-1]}")
    return str(found[-1])


@functools.cache  # once per process: each call would add its filters again
def quiet_third_party_notes() -> None:
    """Keep the console to what matters for this project's runs: Lightning's advertisements for its cloud services,
    two warnings Lightning raises from its own code about its own code, and two about the zero-shot fit are dropped."""
    tips = logging.getLogger("lightning.pytorch.utilities.rank_zero")
    tips.addFilter(lambda r: "pypi.org/project/lit" not in r.getMessage())  # litlogger, litmodels
    if not sys.stderr.isatty():  # in a log file bars pile up as lines; the data module and HFExport say what they did
        datasets.disable_progress_bars()
        transformers_logging.disable_progress_bar()
    warnings.filterwarnings("ignore", message=r"`isinstance\(treespec, LeafSpec\)` is deprecated")
    warnings.filterwarnings("ignore", message=r"Precision .* is not supported by the model summary")
    tips.addFilter(lambda r: "Skipping setting a default `ModelSummary`" not in r.getMessage())  # ModelTable's doing
    # The zero-shot recipe's fit only scores reviews (its calibration): no optimizer and eval mode on purpose.
    warnings.filterwarnings("ignore", message=r"`LightningModule.configure_optimizers` returned `None`")
    warnings.filterwarnings("ignore", message=r"Found \d+ module\(s\) in eval mode at the start of training")


def main(args: list[str] | None = None, run: bool = True) -> CLI:
    """The CLI on `args` (default: the command line); `run=False` only builds the objects (no subcommand)."""
    quiet_third_party_notes()
    try:
        return CLI(
            HFModule,
            ReviewDataModule,
            subclass_mode_model=True,
            subclass_mode_data=True,
            save_config_kwargs={"overwrite": True},
            # RunSummary logs the hyperparameters once, at the end of fit, with the final metrics.
            trainer_defaults={"enable_autolog_hparams": False},
            # No abbreviations (a misspelled `--trainer.max_epoch` must not pass for max_epochs), and
            # parse errors raise, so that main prints them as one line instead of the whole usage.
            parser_kwargs={"allow_abbrev": False, "exit_on_error": False, "description": DESCRIPTION,
                         "prog": "python -m src"},
            args=args,
            run=run,
        )
    except SIGTERMException:
        raise Stopped("stopped by SIGTERM; the last checkpoint was saved: continue with --ckpt_path last") from None
    except argparse.ArgumentError as err:  # a misspelled key, a wrong type, a missing file
        raise UserError(_parse_error(err, args)) from None
    except Exception as err:
        user_error = _find_user_error(err)
        if user_error is None:
            raise
        raise user_error from None


def _parse_error(err: argparse.ArgumentError, args: list[str] | None) -> str:
    """jsonargparse's parse error as one line: the option, what is wrong, and the help that shows the fix."""
    # run=False (a study run, a benchmark) parses without a subcommand: those build a fit
    subcommand = next((a for a in args or sys.argv[1:] if a in CLI.subcommands()), "fit")
    message = " ".join(line.strip() for line in str(err).splitlines())
    see = f"python -m src {subcommand} --help"
    # A misspelled argument of a class picked by class_path: name it and the class's own help.
    unknown = re.search(r"Parser key \"(\w+)\".*?class_path '([\w.]+)': Option '([\w.]+)' is not accepted", message)
    if unknown:
        key, cls, option = unknown.groups()
        message = f"{cls} has no argument {option!r} (given as {key}.{option})"
        see = f"python -m src {subcommand} --{key}.help {cls}"
    elif wrong_type := _type_error(message):
        message = wrong_type
    return f"{message}; see: {see}".replace("  ", " ")


EXAMPLES = {"list": '\'["a review", "another"]\'', "int": "128", "float": "0.5", "bool": "true", "str": '"text"',
            "dict": "'{\"key\": 1}'"}


def _type_error(message: str) -> str | None:
    """jsonargparse's Union dump for a value of the wrong type, as one line: the option, the type, an example."""
    found = re.search(r"Parser key \"(\w+)\".*?class_path '[\w.]+': Parser key \"(\w+)\": (.*)", message)
    if not found:
        return None
    key, option, rest = found.groups()
    types = [t for t in dict.fromkeys(re.findall(r"Expected a <class '(\w+)'>", rest)) if t != "NoneType"]
    given = re.search(r"(?:Given value|Got value): (.*?)(?: - |$)", rest)
    choices = re.search(r"Expected a typing\.Literal\[(.*?)\]", rest)
    if choices and given:  # one of a few names: the names are the fix
        return f"--{key}.{option} is {given.group(1).strip()!r}; fix: one of {choices.group(1)}"
    if not types or not given:
        return None
    return (f"--{key}.{option} expects {' or '.join(types)}, got {given.group(1).strip()!r}; for example: "
            f"--{key}.{option} {EXAMPLES.get(types[0], '...')}")


def _find_user_error(err: BaseException | None) -> UserError | None:
    """jsonargparse wraps errors raised while instantiating classes: look down the cause chain."""
    while err is not None:
        if isinstance(err, UserError):
            return err
        err = err.__cause__ or err.__context__
    return None
