"""Predict in lower precision (src/quantize.py): always on in `predict`, where `auto` (the default) picks the fastest
quantizer this machine runs that keeps the labels; `--quantize.how none` keeps full precision, or name one (int8,
bf16, openvino-bf16, or any registered quantizer); a few labels may differ from full precision
(docs/benchmarks.md, "Inference").

To run: python -m src predict --config <run>/config.yaml --ckpt_path <run>/checkpoints/best-....ckpt --quantize.how bf16
"""

import lightning as L

from src.quantize import AUTO, quantized, quantizer


class Quantize(L.Callback):
    """Converts the module's Hugging Face model when `predict` starts, after the checkpoint's weights are loaded."""

    def __init__(self, how: str = AUTO):
        """
        Args:
            how: auto (the fastest quantizer this machine runs that keeps the labels), none (full precision), int8
                (dynamic int8 Linear layers, CPU), bf16 (weights in bfloat16; native-bf16 CPUs and GPUs),
                openvino-bf16 (a classifier compiled by OpenVINO in bf16; native-bf16 CPUs), or another registered
                quantizer (src/quantize.py).
        """
        if how != AUTO:
            quantizer(how)  # an unknown name fails when the CLI builds the callback, not after the model is loaded
        self.how = how

    def on_predict_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        pl_module.model = quantized(pl_module.model, self.how, pl_module.device)


class DynamicInt8(Quantize):
    """`Quantize` in int8: the name earlier commands and docs use."""

    def __init__(self):
        super().__init__("int8")
