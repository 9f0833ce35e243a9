"""The shared base of the modules: optimizer groups and schedule, train mode in fit, the declared hooks."""

import lightning as L
import torch

from src.data import ClassificationDataModule
from src.models import SequenceClassifier


class FakeTrainer:
    estimated_stepping_batches = 10
    callbacks = []  # no TimeBudget: the schedule follows steps


def optimizers(module: SequenceClassifier) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler]:
    module.trainer = FakeTrainer()  # configure_optimizers reads only the step count and the callbacks
    out = module.configure_optimizers()
    return out["optimizer"], out["lr_scheduler"]["scheduler"]


def test_no_weight_decay_on_biases_and_norms_and_fused_adamw(tiny_bert):
    optimizer, _ = optimizers(SequenceClassifier(tiny_bert, weight_decay=0.1))
    decay, no_decay = optimizer.param_groups
    assert decay["weight_decay"] == 0.1 and all(p.ndim == 2 for p in decay["params"])
    assert no_decay["weight_decay"] == 0.0 and no_decay["params"] and all(p.ndim == 1 for p in no_decay["params"])
    assert optimizer.defaults["fused"] is True


def test_linear_warmup_then_linear_decay_to_zero(tiny_bert):
    optimizer, scheduler = optimizers(SequenceClassifier(tiny_bert, learning_rate=1.0, warmup_ratio=0.2))
    lrs = []
    for _ in range(10):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert lrs[0] < lrs[1] < lrs[2] == 1.0  # warm-up over 2 steps reaches the peak
    assert all(a > b for a, b in zip(lrs[2:], lrs[3:]))  # then decays
    assert optimizer.param_groups[0]["lr"] == 0.0


class TrainModeProbe(L.Callback):
    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self.training = pl_module.model.training


def test_fit_trains_in_train_mode_although_from_pretrained_returns_eval_mode(tiny_bert, imdb_dir, tmp_path):
    module = SequenceClassifier(tiny_bert)
    assert not module.model.training  # as from_pretrained returns it
    data = ClassificationDataModule(tokenizer=tiny_bert, source=str(imdb_dir), val_size=16, max_length=32,
                                    cache_dir=str(tmp_path / "c"))
    probe = TrainModeProbe()
    L.Trainer(accelerator="cpu", max_steps=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
              enable_model_summary=False, callbacks=[probe], num_sanity_val_steps=0).fit(module, datamodule=data)
    assert probe.training  # dropout is on while training


def test_an_export_rebuilds_the_module_from_its_folder(tiny_bert, tmp_path):
    """What HFExport saves (export_model) and the settings it writes beside it (export_hparams) build the same
    module again around the saved folder: the same classes, the same outputs."""
    module = SequenceClassifier(tiny_bert, label_names=["bad", "good"]).eval()
    module.export_model().save_pretrained(tmp_path)
    module.tokenizer.save_pretrained(tmp_path)
    hparams = module.export_hparams()
    assert hparams["label_names"] == ["bad", "good"] and not [k for k in hparams if k.startswith("_")]
    again = SequenceClassifier(**{**hparams, "model_name": str(tmp_path)}).eval()
    ids = torch.tensor([[101, 2204, 2143, 102]])
    assert torch.equal(again.model(input_ids=ids).logits, module.model(input_ids=ids).logits)
