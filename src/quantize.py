"""Dynamic int8 inference on CPU: every `nn.Linear` of a model keeps int8 weights and quantizes its inputs on the
fly (torch's dynamic quantization), so the matrix products, most of an encoder's time, run in int8. For a trained
classifier: 1.46x fp32 on 2 AVX2 cores, 2.0x on AVX512 with VNNI, about 4% of labels changed and no measurable
change of accuracy (benchmarks/inference.py, docs/benchmarks.md). Quantized layers run on the CPU only: refused
elsewhere.

To run: python -m src serve outputs/bert_imdb/version_0 --quantize int8
"""

import warnings

import torch
from torch import nn

from src.errors import UserError

CHOICES = ("int8",)


def quantized(model: nn.Module, how: str | None, device: str | torch.device = "cpu") -> nn.Module:
    """`model` with its Linear layers in dynamic int8 (`how="int8"`), or as it is (`how=None`); the weights are
    copied, `model` is left as it was."""
    check(how, device)
    if how is None:
        return model
    with warnings.catch_warnings():  # torch points eager-mode quantization users to torchao; it still works as is
        warnings.simplefilter("ignore")
        return torch.ao.quantization.quantize_dynamic(model, {nn.Linear}, dtype=torch.qint8)


def check(how: str | None, device: str | torch.device = "cpu") -> None:
    """A `UserError` naming the fix when `how` is not a known quantization or cannot run on `device`."""
    if how is None:
        return
    if how not in CHOICES:
        raise UserError(f"quantize {how!r} is not known; fix: quantize='int8', or leave it out for full precision")
    if torch.device(device).type != "cpu":
        raise UserError(f"int8 dynamic quantization runs on the CPU, not on {device}; fix: leave quantize out on a "
                        "GPU (use bf16 there) or run on the CPU")
