"""Keep a resume checkpoint (every N steps but at most once a minute, at each epoch's end, and on SIGTERM) with the
random-number state, and stop at the first non-finite loss before it reaches the weights.

To run: python -m src fit --config configs/bert_imdb.yaml --ckpt_path last   (continues the newest run)
"""

import random
from pathlib import Path
from time import monotonic

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import Checkpoint
from lightning.pytorch.utilities import rank_zero_info
from lightning.pytorch.utilities.exceptions import SIGTERMException

from src.errors import UserError


class ResumeCheckpoint(Checkpoint):
    """Keeps `<run folder>/checkpoints/last.ckpt` current: every `every_n_train_steps` training steps once
    `min_interval_s` seconds have passed since the last save, at the end of every epoch (after its validation), and
    on SIGTERM (preemption) before the process exits.
    `fit --ckpt_path last` resumes from it: at the same step, the same place in the epoch (Lightning saves
    the training loader's position) and the same random-number state, so a resumed run continues as the
    uninterrupted one would. Lightning writes checkpoints atomically (temporary file, then move).

    (Lightning's `ModelCheckpoint` takes steps or epochs, not both, and its `save_last` refreshes
    last.ckpt only when the monitored metric improves.)

    Why a minimum interval: a MiniLM run's full checkpoint is 270 MB, about 0.3 s to write; 50 steps take a minute on
    a 2-core CPU but about 3 s on a GPU, where saving every 50 steps would cost a tenth of the fit.
    """

    def __init__(self, every_n_train_steps: int = 50, filename: str = "last", min_interval_s: float = 60.0):
        """
        Args:
            every_n_train_steps: consider a save after every this many optimizer steps (and save at each epoch's end).
            filename: checkpoint file name, without `.ckpt`.
            min_interval_s: skip a step's save until this many seconds have passed since the last save (or the start
                of training): a crash loses at most about this much training; 0 saves every `every_n_train_steps`.
        """
        self.every_n_train_steps, self.filename, self.min_interval_s = every_n_train_steps, filename, min_interval_s
        self.path = ""  # set in setup: <run folder>/checkpoints/<filename>.ckpt
        self._saved_at: int | None = None
        self._saved_time = 0.0  # monotonic clock; reset when training starts
        self._rng_to_restore: dict | None = None

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        folder = trainer.log_dir or trainer.default_root_dir  # log_dir: a collective call under DDP
        self.path = str(Path(folder) / "checkpoints" / f"{self.filename}.ckpt")

    def _save(self, trainer: L.Trainer) -> None:
        if self._saved_at != trainer.global_step:
            # Every process calls it (under DDP it is a collective); a full checkpoint: weights, optimizer, loops.
            trainer.save_checkpoint(self.path, weights_only=False)
            self._saved_at, self._saved_time = trainer.global_step, monotonic()

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._saved_time = monotonic()

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs, batch,
                           batch_idx: int) -> None:
        step = trainer.global_step
        if step and step % self.every_n_train_steps == 0:  # step 0: nothing trained yet (or a fit that trains nothing)
            # Rank 0's clock decides for all: the save is a collective under DDP, and clocks differ between processes.
            if trainer.strategy.broadcast(monotonic() - self._saved_time >= self.min_interval_s):
                self._save(trainer)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._save(trainer)

    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException) -> None:
        # Lightning raises SIGTERMException at the first batch boundary after SIGTERM.
        if isinstance(exception, SIGTERMException) and self.path:
            self._save(trainer)
            rank_zero_info(f"SIGTERM: saved {self.path} at step {trainer.global_step}")

    def state_dict(self) -> dict:
        return {"rng": _rng_state()}

    def load_state_dict(self, state_dict: dict) -> None:
        self._rng_to_restore = state_dict.get("rng")

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, batch, batch_idx: int) -> None:
        # Restored here, not on load: making the data iterator draws random numbers in between.
        if self._rng_to_restore is not None:
            _set_rng_state(self._rng_to_restore)
            self._rng_to_restore = None


def _rng_state() -> dict:
    """Every random-number state a training step reads, as types `torch.load(weights_only=True)` accepts."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state = {"torch": torch.get_rng_state(), "python": random.getstate(),
             "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, cached]}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def last_checkpoint(trainer: L.Trainer) -> str:
    """The path of the run's `ResumeCheckpoint`, or '' when it has none (or has not saved yet)."""
    paths = [cb.path for cb in trainer.callbacks if isinstance(cb, ResumeCheckpoint) and Path(cb.path).is_file()]
    return paths[0] if paths else ""


class StopOnNonFiniteLoss(L.Callback):
    """Stops training at the first NaN or infinite loss, before its backward pass and optimizer step,
    so the weights stay as they were and no later checkpoint (best or last) holds broken ones."""

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, batch, batch_idx: int) -> None:
        self.batch_idx = batch_idx

    def on_before_backward(self, trainer: L.Trainer, pl_module: L.LightningModule, loss: torch.Tensor) -> None:
        if not torch.isfinite(loss).all():
            last = last_checkpoint(trainer)
            raise UserError(
                f"training loss is {loss.item()} at step {trainer.global_step} (epoch {trainer.current_epoch}, "
                f"batch {self.batch_idx}): stopped before the weights changed"
                + (f"; last checkpoint: {last}" if last else "")
                + "; fix: lower model.init_args.learning_rate, or use trainer.precision 32-true"
            )
