"""Sum up a fit: the model's table of layers at its start (`ModelTable`); at its end, its hyperparameters with the
final and best metrics in TensorBoard's HPARAMS tab, and a closing message with the best and last checkpoints, the log
folder and the exports; after validate and test, where their metrics went; after a validate, test or predict that
failed, no folder left behind with nothing in it.

To run: on in every fit (src/cli.py adds it).
"""

import shutil
from pathlib import Path

import lightning as L
from lightning.pytorch.callbacks import Callback, ModelSummary
from lightning.pytorch.loggers import TensorBoardLogger
from lightning.pytorch.utilities import rank_zero_info
from lightning.pytorch.utilities.model_summary import get_formatted_model_size, get_human_readable_count
from tensorboard.backend.event_processing.event_file_loader import EventFileLoader
from torch.utils.tensorboard.summary import hparams as hparams_summary

from src.callbacks.checkpointing import last_checkpoint
from src.callbacks.export import HFExport


def compared_settings(trainer: L.Trainer, pl_module: L.LightningModule) -> dict[str, object]:
    """The settings runs are compared by, HPARAMS' columns: learning rate, batch, max length, labelled reviews,
    steps, precision, model, seed (the whole recipe is the run's config.yaml)."""
    model = dict(pl_module.hparams)
    data = dict(trainer.datamodule.hparams) if trainer.datamodule is not None else {}
    train = getattr(trainer.datamodule, "splits", {}).get("train")
    settings = {"learning_rate": model.get("learning_rate"), "batch_size": data.get("batch_size"),
                "max_length": data.get("max_length", data.get("block_size")),
                "labelled_reviews": len(train) if train is not None else None, "steps": trainer.global_step,
                "precision": str(trainer.precision), "model": model.get("model_name"),
                "seed": data.get("sample_seed") if data.get("sample_seed") is not None else data.get("seed")}
    return {k: v if isinstance(v, (int, float, str, bool)) else str(v) for k, v in settings.items() if v is not None}


def write_hparams(trainer: L.Trainer, pl_module: L.LightningModule, best) -> None:
    """HPARAMS: the compared settings against the run's final validation metrics (the last values of its `val/*`
    curves) and its best monitored value, logged at the last step as `val/best_<name>` beside its curve (not at step
    0 under a tag of its own, alone on an empty axis)."""
    writer, step = trainer.logger.experiment, trainer.global_step
    metrics = [k for k in trainer.callback_metrics if k.startswith("val/")]
    if getattr(best, "best_model_score", None) is not None and str(best.monitor).startswith("val/"):
        tag = f"val/best_{best.monitor.removeprefix('val/')}"
        writer.add_scalar(tag, float(best.best_model_score), step)
        metrics.append(tag)
    for summary in hparams_summary(compared_settings(trainer, pl_module), dict.fromkeys(metrics, 0.0)):
        writer.file_writer.add_summary(summary)  # the metrics' values are read from their curves
    writer.flush()


class RunSummary(Callback):
    """At the end of `fit`: TensorBoard's HPARAMS tab gets the run's hyperparameters with its final and best
    metrics, and the console a closing summary (best checkpoint and metric, last checkpoint, logs, export)."""

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        best = trainer.checkpoint_callback
        if isinstance(trainer.logger, TensorBoardLogger) and trainer.is_global_zero:
            write_hparams(trainer, pl_module, best)
        # trainer.log_dir is a collective call under DDP: every process asks, only rank 0 prints.
        log_dir = trainer.log_dir
        exports = [cb.root(trainer) for cb in trainer.callbacks if isinstance(cb, HFExport)]
        if not trainer.is_global_zero:
            return
        lines = [f"fit done after {trainer.global_step} optimizer steps"]
        if getattr(best, "best_model_path", ""):
            score = best.best_model_score
            score = f" ({best.monitor} = {float(score):.4f})" if score is not None else ""
            lines.append(f"  best checkpoint: {best.best_model_path}{score}")
        if last := last_checkpoint(trainer):
            lines.append(f"  last checkpoint: {last}")
        if log_dir:
            lines.append(f"  logs:            {log_dir}  (tensorboard --logdir {log_dir})")
        lines += [f"  export:          {root}/{{best,last}}" for root in exports]
        print("\n".join(lines), flush=True)

    def teardown(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if stage in ("validate", "test") and trainer.logger is not None:
            log_dir = trainer.log_dir  # a collective call under DDP: every process asks, only rank 0 prints
            if trainer.is_global_zero:
                name = getattr(stage, "value", stage)  # Lightning passes an enum: print "validate", not its repr
                print(f"{name} done: metrics logged to {log_dir}  (tensorboard --logdir {log_dir})", flush=True)

    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException) -> None:
        """A failed validate, test or predict leaves no `<subcommand>/version_N` folder that holds only its config and
        an empty event file (a later successful one would take the next number, and the empty one looks like a
        result). Anything logged or written stays."""
        if trainer.state.fn == "fit" or not trainer.is_global_zero or trainer.logger is None:
            return
        folder = trainer.logger.log_dir  # not trainer.log_dir: a collective call, and other ranks may not be here
        if folder and Path(folder).is_dir() and _holds_nothing(Path(folder)):
            shutil.rmtree(folder)
            if not any(Path(folder).parent.iterdir()):
                Path(folder).parent.rmdir()  # the `predict/` this failure created


def _holds_nothing(folder: Path) -> bool:
    """Only the saved config, hparams and TensorBoard event files with no record besides their header."""
    for path in folder.rglob("*"):
        if path.is_dir() or path.name in ("config.yaml", "hparams.yaml"):
            continue
        if not path.name.startswith("events.out.tfevents."):
            return False
        if any(event.HasField("summary") for event in EventFileLoader(str(path)).Load()):
            return False
    return True


class ModelTable(ModelSummary):
    """Lightning's model summary as plain text, without its FLOPs column: Lightning counts FLOPs only on an
    `example_input_array`, which these modules lack (their batches vary in length), so the column read 0."""

    @staticmethod
    def summarize(summary_data: list[tuple[str, list[str]]], total_parameters: int, trainable_parameters: int,
                  model_size: float, total_training_modes: dict[str, int], total_flops: int, **kwargs) -> None:
        columns = [(name, values) for name, values in summary_data if name != "FLOPs" or total_flops]
        widths = [max(len(name), *(len(str(v)) for v in values)) for name, values in columns]
        header = " | ".join(f"{name:<{w}}" for (name, _), w in zip(columns, widths))
        rows = [" | ".join(f"{str(v):<{w}}" for v, w in zip(row, widths)) for row in zip(*(v for _, v in columns))]
        totals = [(get_human_readable_count(trainable_parameters), "Trainable params"),
                  (get_human_readable_count(total_parameters - trainable_parameters), "Non-trainable params"),
                  (get_human_readable_count(total_parameters), "Total params"),
                  (get_formatted_model_size(model_size), "Total estimated model params size (MB)"),
                  (total_training_modes["train"], "Modules in train mode"),
                  (total_training_modes["eval"], "Modules in eval mode")]
        rule = "-" * len(header)
        rank_zero_info("\n".join([header, rule, *rows, rule, *(f"{v:<10} {what}" for v, what in totals)]))
