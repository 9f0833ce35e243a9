import lightning as L
import pytest
import torch

from src.data import ClassificationDataModule
from src.models import SequenceClassifier


@pytest.fixture
def data(tiny_bert, imdb_dir, tmp_path) -> ClassificationDataModule:
    return ClassificationDataModule(tokenizer=tiny_bert, source=str(imdb_dir), val_size=24, batch_size=8,
                                    eval_batch_size=5, max_length=64, cache_dir=str(tmp_path / "cache"))


def trainer(tmp_path, **kwargs) -> L.Trainer:
    return L.Trainer(accelerator="cpu", logger=False, enable_checkpointing=False, enable_progress_bar=False,
                     enable_model_summary=False, default_root_dir=tmp_path, **kwargs)


def test_label_names_set_the_head(tiny_bert):
    model = SequenceClassifier(tiny_bert, label_names=["neg", "pos", "mixed"])
    assert model.model.config.id2label == {0: "neg", 1: "pos", 2: "mixed"}
    assert model.model.classifier.out_features == 3


def test_training_lowers_the_loss(tiny_bert, data, tmp_path):
    L.seed_everything(0)
    model = SequenceClassifier(tiny_bert, learning_rate=3e-3, warmup_ratio=0.0)
    data.prepare_data()
    data.setup("fit")
    batch = next(iter(data.train_dataloader()))
    model.eval()
    with torch.no_grad():
        before = torch.nn.functional.cross_entropy(model(batch), batch["labels"]).item()
    model.train()
    trainer(tmp_path, max_epochs=8).fit(model, datamodule=data)
    model.eval()
    with torch.no_grad():
        after = torch.nn.functional.cross_entropy(model(batch), batch["labels"]).item()
    assert after < before * 0.7


def test_validation_metrics_cover_the_whole_epoch(tiny_bert, data, tmp_path):
    """Logged metrics equal those computed on all validation predictions at once (5 uneven batches)."""
    from torchmetrics.functional.classification import binary_accuracy, binary_auroc, binary_f1_score

    model = SequenceClassifier(tiny_bert)
    (logged,) = trainer(tmp_path).validate(model, datamodule=data)
    model.eval()
    probs, labels, losses = [], [], []
    with torch.no_grad():
        for batch in data.val_dataloader():
            logits = model(batch)
            probs.append(logits.softmax(-1)[:, 1])
            labels.append(batch["labels"])
            losses.append(torch.nn.functional.cross_entropy(logits, batch["labels"], reduction="sum"))
    probs, labels = torch.cat(probs), torch.cat(labels)
    assert logged["val/acc"] == pytest.approx(binary_accuracy(probs, labels).item(), abs=1e-6)
    assert logged["val/f1"] == pytest.approx(binary_f1_score(probs, labels).item(), abs=1e-6)
    assert logged["val/auroc"] == pytest.approx(binary_auroc(probs, labels).item(), abs=1e-6)
    assert logged["val/loss"] == pytest.approx((sum(losses) / len(labels)).item(), abs=1e-5)


def test_predict_step_returns_labels_and_probabilities(tiny_bert):
    model = SequenceClassifier(tiny_bert).eval()
    batch = {"input_ids": torch.tensor([[101, 2307, 102, 0], [101, 6659, 2143, 102]]),
             "attention_mask": torch.tensor([[1, 1, 1, 0], [1, 1, 1, 1]]), "idx": torch.tensor([3, 4]),
             "text": ["good", "awful film"]}
    out = model.predict_step(batch, 0)
    assert out["id"] == [3, 4] and out["text"] == ["good", "awful film"]
    probs = torch.tensor(out["probabilities"])
    assert torch.allclose(probs.sum(-1), torch.ones(2)) and out["label"] == probs.argmax(-1).tolist()
    assert out["label_name"] == [["negative", "positive"][i] for i in out["label"]]


def test_soft_targets_train_on_the_teachers_probabilities(tiny_bert):
    model = SequenceClassifier(tiny_bert)
    batch = {"input_ids": torch.tensor([[101, 2023, 102], [101, 2045, 102]]), "attention_mask": torch.ones(2, 3).long(),
             "labels": torch.tensor([[0.2, 0.8], [1.0, 0.0]])}
    loss = model.training_step(batch, 0)["loss"]
    log_probs = model(batch).float().log_softmax(-1)
    assert loss.item() == pytest.approx(-(batch["labels"] * log_probs).sum(1).mean().item(), rel=1e-5)



class Recording(SequenceClassifier):
    """Notes every step's loss and every `self.log` call, with the step it happened at."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.step_losses, self.logged = {}, []

    def training_step(self, batch, batch_idx):
        out = super().training_step(batch, batch_idx)
        self.step_losses[self.global_step] = out["loss"].item()
        return out

    def log(self, name, value, **kwargs):
        self.logged.append((self.global_step, name, value))
        super().log(name, value, **kwargs)


def test_the_training_loss_is_logged_on_the_steps_the_logger_writes_with_that_steps_value(tiny_bert, data, tmp_path):
    """`self.log` is Python work every call and, for a progress-bar value on a GPU, a host sync every step: the loss is
    logged every `log_every_n_steps` steps only, as a CPU tensor holding that step's loss."""
    model = Recording(tiny_bert)
    trainer(tmp_path, max_steps=7, log_every_n_steps=3, limit_val_batches=0).fit(model, datamodule=data)
    train = [(step, value) for step, name, value in model.logged if name == "train/loss"]
    assert [step for step, _ in train] == [2, 5]  # during a step, global_step counts those before: steps 3 and 6
    assert all(value.device.type == "cpu" for _, value in train)
    assert [value.item() for _, value in train] == pytest.approx([model.step_losses[2], model.step_losses[5]])
