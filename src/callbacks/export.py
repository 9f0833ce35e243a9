"""Export Hugging Face folders after fit: what `from_pretrained`, `pipeline` and a config's `model_name` load.

To run: python -m src fit --config configs/mlm_imdb.yaml   (writes outputs/mlm_imdb/export/{best,last})
"""

import copy
import json
import os
import shutil
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.utilities import rank_zero_info

from src.models.base import HFModule


class HFExport(Callback):
    """After `fit`, writes `<run folder>/export/{last,best}`: Hugging Face folders (safetensors weights,
    config, tokenizer) that `from_pretrained`, `pipeline` and any config's `model_name` accept.

    Works for every module here (classifier, masked LM, causal LM): what its `export_model()` returns is
    saved (LoRA: adapters merged), with its tokenizer, and `training_run.json`: the module's and the data
    module's classes and hyperparameters, so that `src.api.load(export)` predicts exactly as the run did
    (its truncation, max length, prompt). `pipeline` ignores that file.
    """

    def __init__(self, dirname: str = "export", output_dir: str | None = None):
        """
        Args:
            dirname: folder inside the run folder.
            output_dir: write `last` and `best` here instead (a fixed path that another config can
                name as its `model_name`, e.g. outputs/mlm_imdb/export).
        """
        self.dirname, self.output_dir = dirname, output_dir

    def root(self, trainer: L.Trainer) -> Path:
        return Path(self.output_dir) if self.output_dir else Path(trainer.log_dir or ".") / self.dirname

    def on_fit_end(self, trainer: L.Trainer, pl_module: HFModule) -> None:
        root = self.root(trainer)  # trainer.log_dir is a collective call under DDP: every process asks
        if not trainer.is_global_zero:
            return
        run = {"model": _described(pl_module, pl_module.export_hparams()),
               "data": _described(trainer.datamodule, dict(trainer.datamodule.hparams))}
        self._save(pl_module, root / "last", run)
        best = getattr(trainer.checkpoint_callback, "best_model_path", "")  # ModelCheckpoint's, when there is one
        if best and Path(best).is_file():
            current = {k: v.detach().clone() for k, v in pl_module.state_dict().items()}
            state = torch.load(best, map_location=pl_module.device, weights_only=True)["state_dict"]
            pl_module.load_state_dict(state)
            self._save(pl_module, root / "best", run)
            pl_module.load_state_dict(current)

    def _save(self, pl_module: HFModule, path: Path, run: dict) -> None:
        model, tokenizer = pl_module.export_model(), pl_module.tokenizer
        max_length = run["data"]["init_args"].get("max_length")
        if max_length:  # `pipeline(..., truncation=True)` then cuts reviews to the length the run trained on
            tokenizer = copy.copy(tokenizer)  # the module's tokenizer is shared: leave it as it is
            tokenizer.model_max_length = max_length
        tmp = path.with_name(path.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        (tmp / "training_run.json").write_text(json.dumps(run, indent=2, default=str))
        readable_by_others(tmp)
        shutil.rmtree(path, ignore_errors=True)
        os.replace(tmp, path)
        rank_zero_info(f"exported a Hugging Face folder to {path}")


def readable_by_others(folder: Path) -> None:
    """Files as the umask makes any other output (0644 under the usual 022): safetensors writes its weights 0600, which
    a serving container running as another user could not read."""
    umask = os.umask(0)
    os.umask(umask)  # reading the umask means setting it: put it straight back
    for path in folder.rglob("*"):
        if path.is_file():
            path.chmod(0o666 & ~umask)


def _described(obj, hparams: dict) -> dict:
    """`{"class_path", "init_args"}` of a module or data module, as LightningCLI configs name them."""
    args = {k: v for k, v in hparams.items() if not k.startswith("_")}
    return {"class_path": f"{type(obj).__module__}.{type(obj).__name__}", "init_args": args}
