"""Predict with the model's Linear layers in dynamic int8 (src/quantize.py): faster on a CPU, about 4% of the labels
differ from full precision (docs/benchmarks.md, section 5).

To run: python -m src predict --config <run>/config.yaml --ckpt_path <run>/checkpoints/best-....ckpt
        --trainer.callbacks+=src.callbacks.DynamicInt8
"""

import lightning as L

from src.quantize import quantized


class DynamicInt8(L.Callback):
    """Quantizes the module's Hugging Face model when `predict` starts, after the checkpoint's weights are loaded."""

    def on_predict_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        pl_module.model = quantized(pl_module.model, "int8", pl_module.device)
