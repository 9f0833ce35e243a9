"""Crash and resume, preemption, reproducibility and the non-finite-loss guard, on real `python -m src fit` runs."""

import hashlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import lightning as L
import pytest
import torch
import yaml
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from src.callbacks import StopOnNonFiniteLoss
from src.cli import main
from src.errors import UserError
from tests.conftest import tiny_args

STEPS_PER_EPOCH = 10  # 80 training reviews (96 minus 16 held out), 8 per batch


class Crash(L.Callback):
    """Sends `signum` to its own process after optimizer step `at_step` (9: kill -9, 15: preemption)."""

    def __init__(self, at_step: int, signum: int):
        self.at_step, self.signum = at_step, signum

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if trainer.global_step == self.at_step:
            os.kill(os.getpid(), self.signum)


class Record(L.Callback):
    """Appends (step, hash of the batch's token ids, loss) to a JSON-lines file after every training step."""

    def __init__(self, path: str):
        self.path = path

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        digest = hashlib.sha256(batch["input_ids"].numpy().tobytes()).hexdigest()[:12]
        with open(self.path, "a") as f:
            f.write(json.dumps([trainer.global_step, digest, outputs["loss"].item()]) + "\n")


def fit_args(tiny_bert, imdb_dir, root: Path, *callbacks: dict) -> list[str]:
    overlay = root / "callbacks.yaml"
    overlay.write_text(yaml.safe_dump({"trainer": {"callbacks": [
        {"class_path": "lightning.pytorch.callbacks.ModelCheckpoint",
         "init_args": {"monitor": "val/acc", "mode": "max", "filename": "best"}},
        {"class_path": "src.callbacks.ResumeCheckpoint", "init_args": {"every_n_train_steps": 3, "min_interval_s": 0}},
        {"class_path": "tests.test_resume.Record", "init_args": {"path": str(root / "steps.jsonl")}},
        *callbacks,
    ]}}))
    return ["fit", *tiny_args(tiny_bert, imdb_dir, root, model__init_args__learning_rate="3e-3", data__batch_size=8,
                              trainer__max_epochs=2), "--config", str(overlay)]


def run(args: list[str]) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(Path.cwd())}
    return subprocess.run([sys.executable, "-m", "src", *args], capture_output=True, text=True, env=env, timeout=300)


def final_metrics(run_dir: Path) -> dict[str, float]:
    events = EventAccumulator(str(run_dir))
    events.Reload()
    return {tag: max(events.Scalars(tag), key=lambda e: e.step).value for tag in ("val/loss", "val/acc")}


def steps(root: Path) -> dict[int, tuple[str, float]]:
    rows = map(json.loads, (root / "steps.jsonl").read_text().splitlines())
    return {step: (digest, loss) for step, digest, loss in rows}


