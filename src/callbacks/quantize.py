"""Predict in lower precision (src/quantize.py): the model's Linear layers in dynamic int8 on a CPU, its weights in
bf16 on a CPU with native bf16 or a GPU, or a classifier compiled by OpenVINO in bf16 on such a CPU; a few labels
differ from full precision (docs/benchmarks.md, section 5).

To run: python -m src predict --config <run>/config.yaml --ckpt_path <run>/checkpoints/best-....ckpt
        --trainer.callbacks+=src.callbacks.Quantize --trainer.callbacks.how=bf16
"""

import lightning as L

from src.quantize import CHOICES, check, quantized


class Quantize(L.Callback):
    """Converts the module's Hugging Face model when `predict` starts, after the checkpoint's weights are loaded."""

    def __init__(self, how: str = "int8"):
        """
        Args:
            how: int8 (dynamic int8 Linear layers, CPU), bf16 (weights in bfloat16; native-bf16 CPUs and GPUs) or
                openvino-bf16 (a classifier compiled by OpenVINO in bf16; native-bf16 CPUs).
        """
        if how not in CHOICES:
            check(how)  # an unknown name fails when the CLI builds the callback, not after the model is loaded
        self.how = how

    def on_predict_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        pl_module.model = quantized(pl_module.model, self.how, pl_module.device)


class DynamicInt8(Quantize):
    """`Quantize` in int8: the name earlier commands and docs use."""

    def __init__(self):
        super().__init__("int8")
