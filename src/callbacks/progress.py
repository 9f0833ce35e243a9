"""Progress as plain lines when the output is not a terminal (a log file, CI): Lightning's progress bar redraws
one line in place, which a file only receives at the end. On a terminal, a time-budgeted fit's bar shows the budget
(`BudgetProgressBar`).

To run: on in every fit (src/cli.py adds it): python -m src fit --config configs/bert_imdb.yaml > fit.log 2>&1
"""

import math
import sys
import time

import lightning as L
from lightning.pytorch.callbacks import Callback, RichProgressBar

from src.callbacks.time_budget import TimeBudget


def _clock(seconds: float) -> str:
    minutes, seconds = divmod(int(seconds), 60)
    return f"{minutes // 60}:{minutes % 60:02d}:{seconds:02d}"


class ProgressLines(Callback):
    """Every `every_n_steps` steps a line with step, loss, training samples/s, elapsed time and time left (of the
    steps, or of a `TimeBudget`'s training time); after each validation a line with its metrics."""

    def __init__(self, every_n_steps: int = 50, on_terminal: bool = False):
        """
        Args:
            every_n_steps: a line after every this many optimizer steps.
            on_terminal: print the lines on a terminal too (where the progress bar already shows this).
        """
        self.every_n_steps, self.on_terminal = every_n_steps, on_terminal
        self.active, self.start, self.in_validation, self.validating_since, self.samples = False, 0.0, 0.0, None, 0
        self.first_step = 0

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.active = trainer.is_global_zero and (self.on_terminal or not sys.stdout.isatty())
        self.start, self.in_validation, self.samples = time.perf_counter(), 0.0, 0
        self.first_step = trainer.global_step  # past 0 when a fit resumes

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs, batch,
                           batch_idx: int) -> None:
        self.samples += len(batch["input_ids"]) * trainer.world_size
        step = trainer.global_step
        loss = outputs.get("loss") if isinstance(outputs, dict) else outputs
        if not self.active or loss is None or step % self.every_n_steps:  # None: a fit that trains nothing
            return
        elapsed = time.perf_counter() - self.start
        total = trainer.estimated_stepping_batches  # infinite when a time budget, not a step count, ends the fit
        budget = next((cb for cb in trainer.callbacks if isinstance(cb, TimeBudget)), None)
        if budget is not None:
            left = f"  left {_clock(max(0.0, budget.training_budget() - budget.elapsed()))} of the budget"
        elif math.isfinite(total):
            left = f"  left {_clock(elapsed / max(step - self.first_step, 1) * (total - step))}"
        else:
            left = ""
        of = f"/{total}" if math.isfinite(total) else ""
        rate = self.samples / max(elapsed - self.in_validation, 1e-9)
        print(f"step {step}{of}  loss {float(loss):.4f}  {rate:.1f} samples/s  elapsed {_clock(elapsed)}{left}",
              flush=True)

    def on_validation_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.validating_since = time.perf_counter()

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.validating_since is not None and trainer.state.fn == "fit":
            self.in_validation += time.perf_counter() - self.validating_since
        if self.active and not trainer.sanity_checking:
            metrics = "  ".join(f"{k} {float(v):.4f}" for k, v in sorted(trainer.callback_metrics.items())
                                if k.startswith("val/"))
            print(f"validation at step {trainer.global_step}: {metrics}", flush=True)


class BudgetProgressBar(RichProgressBar):
    """Lightning's rich progress bar, which counts epochs against `max_epochs`: a fit that a `TimeBudget` ends has
    `max_epochs: -1` and read "Epoch 1/-2". With a budget, the bar names the budget's progress instead
    ("Epoch 1 · 12:31 of 45:00"); without one it is Lightning's. The CLI uses it where Lightning would use its rich
    bar."""

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        super().on_train_epoch_start(trainer, pl_module)
        self._describe_budget(trainer)

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs, batch,
                           batch_idx: int) -> None:
        super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)
        self._describe_budget(trainer)

    def _describe_budget(self, trainer: L.Trainer) -> None:
        budget = next((c for c in trainer.callbacks if isinstance(c, TimeBudget)), None)
        if budget is None or self.progress is None or self.train_progress_bar_id is None:
            return
        self.progress.update(self.train_progress_bar_id, description=budget_description(
            trainer.current_epoch, budget.elapsed(), budget.budget))


def budget_description(epoch: int, elapsed: float, budget: float) -> str:
    """"Epoch 1 · 12:31 of 45:00": the epoch (passes over the data, as many as the budget allows) and the time."""

    def minutes(seconds: float) -> str:
        return f"{int(seconds) // 60}:{int(seconds) % 60:02d}"

    return f"Epoch {epoch} · {minutes(min(elapsed, budget))} of {minutes(budget)}"