@pytest.fixture(scope="module")
def uninterrupted(tiny_bert, imdb_dir, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("uninterrupted")
    proc = run(fit_args(tiny_bert, imdb_dir, root))
    assert proc.returncode == 0, proc.stderr[-2000:]
    return root


@pytest.mark.slow
def test_kill_9_mid_epoch_then_resume_matches_the_uninterrupted_run(tiny_bert, imdb_dir, tmp_path, uninterrupted):
    crash = {"class_path": "tests.test_resume.Crash", "init_args": {"at_step": 7, "signum": int(signal.SIGKILL)}}
    killed = run(fit_args(tiny_bert, imdb_dir, tmp_path, crash))
    assert killed.returncode == -signal.SIGKILL
    (run_dir,) = (tmp_path / "runs" / "bert_imdb").iterdir()
    last = run_dir / "checkpoints" / "last.ckpt"
    state = torch.load(last, weights_only=True)  # also: loadable without unpickling arbitrary objects
    assert state["global_step"] == 6 and state["epoch"] == 0  # mid-epoch: 6 of 10 batches
    assert not list(run_dir.glob("checkpoints/*.tmp"))

    resumed = run(fit_args(tiny_bert, imdb_dir, tmp_path) + ["--ckpt_path", "last"])
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert [p.name for p in (tmp_path / "runs" / "bert_imdb").iterdir()] == [run_dir.name]  # same run folder
    assert torch.load(last, weights_only=True)["global_step"] == 2 * STEPS_PER_EPOCH
    expected, got = steps(uninterrupted), steps(tmp_path)
    # Steps 7..20 were trained after the resume: the same batches, in the same order, with the same losses.
    assert sorted(got) == list(range(1, 2 * STEPS_PER_EPOCH + 1))
    for step in range(7, 2 * STEPS_PER_EPOCH + 1):
        assert got[step][0] == expected[step][0], f"step {step} saw another batch"
        assert got[step][1] == pytest.approx(expected[step][1], abs=1e-6), f"step {step}"
    (reference,) = (uninterrupted / "runs" / "bert_imdb").iterdir()
    assert final_metrics(run_dir) == pytest.approx(final_metrics(reference), abs=1e-6)


@pytest.mark.slow
def test_sigterm_saves_a_checkpoint_before_exit(tiny_bert, imdb_dir, tmp_path):
    crash = {"class_path": "tests.test_resume.Crash", "init_args": {"at_step": 7, "signum": int(signal.SIGTERM)}}
    proc = run(fit_args(tiny_bert, imdb_dir, tmp_path, crash))
    assert proc.returncode == 143
    assert "Traceback" not in proc.stderr and "--ckpt_path last" in proc.stderr.strip().splitlines()[-1]
    (last,) = (tmp_path / "runs" / "bert_imdb").glob("*/checkpoints/last.ckpt")
    assert torch.load(last, weights_only=True)["global_step"] == 7  # not the periodic save at step 6


@pytest.mark.slow
def test_same_config_and_seed_give_identical_metrics(tiny_bert, imdb_dir, tmp_path, uninterrupted):
    proc = run(fit_args(tiny_bert, imdb_dir, tmp_path))
    assert proc.returncode == 0, proc.stderr[-2000:]
    ((first,), (second,)) = ((root / "runs" / "bert_imdb").iterdir() for root in (uninterrupted, tmp_path))
    assert final_metrics(first) == final_metrics(second)
    assert steps(uninterrupted) == steps(tmp_path)


def test_resume_with_nothing_to_resume_starts_a_new_run(tiny_bert, imdb_dir, tmp_path):
    args = fit_args(tiny_bert, imdb_dir, tmp_path) + ["--ckpt_path", "last", "--trainer.max_epochs", "1"]
    main(args)
    assert len(list((tmp_path / "runs" / "bert_imdb").glob("*/checkpoints/last.ckpt"))) == 1


def test_resume_finds_the_run_of_a_named_version(tiny_bert, imdb_dir, tmp_path):
    # A study's prerequisite names its run folder (`--trainer.logger.init_args.version mlm`): a resumed fit continues
    # there, not in a new folder.
    named = fit_args(tiny_bert, imdb_dir, tmp_path) + ["--trainer.logger.init_args.version", "mlm"]
    main(named + ["--trainer.max_epochs", "1"])
    main(named + ["--ckpt_path", "last"])  # max_epochs 2: one more epoch from where the first fit ended
    assert [p.name for p in (tmp_path / "runs" / "bert_imdb").iterdir()] == ["mlm"]
    last = tmp_path / "runs" / "bert_imdb" / "mlm" / "checkpoints" / "last.ckpt"
    assert torch.load(last, weights_only=True)["global_step"] == 2 * STEPS_PER_EPOCH
    assert sorted(steps(tmp_path)) == list(range(1, 2 * STEPS_PER_EPOCH + 1))  # no step trained twice


class Exploding(L.LightningModule):
    """A linear model whose loss turns NaN at optimizer step 3."""

    def __init__(self):
        super().__init__()
        self.layer = torch.nn.Linear(4, 1)

    def training_step(self, batch, batch_idx):
        loss = self.layer(batch[0]).pow(2).mean()
        return loss * float("nan") if self.global_step == 3 else loss

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def test_a_nan_loss_stops_the_run_before_the_weights_break(tmp_path):
    from src.callbacks import ResumeCheckpoint

    data = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.randn(64, 4)), batch_size=4)
    resume = ResumeCheckpoint(every_n_train_steps=1, filename="last", min_interval_s=0)
    trainer = L.Trainer(accelerator="cpu", max_epochs=1, logger=False, enable_progress_bar=False,
                        default_root_dir=tmp_path, callbacks=[StopOnNonFiniteLoss(), resume])
    model = Exploding()
    with pytest.raises(UserError, match=r"training loss is nan at step 3 \(epoch 0, batch 3\)"):
        trainer.fit(model, data)
    assert torch.isfinite(model.layer.weight).all()
    saved = torch.load(resume.path, weights_only=True)
    assert saved["global_step"] == 3 and all(torch.isfinite(v).all() for v in saved["state_dict"].values())


class Clock(L.Callback):
    """Each training step takes 25 s of a fake clock (the resume callback's `monotonic`); records the steps saved at."""

    def __init__(self, monkeypatch):
        self.now, self.saved_at = 0.0, []
        monkeypatch.setattr("src.callbacks.checkpointing.monotonic", lambda: self.now)

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self.now += 25.0

    def on_save_checkpoint(self, trainer, pl_module, checkpoint):
        self.saved_at.append(trainer.global_step)


class Steady(Exploding):
    def training_step(self, batch, batch_idx):
        return self.layer(batch[0]).pow(2).mean()


def test_step_saves_wait_for_the_minimum_interval(monkeypatch, tmp_path):
    from src.callbacks import ResumeCheckpoint

    # 16 steps of 25 s; considered every 2 steps, saved once 60 s have passed: at 4 (100 s), 8, 12, 16, then epoch end.
    data = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.randn(64, 4)), batch_size=4)
    clock = Clock(monkeypatch)
    resume = ResumeCheckpoint(every_n_train_steps=2, filename="last", min_interval_s=60)
    trainer = L.Trainer(accelerator="cpu", max_epochs=1, logger=False, enable_progress_bar=False,
                        default_root_dir=tmp_path, callbacks=[clock, resume])
    trainer.fit(Steady(), data)
    assert clock.saved_at == [4, 8, 12, 16]  # the epoch's end at 16 is the step-16 save, not written twice
    assert torch.load(resume.path, weights_only=True)["global_step"] == 16
