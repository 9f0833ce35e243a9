"""Faster inference in lower precision: a registry of quantizers, each one class that registers itself by `name`.
`load`, `predict` (the `Quantize` callback) and `serve` read their choices from it; `auto`, their default, picks the
fastest one this machine runs that keeps the labels, and `none` keeps full precision.
- `int8`: every `nn.Linear` keeps int8 weights and quantizes its inputs on the fly (torch's dynamic quantization),
  so the matrix products, most of an encoder's time, run in int8. CPU only. For a trained classifier 1.46x fp32 on 2
  AVX2 cores, about 4% of labels changed (so `auto` never picks it), no measurable change of accuracy.
- `bf16`: the weights cast to bfloat16, so every product runs in bf16 (oneDNN's AMX kernels on a CPU). On CPUs with
  native bf16 (AVX512-BF16/AMX) and on GPUs; refused on other CPUs, which emulate it many times slower than fp32.
- `openvino-bf16`: a classifier compiled by OpenVINO in bf16 (src/openvino_model.py): the fastest on a CPU with
  AVX512-BF16 but no AMX; CPU only, native bf16 only, OpenVINO installed (`pip install -e '.[openvino]'`).
All measured against `transformers.pipeline` in benchmarks/inference.py (docs/benchmarks.md, "Inference").
Importing this module does not import torch (`serve` lists the choices in a process that stays free of it).

To run: python -m src serve outputs/bert_imdb/version_0 --quantize bf16
"""

import copy
import importlib.util
import sys
import warnings
from typing import ClassVar

from src.errors import UserError
from src.hardware import cpu_has_amx, cpu_has_fast_bf16

QUANTIZERS: dict[str, type["Quantizer"]] = {}
AUTO, NONE = "auto", "none"


class Quantizer:
    """A way to run a trained model faster. A subclass sets `name` (and `help`) and registers itself; `check` refuses
    a device it cannot run on (before any model loads), `check_model` a model it cannot convert, `apply` returns the
    converted copy, and `speedup` is its measured speed over full precision on `device` where it keeps the labels
    (what `auto` ranks by; None: not a candidate there)."""

    name: ClassVar[str]
    help: ClassVar[str] = ""

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        QUANTIZERS[cls.name] = cls

    def check(self, device: str) -> None:
        pass

    def check_model(self, model) -> None:
        pass

    def apply(self, model, device: str):
        raise NotImplementedError

    def speedup(self, device: str) -> float | None:
        return None


def _on_cpu(device) -> bool:
    return str(device).split(":")[0] == "cpu"


def _cpu_only(name: str, device) -> None:
    if not _on_cpu(device):
        raise UserError(f"quantize {name!r} runs on the CPU, not on {device}; fix: leave quantize out on a GPU (use "
                        "bf16 there) or run on the CPU")


def _native_bf16(name: str, device) -> None:
    if _on_cpu(device) and not cpu_has_fast_bf16():
        raise UserError(f"quantize {name!r} on a CPU without AVX512-BF16/AMX is many times slower than fp32 "
                        "(emulated); fix: quantize='int8' on this CPU, or quantize='none'")


class Int8(Quantizer):
    name = "int8"
    help = "the model's Linear layers in dynamic int8 (CPU)"

    def check(self, device: str) -> None:
        _cpu_only(self.name, device)

    def apply(self, model, device: str):
        import torch
        from torch import nn

        with warnings.catch_warnings():  # torch points eager-mode quantization users to torchao; it still works as is
            warnings.simplefilter("ignore")
            return torch.ao.quantization.quantize_dynamic(model, {nn.Linear}, dtype=torch.qint8)


class BF16(Quantizer):
    name = "bf16"
    help = "the weights in bfloat16 (CPUs with AVX512-BF16/AMX, GPUs)"

    def check(self, device: str) -> None:
        _native_bf16(self.name, device)

    def apply(self, model, device: str):
        import torch

        return copy.deepcopy(model).to(torch.bfloat16)  # a module's predict_step reads its logits as float

    def speedup(self, device: str) -> float | None:
        # Over predict's fp32 on 1,000 test reviews, every label kept: 3.2x with AMX, 1.6x with AVX512-BF16 alone.
        if not _on_cpu(device):
            return 2.0
        return (3.2 if cpu_has_amx() else 1.6) if cpu_has_fast_bf16() else None


class OpenVINOBF16(Quantizer):
    name = "openvino-bf16"
    help = "a classifier compiled by OpenVINO in bf16 (CPUs with AVX512-BF16/AMX; pip install -e '.[openvino]')"

    def check(self, device: str) -> None:
        _cpu_only(self.name, device)
        _native_bf16(self.name, device)
        from src.openvino_model import check_installed

        check_installed()

    def check_model(self, model) -> None:
        from src.openvino_model import check_classifier

        check_classifier(model)

    def apply(self, model, device: str):
        from src.openvino_model import OpenVINOClassifier

        return OpenVINOClassifier(model, "bf16")

    def speedup(self, device: str) -> float | None:
        # Over predict's fp32, 999 of 1,000 labels kept: 2.3x without AMX (3.9x the pipeline where fp32 is 1.72x);
        # 2.5x with AMX, where torch's bf16 (3.2x) is the faster.
        if not (_on_cpu(device) and cpu_has_fast_bf16()) or importlib.util.find_spec("openvino") is None:
            return None
        return 2.5 if cpu_has_amx() else 2.3


def choices() -> list[str]:
    """What `quantize` accepts: `auto`, `none` and every registered quantizer."""
    return [AUTO, NONE, *QUANTIZERS]


def quantizer(how: str | None) -> Quantizer | None:
    """The registered quantizer named `how` (None for `none`); a `UserError` listing the names for an unknown one."""
    if how in (None, NONE):
        return None
    if how not in QUANTIZERS:
        raise UserError(f"quantize {how!r} is not known; fix: one of {', '.join(map(repr, choices()))}")
    return QUANTIZERS[how]()


def check(how: str | None, device: str = "cpu") -> None:
    """A `UserError` naming the fix when `how` is not known or cannot run (fast) on `device`; `auto` always can."""
    if how != AUTO and (chosen := quantizer(how)) is not None:
        chosen.check(str(device))


_told: set[str] = set()


def pick(model, device: str = "cpu") -> str:
    """`auto`'s choice for `model` on `device`: the registered quantizer with the largest measured speed-up that runs
    here and converts this model, else `none`; the speed-ups were measured on classifiers, so other models (a causal
    LM's generation, a masked LM) stay in full precision. Said once per process and choice."""
    from src.openvino_model import is_classifier

    ranked = []
    for name, cls in QUANTIZERS.items() if is_classifier(model) else ():
        q = cls()
        try:
            q.check(str(device))
            q.check_model(model)
        except UserError:
            continue
        if (gain := q.speedup(str(device))) is not None and gain > 1:
            ranked.append((gain, name))
    name = max(ranked)[1] if ranked else NONE
    if name not in _told:
        _told.add(name)
        print(f"quantize auto: {name} on {device}; full precision: quantize='none' (predict --quantize.how none, serve "
              "--quantize none)", file=sys.stderr)
    return name


def quantized(model, how: str | None, device: str = "cpu"):
    """`model` converted by the quantizer named `how` (`auto`: the fastest here, `none` or None: as it is); the
    weights are copied, `model` is left as it was."""
    if how == AUTO:
        how = pick(model, device)
    chosen = quantizer(how)
    if chosen is None:
        return model
    chosen.check(str(device))
    chosen.check_model(model)
    return chosen.apply(model, str(device))
