"""Self-training (noisy student) as the study runs it: each round's student learns from the previous round's
predictions on unlabelled reviews and from the same N human labels, then labels the unlabelled reviews for the next."""

import json

import pytest

from src.cli import main
from src.data.sources import load_source
from tests.conftest import tiny_args


def test_self_training_rounds_pass_labels_on_and_keep_the_human_labels(tiny_bert, imdb_dir, tmp_path):
    unlabelled = load_source(str(imdb_dir))[0]["unsupervised"]["text"]
    labels = tmp_path / "teacher" / "predictions.jsonl"  # round 0: a teacher's probabilities
    labels.parent.mkdir()
    labels.write_text("".join(json.dumps({"text": t, "probabilities": [0.3, 0.7] if i % 2 else [0.6, 0.4]}) + "\n"
                              for i, t in enumerate(unlabelled)))
    humans = None
    for round_ in (1, 2):
        root = tmp_path / f"round{round_}"
        args = tiny_args(tiny_bert, imdb_dir, root, data__label_budget="4", data__label_seed="1",
                         data__soft_labels=str(labels), trainer__max_steps="2", trainer__limit_val_batches="0")
        args[2:2] = ["--config", "configs/studies/few_labels.yaml"]
        cli = main(["fit", *args, "--trainer.enable_checkpointing", "true",
                    "--trainer.callbacks+=src.callbacks.ResumeCheckpoint"])
        train, data = cli.datamodule.splits["train"], cli.datamodule
        previous = [json.loads(line) for line in labels.read_text().splitlines()]
        # The human labels first, the same 4 in every round; then the previous round's reviews and probabilities.
        assert all(sorted(row) == [0.0, 1.0] for row in train["label"][:4])
        humans = humans or (train["input_ids"][:4], train["label"][:4])
        assert (train["input_ids"][:4], train["label"][:4]) == humans
        assert train["input_ids"][4:] == data.predict_ids([r["text"] for r in previous])
        assert train["label"][4:] == [pytest.approx(r["probabilities"]) for r in previous]
        (ckpt,) = root.glob("runs/*/version_0/checkpoints/last.ckpt")
        out = root / "student"
        main(["predict", *args, "--ckpt_path", str(ckpt), "--data.init_args.predict_split", "unsupervised",
              "--data.init_args.limit_predict", "16", "--trainer.callbacks+=src.callbacks.PredictionWriter",
              f"--trainer.callbacks.init_args.output_dir={out}"])
        labels = out / "predictions.jsonl"  # the next round's labels: this student's
        rows = [json.loads(line) for line in labels.read_text().splitlines()]
        assert sorted(r["text"] for r in rows) == sorted(unlabelled)
        assert [r["probabilities"] for r in rows] != [r["probabilities"] for r in previous]
