"""TimeBudget: a fit that spends a wall-clock budget, whatever the machine. The learning-rate schedule follows the time
spent, not a step count guessed in advance (warm-up and decay end when the budget does: the module's schedule asks
`lr_factor`); training goes around the reviews as often as the budget allows (`max_epochs: -1`); it stops early
enough that the last validation, of the final weights (Lightning validates when a callback stops the fit), and the
export fit inside the budget (until a validation has been timed, the sanity check's batches, scaled, stand in for it).
Time spent before a resume counts (it is kept in the checkpoint), so a preempted run still ends on time. Cramming
(Geiping and Goldstein 2022) schedules by budget the same way.

To run: python -m src fit --config configs/bert_imdb.yaml --config configs/bert_imdb/time_budget.yaml
"""

import math
import time

import lightning as L
from lightning.pytorch.callbacks import Callback

from src.errors import UserError


class TimeBudget(Callback):
    """Stops the fit when its budget, less the last validation and a margin, is spent; `lr_factor` is the schedule."""

    def __init__(self, minutes: float, margin: float = 0.01):
        """
        Args:
            minutes: the fit's budget, from the CLI making this callback (before the model loads and the reviews are
                tokenized) to the export.
            margin: a fraction of the budget kept back besides the last validation's measured time (checkpoints,
                the export).
        """
        # A budget of 0 or less would stop after one step and export that model as if it were the run's result.
        if not minutes > 0:
            raise UserError(f"TimeBudget minutes is {minutes}: the fit would stop after its first step; fix: a budget "
                            "above 0, e.g. --trainer.callbacks.init_args.minutes 45")
        if not 0 <= margin < 1:
            raise UserError(f"TimeBudget margin is {margin}: it is a fraction of the budget kept back; fix: a value "
                            "from 0 to below 1, e.g. 0.01")
        self.budget, self.margin = 60 * minutes, margin
        self.clock = time.monotonic  # a test's fake clock goes here
        self.offset = 0.0  # seconds spent before a resume
        # From here: the CLI makes its callbacks before it loads the model and tokenizes, and all that counts.
        self.start = self.clock()
        self.last_validation = 0.0  # seconds the last validation inside the fit took (or the sanity check's estimate)
        self.progress = 0.0  # the fraction of the training budget spent, as of the current step (same on every rank)
        self._validation_start: float | None = None
        self._sanity_ends: list[float] = []  # when each of the sanity check's batches ended
        self._step_start = 0.0

    def elapsed(self) -> float:
        return self.offset + self.clock() - self.start

    def training_budget(self) -> float:
        """Seconds for training: the budget less the margin and what the last validation took (the final one will
        take as long)."""
        return self.budget * (1 - self.margin) - self.last_validation

    def lr_factor(self, warmup_ratio: float) -> float:
        """The learning rate's multiplier now: linear warm-up over the first `warmup_ratio` of the training budget,
        then linear decay to 0 at its end."""
        p = self.progress
        if p < warmup_ratio:
            return p / warmup_ratio
        return max(0.0, (1 - p) / (1 - warmup_ratio)) if warmup_ratio < 1 else 0.0

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, batch, batch_idx: int) -> None:
        self._step_start = self.elapsed()
        # Rank 0's clock for every rank: the learning rates, and the step at which all stop, agree.
        self.progress = trainer.strategy.broadcast(min(1.0, self._step_start / max(self.training_budget(), 1e-9)))

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs, batch,
                           batch_idx: int) -> None:
        now = self.elapsed()
        # Stop when another step of this one's length would not end within the training budget.
        stop = trainer.strategy.broadcast(now + (now - self._step_start) >= self.training_budget())
        trainer.should_stop = trainer.should_stop or stop

    def on_validation_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._validation_start = self.clock()

    def on_validation_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs, batch,
                                batch_idx: int, dataloader_idx: int = 0) -> None:
        if trainer.sanity_checking:
            self._sanity_ends.append(self.clock())

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._validation_start is None:
            return
        if not trainer.sanity_checking:
            self.last_validation = self.clock() - self._validation_start
        elif not self.last_validation and self._sanity_ends:
            # No validation timed yet (a budget shorter than the validation interval has none before the last): the
            # sanity check's batches scaled to the whole validation, its first batch (warm-up) standing in for the
            # fixed cost of an epoch's end.
            ends = self._sanity_ends
            first = ends[0] - self._validation_start
            per_batch = (ends[-1] - ends[0]) / (len(ends) - 1) if len(ends) > 1 else first
            total = sum(trainer.num_val_batches)
            if math.isfinite(total):
                self.last_validation = first + per_batch * max(total - 1, 0)
        self._validation_start = None

    def state_dict(self) -> dict:
        return {"elapsed": self.elapsed(), "last_validation": self.last_validation}

    def load_state_dict(self, state_dict: dict) -> None:
        self.offset = state_dict["elapsed"]
        self.last_validation = state_dict["last_validation"]
