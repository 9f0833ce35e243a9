"""Callbacks: keep a resume checkpoint; stop on a NaN loss; log throughput; sum up a fit (hparams with final
metrics in TensorBoard, and a closing message); write predictions to the run folder; export Hugging Face folders.

To run: python -m src predict --config configs/bert_imdb.yaml --ckpt_path <checkpoint>
"""

import json
import os
import random
import shutil
import time
from pathlib import Path

import lightning as L
import numpy as np
import torch
import torch.distributed as dist
from lightning.pytorch.callbacks import BasePredictionWriter, Callback, ModelCheckpoint
from lightning.pytorch.utilities import rank_zero_info
from lightning.pytorch.utilities.exceptions import SIGTERMException

from src.errors import UserError
from src.flops import attention_shape, matmul_peak, matmul_weights, train_flops
from src.pretrained import load_tokenizer


class ResumeCheckpoint(ModelCheckpoint):
    """Keeps `<run folder>/checkpoints/last.ckpt` current: every `every_n_train_steps` training steps, at
    the end of every epoch (after its validation), and on SIGTERM (preemption) before the process exits.
    `fit --ckpt_path last` resumes from it: at the same step, the same place in the epoch (the data
    module skips the batches done) and the same random-number state, so a resumed run continues as
    the uninterrupted one would. Lightning writes checkpoints atomically (temporary file, then move).

    (Lightning's `ModelCheckpoint` takes steps or epochs, not both, and since 2.6 its `save_last`
    refreshes last.ckpt only when the monitored metric improves.)
    """

    def __init__(self, every_n_train_steps: int = 50, filename: str = "last"):
        """
        Args:
            every_n_train_steps: save after every this many optimizer steps (and at each epoch's end).
            filename: checkpoint file name, without `.ckpt`.
        """
        super().__init__(filename=filename, every_n_train_steps=every_n_train_steps, save_top_k=1,
                         enable_version_counter=False)

        self._rng_to_restore: dict | None = None

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not self._should_skip_saving_checkpoint(trainer):
            self._save_topk_checkpoint(trainer, self._monitor_candidates(trainer))

    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException) -> None:
        # Lightning raises SIGTERMException at the first batch boundary after SIGTERM.
        if isinstance(exception, SIGTERMException) and self._last_global_step_saved != trainer.global_step:
            self._save_topk_checkpoint(trainer, self._monitor_candidates(trainer))
            rank_zero_info(f"SIGTERM: saved {self.best_model_path} at step {trainer.global_step}")

    def state_dict(self) -> dict:
        return {**super().state_dict(), "rng": _rng_state()}

    def load_state_dict(self, state_dict: dict) -> None:
        state_dict = dict(state_dict)
        self._rng_to_restore = state_dict.pop("rng", None)
        super().load_state_dict(state_dict)

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


class StopOnNonFiniteLoss(Callback):
    """Stops training at the first NaN or infinite loss, before its backward pass and optimizer step,
    so the weights stay as they were and no later checkpoint (best or last) holds broken ones."""

    def on_before_backward(self, trainer: L.Trainer, pl_module: L.LightningModule, loss: torch.Tensor) -> None:
        if not torch.isfinite(loss).all():
            resume = [cb for cb in trainer.checkpoint_callbacks if isinstance(cb, ResumeCheckpoint)]
            last = resume[0].best_model_path if resume else ""
            raise UserError(
                f"training loss is {loss.item()} at step {trainer.global_step} (epoch {trainer.current_epoch}, "
                f"batch {trainer.fit_loop.epoch_loop.batch_idx}): stopped before the weights changed"
                + (f"; last checkpoint: {last}" if last else "")
                + "; fix: lower model.init_args.learning_rate, or use trainer.precision 32-true"
            )


