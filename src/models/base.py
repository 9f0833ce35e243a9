"""The base of the Hugging Face LightningModules: the model and its tokenizer, AdamW with linear warm-up and
decay (`transformers.get_scheduler`), and `export_model`, the hook HFExport calls for what it saves. `OnePassFit` is
for modules whose fit trains nothing by gradient steps (zero-shot calibration, the linear probe).

A new approach is a subclass in its own file: it loads its model in `load_model` and defines `_common_step`, which
the training, validation and test steps call with their stage.

To run: python -m src fit --config configs/bert_imdb.yaml
"""

import lightning as L
import torch
from torch.optim.lr_scheduler import LambdaLR
from torchmetrics import Metric
from transformers import PreTrainedModel, get_scheduler

from src.errors import UserError, check_ranges
from src.models.metrics import WeightedMean
from src.pretrained import load_tokenizer

EVAL_STAGES = ("val", "test")


def check_classes(module: L.LightningModule) -> None:
    """A `UserError` when a classifier's `label_names` and its data's `num_labels` count different classes: the loss
    would fail on the first review of a class the model lacks (an index error), or a class would never be seen."""
    try:
        data = module.trainer.datamodule
    except RuntimeError:  # a module used outside a Trainer
        return
    names, classes = module.hparams.get("label_names"), data.hparams.get("num_labels") if data is not None else None
    if names is not None and classes is not None and len(names) != classes:
        raise UserError(f"model.label_names has {len(names)} names and data.num_labels is {classes}; fix: a name for "
                        "each class of the data")


