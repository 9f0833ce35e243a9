"""Callbacks: write predictions to the run folder; export Hugging Face folders after `fit`.

To run: python -m src predict --config configs/bert_imdb.yaml --ckpt_path <checkpoint>
"""

import json
import os
import shutil
from pathlib import Path

import lightning as L
import torch
import torch.distributed as dist
from lightning.pytorch.callbacks import BasePredictionWriter, Callback
from lightning.pytorch.utilities import rank_zero_info

from src.pretrained import load_tokenizer


class PredictionWriter(BasePredictionWriter):
    """Writes the rows `predict_step` returns to `<run folder>/<filename>`, one JSON object a line, in input order."""

    def __init__(self, filename: str = "predictions.jsonl", output_dir: str | None = None):
        """
        Args:
            filename: name of the JSON-lines file.
            output_dir: folder to write to; None: the run's log folder.
        """
        super().__init__(write_interval="epoch")
        self.filename, self.output_dir = filename, output_dir

    def write_on_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, predictions, batch_indices) -> None:
        rows = [dict(zip(batch, values)) for batch in predictions for values in zip(*batch.values())]
        if dist.is_available() and dist.is_initialized():
            gathered = [None] * dist.get_world_size()
            dist.all_gather_object(gathered, rows)
            rows = [row for part in gathered for row in part]
        if not trainer.is_global_zero:
            return
        # DistributedSampler pads with repeats, and batches are length-sorted: dedupe, restore input order.
        rows = sorted({row["id"]: row for row in rows}.values(), key=lambda row: row["id"])
        if hasattr(pl_module, "finalize_predictions"):  # predictions that depend on the whole set
            rows = pl_module.finalize_predictions(rows)
        path = Path(self.output_dir or trainer.log_dir or ".") / self.filename
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        with open(tmp, "w", encoding="utf-8") as f:
            for row in rows:
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
        os.replace(tmp, path)  # atomic: a failed run leaves no file that looks complete
        rank_zero_info(f"wrote {len(rows)} predictions to {path}")


class HFExport(Callback):
    """After `fit`, writes `<run folder>/export/{last,best}`: Hugging Face folders (safetensors weights,
    config, tokenizer) that `from_pretrained`, `pipeline` and any config's `model_name` accept.

    The module's `model` is saved; a module with `export_model()` (LoRA: adapters merged) decides what is saved.
    """

    def __init__(self, dirname: str = "export"):
        """
        Args:
            dirname: folder inside the run folder.
        """
        self.dirname = dirname

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.is_global_zero:
            return
        root = Path(trainer.log_dir or ".") / self.dirname
        self._save(pl_module, root / "last")
        best = trainer.checkpoint_callback.best_model_path if trainer.checkpoint_callback else ""
        if best and Path(best).is_file():
            current = {k: v.detach().clone() for k, v in pl_module.state_dict().items()}
            state = torch.load(best, map_location=pl_module.device, weights_only=True)["state_dict"]
            pl_module.load_state_dict(state)
            self._save(pl_module, root / "best")
            pl_module.load_state_dict(current)

    def _save(self, pl_module: L.LightningModule, path: Path) -> None:
        model = pl_module.export_model() if hasattr(pl_module, "export_model") else pl_module.model
        tokenizer = load_tokenizer(pl_module.hparams.model_name)
        tmp = path.with_name(path.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        shutil.rmtree(path, ignore_errors=True)
        os.replace(tmp, path)
        rank_zero_info(f"exported a Hugging Face folder to {path}")