class Throughput(Callback):
    """Logs `train/samples_per_sec`, `train/tokens_per_sec` (non-padding tokens), `train/tflops_per_sec` (useful
    FLOP/s: real tokens only, attention included) and `train/mfu` (that over the measured matmul peak of one
    device in the training precision; see src/flops.py), all processes together, every `log_every_n_steps`
    steps, over the wall time since the last log (data loading included)."""

    def __init__(self, peak_flops: float | None = None):
        """
        Args:
            peak_flops: one device's peak FLOP/s in the training precision for MFU; by default a square
                `torch.matmul` is timed on the device when fit starts.
        """
        self.peak_flops = peak_flops
        self.start, self.samples, self.tokens, self.flops = None, 0, None, None
        self.paused = 0.0  # when the running validation started

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.shape = (matmul_weights(pl_module), *attention_shape(pl_module))
        if self.peak_flops is None:
            precision = str(trainer.precision)
            dtype = torch.bfloat16 if "bf16" in precision else torch.float16 if "16" in precision else torch.float32
            self.peak_flops = matmul_peak(pl_module.device, dtype)
            rank_zero_info(f"MFU is over a measured {str(dtype)[6:]} matmul peak: {self.peak_flops / 1e12:.3f} TFLOP/s")

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, batch, batch_idx: int) -> None:
        if self.start is None:
            self.start = time.perf_counter()

    def on_validation_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.paused = time.perf_counter()

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.start is not None:  # validation mid-way through a window is no training time
            self.start += time.perf_counter() - self.paused

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs, batch,
                           batch_idx: int) -> None:
        ids = batch["input_ids"]
        self.samples += len(ids)
        mask = batch.get("attention_mask")
        lengths = mask.sum(1) if mask is not None else ids.new_full((len(ids),), ids.shape[1])
        # Summed on the device: no host sync until the log below.
        tokens, flops = lengths.sum(), train_flops(lengths, *self.shape)
        self.tokens = tokens if self.tokens is None else self.tokens + tokens
        self.flops = flops if self.flops is None else self.flops + flops
        if trainer.global_step % trainer.log_every_n_steps == 0 and trainer.logger is not None:
            elapsed = time.perf_counter() - self.start
            world = trainer.world_size
            flops_per_sec = self.flops.item() / elapsed  # one process
            trainer.logger.log_metrics({"train/samples_per_sec": world * self.samples / elapsed,
                                        "train/tokens_per_sec": world * self.tokens.item() / elapsed,
                                        "train/tflops_per_sec": world * flops_per_sec / 1e12,
                                        "train/mfu": flops_per_sec / self.peak_flops},
                                       step=trainer.global_step)
            self.start, self.samples, self.tokens, self.flops = time.perf_counter(), 0, None, None


class RunSummary(Callback):
    """At the end of `fit`: TensorBoard's HPARAMS tab gets the run's hyperparameters with its final and best
    metrics, and the console a closing summary (best checkpoint and metric, last checkpoint, logs, export)."""

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        best = trainer.checkpoint_callback
        metrics = {f"final/{k}": float(v) for k, v in trainer.callback_metrics.items() if k.startswith("val/")}
        if best is not None and best.monitor and best.best_model_score is not None:
            metrics[f"best/{best.monitor}"] = float(best.best_model_score)
        if trainer.logger is not None:
            params = {f"model/{k}": v for k, v in pl_module.hparams.items()}
            if trainer.datamodule is not None:
                params |= {f"data/{k}": v for k, v in trainer.datamodule.hparams.items()}
            params = {k: v if isinstance(v, (int, float, str, bool)) else str(v) for k, v in params.items()}
            trainer.logger.log_hyperparams(params, metrics)
        # trainer.log_dir is a collective call under DDP: every process asks, only rank 0 prints.
        log_dir = trainer.log_dir
        exports = [cb.root(trainer) for cb in trainer.callbacks if isinstance(cb, HFExport)]
        if not trainer.is_global_zero:
            return
        lines = [f"fit done after {trainer.global_step} optimizer steps"]
        if best is not None and best.best_model_path:
            score = best.best_model_score
            score = f" ({best.monitor} = {float(score):.4f})" if score is not None else ""
            lines.append(f"  best checkpoint: {best.best_model_path}{score}")
        resume = [cb for cb in trainer.checkpoint_callbacks if isinstance(cb, ResumeCheckpoint)]
        if resume and resume[0].best_model_path:
            lines.append(f"  last checkpoint: {resume[0].best_model_path}")
        if log_dir:
            lines.append(f"  logs:            {log_dir}  (tensorboard --logdir {log_dir})")
        lines += [f"  export:          {root}/{{best,last}}" for root in exports]
        print("\n".join(lines), flush=True)


