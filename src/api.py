"""Use a trained run from Python: load a run folder, a checkpoint or an export folder, then classify texts (or
generate, or fill masks: whatever the run's module predicts), with the same tokenization and the same rows as
`python -m src predict`.

To run:
    from src.api import load
    model = load("outputs/bert_imdb/version_0")         # a run folder (its best checkpoint), a .ckpt, or export/best
    model.predict(["A moving, funny film.", "Two hours I will never get back."])
    load("outputs/bert_imdb/version_0", quantize="none")  # full precision; the default, "auto", picks the fastest
"""

import importlib
import json
from pathlib import Path

import torch

from src import quantize as quantization
from src.data.base import ReviewDataModule
from src.data.collate import Collator
from src.errors import UserError, reason
from src.models.base import HFModule


class Predictor:
    """A trained module and the data settings it was trained with, ready to predict on texts."""

    def __init__(self, module: HFModule, data: ReviewDataModule, batch_size: int = 32):
        self.module, self.data, self.batch_size = module.eval(), data, batch_size
        self.collate = Collator(data.tokenizer, data.padding_side)

    @torch.inference_mode()
    def predict(self, texts: list[str] | str) -> list[dict]:
        """One row per text (per generated sequence, for a causal LM), in input order, as `predict` writes them; a
        string is one text."""
        texts = [texts] if isinstance(texts, str) else list(texts or [])
        if not texts:
            return []
        wrong = next((i for i, text in enumerate(texts) if text is not None and not isinstance(text, str)), None)
        if wrong is not None:  # else a type error deep in the text cleaning
            raise UserError(f"texts[{wrong}] is {type(texts[wrong]).__name__} {texts[wrong]!r:.40}, not a string; "
                            "fix: pass strings (str(x) for a number)")
        blank = next((i for i, text in enumerate(texts) if not (text or "").strip()), None)
        if blank is not None:  # an empty review would be classified all the same, as `predict` refuses it
            raise UserError(f"texts[{blank}] is empty or blank; fix: pass the text to classify (filter out empty "
                            "ones first)")
        ids = self.data.predict_ids(texts)
        order = sorted(range(len(texts)), key=lambda i: -len(ids[i]))  # similar lengths per batch: little padding
        rows = []
        for start in range(0, len(order), self.batch_size):
            chosen = order[start : start + self.batch_size]
            batch = self.collate([{"input_ids": ids[i], "idx": i, "text": texts[i]} for i in chosen])
            batch = {k: v.to(self.module.device) if torch.is_tensor(v) else v for k, v in batch.items()}
            out = self.module.predict_step(batch, start // self.batch_size)
            rows += [dict(zip(out, values)) for values in zip(*out.values())]
        return sorted(rows, key=lambda row: row["id"])


def load(path: str | Path, device: str = "cpu", batch_size: int = 32, quantize: str | None = "auto") -> Predictor:
    """A `Predictor` from a run folder (its best checkpoint, else last.ckpt), a checkpoint file of this project, or
    an export folder (`<run>/export/best`: Hugging Face weights and the run's settings in training_run.json).
    `quantize="auto"` (the default) picks the fastest quantizer this machine runs that keeps a classifier's labels
    (bf16 with AMX, openvino-bf16 with AVX512-BF16 alone, none on other CPUs) and says which; `"none"`: full
    precision; `"int8"`, `"bf16"`, `"openvino-bf16"` or any registered quantizer by name (src/quantize.py)."""
    if batch_size < 1:
        raise UserError(f"batch_size is {batch_size}; fix: batch_size=1 or more")
    quantization.check(quantize, device)  # before anything is loaded
    if torch.device(device).type == "cuda" and not torch.cuda.is_available():
        raise UserError(f"device {device!r}, but torch sees no CUDA GPU here; fix: device='cpu'")
    state = check(path)  # the checkpoint is read once
    if state is None:
        predictor = _load_export(Path(path), device, batch_size)
    else:
        module = _build(state["hyper_parameters"])
        module.on_load_checkpoint(state)  # as Lightning does before loading: a module may restore what it left out
        module.load_state_dict(state["state_dict"])
        predictor = Predictor(module.to(device), _build(state["datamodule_hyper_parameters"]), batch_size)
    predictor.module.model = quantization.quantized(predictor.module.model, quantize, device)
    return predictor


def _load_export(path: Path, device: str, batch_size: int) -> Predictor:
    """The run's classes and settings, with the exported folder as model and tokenizer (LoRA already merged)."""
    run = json.loads((path / "training_run.json").read_text())
    model_args = {**run["model"]["init_args"], "model_name": str(path)}  # as the module exported itself (LoRA merged)
    module = _build({"_class_path": run["model"]["class_path"], **model_args})
    data = _build({"_class_path": run["data"]["class_path"], **run["data"]["init_args"], "tokenizer": str(path)})
    return Predictor(module.to(device), data, batch_size)


def check(path: str | Path) -> dict | None:
    """What `load` would read, checked without building a model: None for an export folder, else the checkpoint's
    state (memory-mapped); a `UserError` naming the fix for anything else."""
    if (Path(path) / "training_run.json").is_file():
        try:
            json.loads((Path(path) / "training_run.json").read_text())["model"]["class_path"]
        except (ValueError, KeyError, TypeError) as err:
            raise UserError(f"{path}/training_run.json cannot be read ({type(err).__name__}); fix: export the run "
                            "again (its HFExport callback writes it)") from None
        return None
    return checkpoint_state(path)


def checkpoint_state(path: str | Path) -> dict:
    """The checkpoint of a run folder (its best, else last.ckpt) or a .ckpt file, memory-mapped (cheap to open),
    checked to name the module and data module classes that made it."""
    path = Path(path)
    found = [path] if path.is_file() else (sorted((path / "checkpoints").glob("best*.ckpt"))
                                           or sorted((path / "checkpoints").glob("last.ckpt")))
    if not found:
        raise UserError(f"{path} is neither a checkpoint, a run folder with checkpoints/best*.ckpt or last.ckpt, nor "
                        "an export with training_run.json; fix: pass outputs/<recipe>/version_N, a .ckpt file or "
                        "outputs/<recipe>/version_N/export/best")
    try:
        state = torch.load(found[-1], map_location="cpu", weights_only=True, mmap=True)
    except Exception as err:  # torch raises several types for a truncated or foreign file
        raise UserError(f"{found[-1]} cannot be read as a checkpoint ({reason(err)}); fix: pass a run folder, a .ckpt "
                        "of this project or an export folder") from None
    for key in ("hyper_parameters", "datamodule_hyper_parameters"):
        if "_class_path" not in state.get(key, {}):
            raise UserError(f"{found[-1]} does not say which classes made it (no _class_path in {key}): it was not "
                            "written by python -m src fit; fix: pass a checkpoint of this project")
    return state


def _build(hparams: dict):
    """The class a checkpoint's hyperparameters name (LightningCLI records it), built with those hyperparameters."""
    module, name = hparams["_class_path"].rsplit(".", 1)
    cls = getattr(importlib.import_module(module), name)
    return cls(**{k: v for k, v in hparams.items() if not k.startswith("_")})