class HFModule(L.LightningModule):
    """A Hugging Face model (`self.model`) and its tokenizer, trained with AdamW."""

    def __init__(
        self,
        model_name: str,
        learning_rate: float = 5e-5,
        weight_decay: float = 0.0,
        warmup_ratio: float = 0.0,
    ):
        """
        Args:
            model_name: hub id, local folder, .gguf file, or packaged offline model (see src/pretrained.py).
            learning_rate: peak AdamW learning rate.
            weight_decay: AdamW weight decay (none on biases and norm weights).
            warmup_ratio: fraction of the training steps (of the time budget, with `TimeBudget`) spent warming the
                learning rate up from 0.
        """
        super().__init__()
        # Else torch fails at the optimizer, after the run's folder is made, or the schedule is silently off.
        check_ranges("model", ("learning_rate", learning_rate, learning_rate > 0, "above 0"),
                     ("weight_decay", weight_decay, weight_decay >= 0, "0 or more"),
                     ("warmup_ratio", warmup_ratio, 0 <= warmup_ratio < 1, "from 0 to below 1"))
        self.save_hyperparameters()  # the subclass's arguments too: they are read in `load_model`
        self.tokenizer = load_tokenizer(model_name)
        self.model = self.load_model()
        self.losses = torch.nn.ModuleDict({stage: WeightedMean() for stage in EVAL_STAGES})

    def load_model(self) -> PreTrainedModel:
        """The Hugging Face model, built from `self.hparams`."""
        raise NotImplementedError

    def _common_step(self, batch: dict, stage: str):
        """The loss of a batch (`stage` is train, val or test); evaluation stages update and log their metrics."""
        raise NotImplementedError

    def training_step(self, batch: dict, batch_idx: int):
        return self._common_step(batch, "train")

    def validation_step(self, batch: dict, batch_idx: int):
        return self._common_step(batch, "val")

    def test_step(self, batch: dict, batch_idx: int):
        return self._common_step(batch, "test")

    def log_train_loss(self, loss: torch.Tensor) -> None:
        """Log `train/loss` (the step's loss) on the steps the logger writes, every `log_every_n_steps`, as a CPU
        tensor: its one copy to the host is on those steps.

        Why: Lightning converts every progress-bar value to a number after every step, which for a value on a GPU is
        a host sync per step (the last value logged stays cached); and each `self.log` call is Python work (1.2 ms
        under cProfile in benchmarks/step_overhead.py's fit), for values the logger would not write.
        """
        try:
            trainer = self.trainer
        except RuntimeError:  # a bare step, outside a Trainer: nothing to log to
            return
        every = trainer.log_every_n_steps
        # The same test as Lightning's logger connector: during a step, `global_step` counts the steps done before it.
        if every and ((self.global_step + 1) % every == 0 or trainer.should_stop):
            self.log("train/loss", loss.detach().cpu(), prog_bar=True)

    def update_loss(self, stage: str, loss: torch.Tensor, weight: int) -> None:
        """Count a batch into `{stage}/loss`, the epoch's mean: `loss` is the mean over `weight` examples or tokens."""
        self.losses[stage].update(loss, weight=weight)

    def epoch_metrics(self, stage: str) -> dict[str, Metric]:
        """The Metric objects that `_common_step` updates in an evaluation stage, by the names they are logged under."""
        return {f"{stage}/loss": self.losses[stage]}

    def log_epoch_metrics(self, stage: str) -> None:
        """Log `epoch_metrics` once, at the epoch's end: Metric objects, not numbers, so Lightning computes them over
        the whole epoch (and all processes).

        Why not in each step, as is common: each `self.log` of a Metric is most of a millisecond of Python (Lightning
        moves every state of it to the device again, AUROC's growing list of the epoch's scores included), which per
        batch made this project's evaluation loop cost 1.6x a plain loop's, 1.26x without (benchmarks/eval_overhead.py).
        """
        self.log_dict(self.epoch_metrics(stage), prog_bar=stage == "val")

    def setup(self, stage: str) -> None:
        check_classes(self)
        if stage == "fit":  # before the model summary: from_pretrained returns eval mode, and Lightning keeps it
            self.model.train()

    def on_validation_epoch_start(self) -> None:
        self._reset_metrics()

    def on_test_epoch_start(self) -> None:
        self._reset_metrics()

    def on_validation_epoch_end(self) -> None:
        self.log_epoch_metrics("val")

    def on_test_epoch_end(self) -> None:
        self.log_epoch_metrics("test")

    def _reset_metrics(self) -> None:
        # Metric states are made in the current grad mode: `validate` runs in inference mode, validation inside
        # `fit` does not, and a state made in inference mode cannot be updated outside it.
        for metric in self.modules():
            if isinstance(metric, Metric):
                metric.reset()

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        # A frozen model (zero-shot, linear probe) reloads from `model_name`: its checkpoint keeps what was fitted only
        # (kilobytes, not the model's weights); on_load_checkpoint puts the loaded weights back for strict loading.
        if not any(p.requires_grad for p in self.model.parameters()):
            checkpoint["state_dict"] = {k: v for k, v in checkpoint["state_dict"].items() if not k.startswith("model.")}

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        if not any(k.startswith("model.") for k in checkpoint["state_dict"]):
            checkpoint["state_dict"].update({f"model.{k}": v for k, v in self.model.state_dict().items()})

    def export_model(self) -> PreTrainedModel:
        """The model that `HFExport` saves as a Hugging Face folder."""
        return self.model

    def export_hparams(self) -> dict:
        """The hyperparameters that rebuild this module around its exported folder (`training_run.json`)."""
        return {k: v for k, v in self.hparams.items() if not k.startswith("_")}

    def configure_optimizers(self) -> dict:
        hp = self.hparams
        params = [p for p in self.model.parameters() if p.requires_grad]
        groups = [
            {"params": [p for p in params if p.ndim >= 2], "weight_decay": hp.weight_decay},
            {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0},  # biases and norm weights
        ]
        # Fused: one kernel for all parameters; on a 2-core CPU a MiniLM step's update drops from 72 to 16 ms.
        fused = all(p.device.type in ("cpu", "cuda") for p in params)
        optimizer = torch.optim.AdamW(groups, lr=hp.learning_rate, fused=fused)
        from src.callbacks.time_budget import TimeBudget  # here: the callbacks package imports this module

        budget = next((cb for cb in self.trainer.callbacks if isinstance(cb, TimeBudget)), None)
        if budget is not None:  # warm-up and decay by the time spent, not by steps (src/callbacks/time_budget.py)
            scheduler = LambdaLR(optimizer, lambda _: budget.lr_factor(hp.warmup_ratio))
        else:
            total = self.trainer.estimated_stepping_batches
            scheduler = get_scheduler("linear", optimizer, num_warmup_steps=int(hp.warmup_ratio * total),
                                      num_training_steps=total)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}


class OnePassFit:
    """Mixed into a module whose `fit` trains nothing by gradient steps: one pass over the training data `collect`s
    tensors from each batch, and `solve` gets them, gathered from every process, once: before the first validation
    (Lightning validates at an epoch's end before `on_train_epoch_end`) or at the epoch's end. The model stays frozen
    and in eval mode; there is no optimizer."""

    def collect(self, batch: dict) -> tuple[torch.Tensor, ...]:
        raise NotImplementedError

    def solve(self, *collected: torch.Tensor) -> None:
        raise NotImplementedError

    def setup(self, stage: str) -> None:  # not HFModule.setup: no train mode
        check_classes(self)
        self.automatic_optimization = False

    def training_step(self, batch: dict, batch_idx: int) -> None:
        self.__dict__.setdefault("_collected", []).append(self.collect(batch))

    def on_validation_epoch_start(self) -> None:
        super().on_validation_epoch_start()
        self._solve_collected()

    def on_train_epoch_end(self) -> None:
        self._solve_collected()

    def _solve_collected(self) -> None:
        collected = self.__dict__.pop("_collected", None)
        if collected:
            parts = [torch.cat(part) for part in zip(*collected)]
            self.solve(*(self.all_gather(x).reshape(-1, *x.shape[1:]) for x in parts))

    def configure_optimizers(self):
        return None