class PredictionWriter(BasePredictionWriter):
    """Writes the rows `predict_step` returns to `<run folder>/<filename>`, one JSON object a line, in input order."""

    def __init__(self, filename: str = "predictions.jsonl", output_dir: str | None = None):
        """
        Args:
            filename: name of the JSON-lines file.
            output_dir: folder to write to; None: the run's log folder.
        """
        super().__init__(write_interval="epoch")
        self.filename, self.output_dir = filename, output_dir

    def write_on_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, predictions, batch_indices) -> None:
        rows = [dict(zip(batch, values)) for batch in predictions for values in zip(*batch.values())]
        if dist.is_available() and dist.is_initialized():
            gathered = [None] * dist.get_world_size()
            dist.all_gather_object(gathered, rows)
            rows = [row for part in gathered for row in part]
        path = Path(self.output_dir or trainer.log_dir or ".") / self.filename  # log_dir: a collective call
        if not trainer.is_global_zero:
            return
        # DistributedSampler pads with repeats, and batches are length-sorted: dedupe, restore input order.
        rows = sorted({row["id"]: row for row in rows}.values(), key=lambda row: row["id"])
        if hasattr(pl_module, "finalize_predictions"):  # predictions that depend on the whole set
            rows = pl_module.finalize_predictions(rows)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        with open(tmp, "w", encoding="utf-8") as f:
            for row in rows:
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
        os.replace(tmp, path)  # atomic: a failed run leaves no file that looks complete
        rank_zero_info(f"wrote {len(rows)} predictions to {path}")


class HFExport(Callback):
    """After `fit`, writes `<run folder>/export/{last,best}`: Hugging Face folders (safetensors weights,
    config, tokenizer) that `from_pretrained`, `pipeline` and any config's `model_name` accept.

    Works for every module here (classifier, masked LM, causal LM): the module's `model` is saved, or
    what its `export_model()` returns (LoRA: adapters merged).
    """

    def __init__(self, dirname: str = "export", output_dir: str | None = None):
        """
        Args:
            dirname: folder inside the run folder.
            output_dir: write `last` and `best` here instead (a fixed path that another config can
                name as its `model_name`, e.g. outputs/mlm_imdb/export).
        """
        self.dirname, self.output_dir = dirname, output_dir

    def root(self, trainer: L.Trainer) -> Path:
        return Path(self.output_dir) if self.output_dir else Path(trainer.log_dir or ".") / self.dirname

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        root = self.root(trainer)  # trainer.log_dir is a collective call under DDP: every process asks
        if not trainer.is_global_zero:
            return
        self._save(pl_module, root / "last")
        best = trainer.checkpoint_callback.best_model_path if trainer.checkpoint_callback else ""
        if best and Path(best).is_file():
            current = {k: v.detach().clone() for k, v in pl_module.state_dict().items()}
            state = torch.load(best, map_location=pl_module.device, weights_only=True)["state_dict"]
            pl_module.load_state_dict(state)
            self._save(pl_module, root / "best")
            pl_module.load_state_dict(current)

    def _save(self, pl_module: L.LightningModule, path: Path) -> None:
        model = pl_module.export_model() if hasattr(pl_module, "export_model") else pl_module.model
        tokenizer = load_tokenizer(pl_module.hparams.model_name)
        tmp = path.with_name(path.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        shutil.rmtree(path, ignore_errors=True)
        os.replace(tmp, path)
        rank_zero_info(f"exported a Hugging Face folder to {path}")
