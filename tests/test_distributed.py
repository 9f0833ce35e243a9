"""DDP with 2 CPU processes (gloo) against one process at the same global batch size, through `python -m src`.

Dropout is off, so the only differences are the order of floating-point sums.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from tests.conftest import tiny_args

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
