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
