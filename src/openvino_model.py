"""A trained classifier compiled by OpenVINO for the CPU, in bf16 (`quantize="openvino-bf16"`): OpenVINO converts
the PyTorch model once (a few seconds), with batch and length left dynamic, and runs its own fused bf16 kernels. On
a CPU with AVX512-BF16 but no AMX, where torch's bf16 reaches 2.6-2.9x `pipeline`, it measured 3.9x (2-core AMD
EPYC; 3.6x on an Intel Xeon) with 999 of 1,000 labels unchanged (docs/benchmarks.md, "Inference"); with AMX,
`quantize="bf16"` is the faster. OpenVINO is an optional dependency: `pip install -e '.[openvino]'`.

To run: python -m src serve outputs/bert_imdb/version_0 --quantize openvino-bf16
"""

import importlib.util
import warnings

import torch
from torch import nn
from transformers.modeling_outputs import SequenceClassifierOutput
from transformers.models.auto.modeling_auto import MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING_NAMES
from transformers.utils import logging as transformers_logging

from src.errors import UserError

INPUTS = ("input_ids", "attention_mask")


def check_installed() -> None:
    """A `UserError` naming the install command when OpenVINO is missing (checked without importing it)."""
    if importlib.util.find_spec("openvino") is None:
        raise UserError("quantize 'openvino-bf16' needs OpenVINO, which is not installed; fix: pip install -e "
                        "'.[openvino]' (or pip install openvino), or use quantize='bf16'")


class OpenVINOClassifier(nn.Module):
    """Stands in for a Hugging Face sequence classifier where the modules call it: `model(input_ids=,
    attention_mask=)` returns an output with `.logits` (float32, on the CPU). It holds no torch weights (OpenVINO
    keeps its own copy), only the model's config."""

    def __init__(self, model: nn.Module, precision: str = "bf16"):
        super().__init__()
        import openvino as ov

        check_classifier(model)
        self.config = model.config
        example = {name: torch.ones(2, 16, dtype=torch.long) for name in INPUTS}  # shapes stay dynamic
        # Tracing warns of shape-dependent Python branches, and reads every property of the model: transformers then
        # says which loss it would train with (a stray `ForCausalLMLoss` line for a classifier): no user concern.
        verbosity = transformers_logging.get_verbosity()
        transformers_logging.set_verbosity_error()
        try:
            with warnings.catch_warnings(), torch.no_grad():
                warnings.simplefilter("ignore")
                converted = ov.convert_model(model.eval(), example_input=example)
        finally:
            transformers_logging.set_verbosity(verbosity)
        # Precision said explicitly: OpenVINO's default is bf16 only on some CPUs (AMX).
        self.compiled = ov.Core().compile_model(converted, "CPU", {
            "INFERENCE_PRECISION_HINT": precision, "PERFORMANCE_HINT": "LATENCY",
            "INFERENCE_NUM_THREADS": torch.get_num_threads()})

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> SequenceClassifierOutput:
        out = self.compiled({"input_ids": input_ids.cpu().numpy(), "attention_mask": attention_mask.cpu().numpy()})
        return SequenceClassifierOutput(logits=torch.from_numpy(out[0].copy()))  # the request reuses its buffers


def is_classifier(model: nn.Module) -> bool:
    """Whether `model` is a Hugging Face sequence classifier (what `predict_step` of the classifier calls)."""
    return type(model).__name__ in MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING_NAMES.values()


def check_classifier(model: nn.Module) -> None:
    """OpenVINO stands in for sequence classifiers only."""
    if not is_classifier(model):
        raise UserError(f"quantize 'openvino-bf16' runs sequence classifiers (BERT-style fine-tuned runs), not "
                        f"{type(model).__name__}; fix: quantize='bf16' or 'int8' for this run")
