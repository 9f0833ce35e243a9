"""Log training throughput: samples/s, real (non-padding) tokens/s, useful TFLOP/s and MFU (src/flops.py).

To run: on in every fit (src/cli.py adds it); tensorboard --logdir outputs shows the `train/` scalars.
"""

import time

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.utilities import rank_zero_info

from src.flops import attention_shape, matmul_peak, matmul_weights, train_flops


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
        self.start, self.samples, self.lengths = None, 0, []  # the window since the last log
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
        if trainer.logger is None:
            return
        ids = batch["input_ids"]
        self.samples += len(ids)
        mask = batch.get("attention_mask")
        # One small op a step, kept on the device (no host sync); tokens and FLOPs are summed at the log below.
        self.lengths.append(mask.sum(1) if mask is not None else ids.new_full((len(ids),), ids.shape[1]))
        if trainer.global_step % trainer.log_every_n_steps == 0:
            elapsed = time.perf_counter() - self.start
            world = trainer.world_size
            lengths = torch.cat(self.lengths)
            flops_per_sec = train_flops(lengths, *self.shape).item() / elapsed  # one process
            trainer.logger.log_metrics({"train/samples_per_sec": world * self.samples / elapsed,
                                        "train/tokens_per_sec": world * lengths.sum().item() / elapsed,
                                        "train/tflops_per_sec": world * flops_per_sec / 1e12,
                                        "train/mfu": flops_per_sec / self.peak_flops},
                                       step=trainer.global_step)
            self.start, self.samples, self.lengths = time.perf_counter(), 0, []
