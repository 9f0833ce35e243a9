"""DDP with 2 CPU processes (gloo) against one process at the same global batch size, through `python -m src`.

Dropout is off, so the only differences are the order of floating-point sums. Last, the resume checkpoint's
collective save and the time budget under DDP, on a plain Lightning Trainer (2 spawned processes, clocks that
disagree).
"""

import json
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import lightning as L
import pytest
import torch
from lightning.pytorch.strategies import DDPStrategy
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from src.callbacks import ResumeCheckpoint, TimeBudget, checkpointing
from tests.conftest import tiny_args
from tests.test_resume import Steady

pytestmark = pytest.mark.slow  # starts processes

NO_DROPOUT = json.dumps({"hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0})


def run(sub: str, tiny_bert: str, imdb_dir: Path, root: Path, name: str, processes: int, *extra: str):
    args = [sub, *tiny_args(
        tiny_bert, imdb_dir, root, model__init_args__config_overrides=NO_DROPOUT,
        model__init_args__learning_rate="3e-3", data__batch_size=8 // processes, trainer__logger__init_args__name=name,
        trainer__max_epochs=1, trainer__accelerator="cpu", trainer__devices=processes,
        trainer__strategy="ddp" if processes > 1 else "auto", trainer__log_every_n_steps=None,
    ), *extra]
    args[args.index("--trainer.logger.init_args.save_dir") + 1] = str(root)
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run([sys.executable, "-m", "src", *args], capture_output=True, text=True, env=env, timeout=400)
    assert proc.returncode == 0, proc.stderr[-3000:]
    if "--ckpt_path" in extra:  # validate/predict of a checkpoint log beside its run: <run>/<sub>/version_N
        ckpt = Path(extra[list(extra).index("--ckpt_path") + 1])
        run_dir = max((ckpt.parents[1] / sub).iterdir(), key=lambda p: p.stat().st_mtime)
    else:
        (run_dir,) = (root / name).iterdir()
    if sub == "predict":
        return run_dir, [json.loads(line) for line in (run_dir / "predictions.jsonl").read_text().splitlines()]
    events = EventAccumulator(str(run_dir))
    events.Reload()
    return run_dir, {tag: events.Scalars(tag)[-1].value for tag in ("val/loss", "val/acc", "val/auroc")}


@pytest.fixture(scope="module")
def single(tiny_bert, imdb_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("ddp")
    return root, *run("fit", tiny_bert, imdb_dir, root, "single", 1)


def test_ddp_fit_matches_one_process_and_tokenizes_once(tiny_bert, imdb_dir, single):
    root, _, expected = single
    _, got = run("fit", tiny_bert, imdb_dir, root, "ddp", 2)
    assert got == pytest.approx(expected, abs=1e-4)
    assert len(list((root / "cache" / "tokenized").glob("train-*"))) == 1  # one cache, shared by both processes


def test_ddp_validate_syncs_metrics_across_processes(tiny_bert, imdb_dir, single):
    root, run_dir, _ = single
    ckpt = str(run_dir / "checkpoints" / "last.ckpt")
    _, one = run("validate", tiny_bert, imdb_dir, root, "validate_single", 1, "--ckpt_path", ckpt)
    _, two = run("validate", tiny_bert, imdb_dir, root, "validate_ddp", 2, "--ckpt_path", ckpt)
    # Each process sees half of the 16 reviews: unsynced metrics would differ from the single process's.
    assert two == pytest.approx(one, abs=1e-6)


def test_ddp_predict_gathers_every_row_in_input_order(tiny_bert, imdb_dir, single):
    root, run_dir, _ = single
    texts = json.dumps([f"review {i}: " + "great " * (i % 7) + "dull " * (i % 5) for i in range(13)])
    common = ["--ckpt_path", str(run_dir / "checkpoints" / "last.ckpt"), "--data.predict_texts", texts]
    _, one = run("predict", tiny_bert, imdb_dir, root, "predict_single", 1, *common)
    _, two = run("predict", tiny_bert, imdb_dir, root, "predict_ddp", 2, *common)
    assert [r["id"] for r in two] == list(range(13))  # 13 rows over 2 processes: padded, then deduplicated
    assert [r["label"] for r in two] == [r["label"] for r in one]
    for a, b in zip(one, two):
        assert a["probabilities"] == pytest.approx(b["probabilities"], abs=1e-6)


class SkewedClock(L.Callback):
    """Gives each DDP process its own fake clock for the resume checkpoint and the time budget: rank 0's runs 25 s a
    step, rank 1's stands still. Writes what its process did to `<folder>/rank<R>.json`: the steps it saved a
    checkpoint at, and the budget's progress at every step (which sets the learning rate)."""

    def __init__(self, folder: str):
        self.folder, self.now, self.saved_at, self.progress = folder, 0.0, [], []

    def setup(self, trainer, pl_module, stage):
        # Patched here, in the spawned process: a pytest monkeypatch stays in the parent.
        checkpointing.monotonic = lambda: self.now
        (self.budget,) = (cb for cb in trainer.callbacks if isinstance(cb, TimeBudget))
        self.budget.clock, self.budget.start = (lambda: self.now), 0.0

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self.now += 25.0 if trainer.global_rank == 0 else 0.0  # before the budget reads it: listed first

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.progress.append(round(self.budget.progress, 6))

    def on_save_checkpoint(self, trainer, pl_module, checkpoint):
        self.saved_at.append(trainer.global_step)  # every process builds the checkpoint; rank 0 writes it

    def on_fit_end(self, trainer, pl_module):
        record = {"saved_at": self.saved_at, "progress": self.progress}
        Path(self.folder, f"rank{trainer.global_rank}.json").write_text(json.dumps(record))


def test_ddp_resume_saves_and_time_budget_follow_rank_zeros_clock(tmp_path):
    # Both callbacks act on rank 0's clock, broadcast: the step save is a collective (a barrier inside
    # `trainer.save_checkpoint`) and so is every training step; processes whose clocks disagree must save and stop at
    # the same steps, or one waits in a barrier while the other all-reduces gradients.
    # 128 samples over 2 processes, 4 a batch: 16 steps each. Saves considered every 2 steps, due 60 s after the last;
    # a budget of 5 minutes, 1% kept back: 297 s, spent at step 12 (300 s on rank 0's clock).
    data = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.randn(128, 4)), batch_size=4)
    callbacks = [SkewedClock(str(tmp_path)), ResumeCheckpoint(every_n_train_steps=2, min_interval_s=60),
                 TimeBudget(minutes=5)]
    strategy = DDPStrategy(start_method="spawn", timeout=timedelta(seconds=60))  # a mismatch fails instead of hanging
    trainer = L.Trainer(accelerator="cpu", devices=2, strategy=strategy, max_epochs=1, logger=False,
                        enable_progress_bar=False, enable_model_summary=False, default_root_dir=tmp_path,
                        callbacks=callbacks)
    trainer.fit(Steady(), data)  # a linear model, SGD
    rank0, rank1 = (json.loads((tmp_path / f"rank{rank}.json").read_text()) for rank in (0, 1))
    assert rank0["saved_at"] == [4, 8, 12]  # the budget's stop at 12 ends the epoch: its save is step 12's
    assert rank0["progress"] == [round(min(1, 25 * k / 297), 6) for k in range(1, 13)]
    assert rank1 == rank0  # alone, rank 1 would save only at the epoch's end, at progress 0, and never stop
