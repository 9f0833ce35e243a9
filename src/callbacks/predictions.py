"""Write what `predict_step` returns to the run folder, one JSON object a line, in input order.

To run: python -m src predict --config configs/bert_imdb.yaml --ckpt_path <checkpoint>
"""

import json
import os
from pathlib import Path

import lightning as L
import torch.distributed as dist
from lightning.pytorch.callbacks import BasePredictionWriter
from lightning.pytorch.utilities import rank_zero_info

from src.models.base import HFModule


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

    def write_on_epoch_end(self, trainer: L.Trainer, pl_module: HFModule, predictions, batch_indices) -> None:
        rows = [dict(zip(batch, values)) for batch in predictions for values in zip(*batch.values())]
        if dist.is_available() and dist.is_initialized():
            gathered = [None] * dist.get_world_size()
            dist.all_gather_object(gathered, rows)
            rows = [row for part in gathered for row in part]
        path = Path(self.output_dir or trainer.log_dir or ".") / self.filename  # log_dir: a collective call
        if not trainer.is_global_zero:
            return
        # DistributedSampler pads with repeats, and batches are length-sorted: dedupe, restore input order.
        rows = sorted({row["id"]: row for row in rows}.values(), key=lambda row: row["id"])
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        with open(tmp, "w", encoding="utf-8") as f:
            for row in rows:
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
        os.replace(tmp, path)  # atomic: a failed run leaves no file that looks complete
        rank_zero_info(f"wrote {len(rows)} predictions to {path}")
