"""Faster inference in lower precision, chosen with `quantize`:
- `int8`: every `nn.Linear` keeps int8 weights and quantizes its inputs on the fly (torch's dynamic quantization),
  so the matrix products, most of an encoder's time, run in int8. CPU only. For a trained classifier 1.46x fp32 on 2
  AVX2 cores, about 4% of labels changed, no measurable change of accuracy.
- `bf16`: the weights cast to bfloat16, so every product runs in bf16 (oneDNN's AMX kernels on a CPU). On CPUs with
  native bf16 (AVX512-BF16/AMX) and on GPUs; refused on other CPUs, which emulate it many times slower than fp32.
- `openvino-bf16`: a classifier compiled by OpenVINO in bf16 (src/openvino_model.py): the fastest on a CPU with
  AVX512-BF16 but no AMX; CPU only, native bf16 only, OpenVINO installed (`pip install -e '.[openvino]'`).
All measured against `transformers.pipeline` in benchmarks/inference.py (docs/benchmarks.md, section 5).

To run: python -m src serve outputs/bert_imdb/version_0 --quantize bf16
"""

import copy
import warnings

import torch
from torch import nn

from src.errors import UserError
from src.hardware import cpu_has_fast_bf16

CHOICES = ("int8", "bf16", "openvino-bf16")


def quantized(model: nn.Module, how: str | None, device: str | torch.device = "cpu") -> nn.Module:
    """`model` with its Linear layers in dynamic int8 (`how="int8"`), with its weights in bfloat16 (`how="bf16"`),
    compiled by OpenVINO in bf16 (`how="openvino-bf16"`), or as it is (`how=None`); the weights are copied, `model`
    is left as it was."""
    check(how, device)
    if how is None:
        return model
    if how == "openvino-bf16":
        from src.openvino_model import OpenVINOClassifier

        return OpenVINOClassifier(model, "bf16")
    if how == "bf16":
        return copy.deepcopy(model).to(torch.bfloat16)  # a module's predict_step reads its logits as float
    with warnings.catch_warnings():  # torch points eager-mode quantization users to torchao; it still works as is
        warnings.simplefilter("ignore")
        return torch.ao.quantization.quantize_dynamic(model, {nn.Linear}, dtype=torch.qint8)


def check(how: str | None, device: str | torch.device = "cpu") -> None:
    """A `UserError` naming the fix when `how` is not a known quantization or cannot run (fast) on `device`."""
    if how is None:
        return
    if how not in CHOICES:
        raise UserError(f"quantize {how!r} is not known; fix: quantize='int8', 'bf16' or 'openvino-bf16', or leave it "
                        "out for full precision")
    on_cpu = torch.device(device).type == "cpu"
    if how in ("int8", "openvino-bf16") and not on_cpu:
        raise UserError(f"quantize {how!r} runs on the CPU, not on {device}; fix: leave quantize out on a GPU (use "
                        "bf16 there) or run on the CPU")
    if how in ("bf16", "openvino-bf16") and on_cpu and not cpu_has_fast_bf16():
        raise UserError(f"quantize {how!r} on a CPU without AVX512-BF16/AMX is many times slower than fp32 "
                        "(emulated); fix: quantize='int8' on this CPU, or leave it out")
    if how == "openvino-bf16":
        from src.openvino_model import check_installed

        check_installed()
