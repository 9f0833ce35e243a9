"""End to end through `python -m src`: fit, validate, test and predict on a tiny model and tiny data."""

import json
import os
import subprocess
import sys
import warnings

import lightning as L
import pytest
import torch
import yaml
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from src import cli
from src.cli import main
from tests.conftest import entry, predict_rows, tiny_args


def test_fit_writes_config_checkpoints_and_tensorboard_scalars(fitted):
    run, _ = fitted
    assert (run / "config.yaml").is_file()
    ckpts = sorted(p.name for p in (run / "checkpoints").iterdir())
    assert "last.ckpt" in ckpts and any(name.startswith("best-step") for name in ckpts)
    events = EventAccumulator(str(run))
    events.Reload()
    tags = set(events.Tags()["scalars"])
    assert {"train/loss", "val/loss", "val/acc", "val/f1", "val/auroc"} <= tags
    assert any(tag.startswith("lr-AdamW") for tag in tags)
    assert len(events.Scalars("val/acc")) == 2  # one per epoch


def test_validate_test_and_predict_from_a_checkpoint(fitted, tmp_path):
    run, args = fitted
    ckpt = str(run / "checkpoints" / "last.ckpt")
    main(["validate", *args, "--ckpt_path", ckpt])
    main(["test", *args, "--ckpt_path", ckpt, "--data.test_split", "validation"])
    texts = ["I loved this movie! It was amazing.", "A dull film.", "wonderful"]
    main(["predict", *args, "--ckpt_path", ckpt, "--data.predict_texts", json.dumps(texts)])
    (out,) = (run / "predict").glob("version_*/predictions.jsonl")  # beside the run the checkpoint came from
    folders = sorted(p.name for p in run.iterdir() if p.is_dir())
    assert folders == ["checkpoints", "export", "predict", "test", "validate"]
    assert [p.name for p in run.parent.iterdir()] == [run.name]  # no unrelated new run folders
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["text"] for r in rows] == texts and [r["id"] for r in rows] == [0, 1, 2]
    assert all(abs(sum(r["probabilities"]) - 1) < 1e-5 and r["label"] in (0, 1) for r in rows)
    assert not list(run.parent.glob("version_*/*.tmp"))


def test_best_and_last_outside_a_fit_are_the_newest_runs_checkpoints(fitted):
    # Lightning's own meaning, the checkpoints of this process's fit, finds none here and would use the untrained model.
    run, args = fitted
    (best,) = (run / "checkpoints").glob("best*.ckpt")
    for which, ckpt in (("best", best), ("last", run / "checkpoints" / "last.ckpt")):
        main(["validate", *args, "--ckpt_path", which])
        newest = max((run / "validate").glob("version_*/config.yaml"), key=lambda p: p.stat().st_mtime)
        assert yaml.safe_load(newest.read_text())["ckpt_path"] == str(ckpt)  # what it evaluated, beside its run


def test_exported_folders_give_the_checkpoints_predictions_in_a_pipeline(fitted, tmp_path):
    from transformers import pipeline

    run, args = fitted
    texts = ["I loved this movie! It was amazing.", "A dull, lifeless film.", "wonderful", "the plot " * 30]
    (best,) = (run / "checkpoints").glob("best-*.ckpt")
    for kind, ckpt in (("last", run / "checkpoints" / "last.ckpt"), ("best", best)):
        rows = predict_rows(args, ckpt, texts, tmp_path / kind)
        classify = pipeline("text-classification", model=str(run / "export" / kind), top_k=None)
        for row, scores in zip(rows, classify(texts)):
            by_name = {s["label"]: s["score"] for s in scores}
            assert max(by_name, key=by_name.get) == row["label_name"]
            assert [by_name["negative"], by_name["positive"]] == pytest.approx(row["probabilities"], abs=1e-5)
    umask = os.umask(0)
    os.umask(umask)
    for path in (run / "export").rglob("*.*"):  # readable by another user (a serving container), as the umask says
        assert path.stat().st_mode & 0o777 == 0o666 & ~umask, path
    # Any review as it is, past the model's 512 positions too: the export's tokenizer carries the run's max_length.
    assert classify.tokenizer.model_max_length == 64
    (long,) = classify(["a great film " * 400], truncation=True)
    assert len(long) == 2


def test_bf16_falls_back_to_fp32_only_on_cpus_without_bf16(tiny_bert, imdb_dir, tmp_path, monkeypatch):
    for fast, expected in [(False, "32-true"), (True, "bf16-mixed")]:
        monkeypatch.setattr(cli, "cpu_has_fast_bf16", lambda fast=fast: fast)
        parsed = cli.main(tiny_args(tiny_bert, imdb_dir, tmp_path, trainer__precision=None), run=False)
        assert parsed.config.trainer.precision == expected


def test_model_name_is_linked_to_the_tokenizer(tiny_bert, imdb_dir, tmp_path):
    parsed = cli.main(tiny_args(tiny_bert, imdb_dir, tmp_path), run=False)
    assert parsed.datamodule.hparams.tokenizer == tiny_bert


@pytest.fixture(scope="module")
def bad_sources(tmp_path_factory) -> dict[str, str]:
    import datasets

    root = tmp_path_factory.mktemp("bad")
    (root / "columns").mkdir()
    datasets.Dataset.from_dict({"review": ["x"], "sentiment": [1]}).to_parquet(str(root / "columns" / "train.parquet"))
    (root / "labels").mkdir()
    datasets.Dataset.from_dict({"text": ["a", "b"], "label": [0, 7]}).to_parquet(str(root / "labels" / "train.parquet"))
    (root / "empty").mkdir()
    empty = datasets.Dataset.from_dict({"text": [], "label": []}, features=datasets.Features(
        {"text": datasets.Value("string"), "label": datasets.Value("int64")}))
    empty.to_parquet(str(root / "empty" / "train.parquet"))
    (root / "latin1").mkdir()
    (root / "latin1" / "train.csv").write_bytes('text,label\n"caf\xe9 was great",1\n'.encode("latin-1"))
    (root / "latin1.txt").write_bytes(b"a fine film\n" + "caf\xe9 society\n".encode("latin-1"))

    torch.save({"state_dict": {"w": torch.zeros(1000)}, "epoch": 0}, root / "good.ckpt")
    data = (root / "good.ckpt").read_bytes()
    (root / "truncated.ckpt").write_bytes(data[: len(data) // 2])  # a write cut short
    (root / "typo.yaml").write_text("data:\n  batch_sizee: 8\n")
    return {name.replace(".", "_"): str(root / name) for name in
            ("columns", "labels", "empty", "latin1", "latin1.txt", "truncated.ckpt", "typo.yaml")}


@pytest.mark.parametrize("sub, override, message", [
    ("fit", ["--model.init_args.model_name", "no-such-org/no-such-model"], "unknown model 'no-such-org/no-such-model'"),
    ("fit", ["--data.source", "./no/such/folder"], "data folder './no/such/folder' not found"),
    ("fit", ["--data.source", "{columns}"], "lacks column(s) ['label', 'text']"),
    ("fit", ["--data.source", "{labels}"], "has labels [7] outside the classes 0..1"),
    ("test", [], "has no 'test' split"),
    ("predict", ["--data.predict_file", "no-such-file.txt"], "predict file 'no-such-file.txt' does not exist"),
    ("fit", ["--data.source", "{empty}"], "empty/train.parquet holds no reviews"),
    ("fit", ["--data.source", "{latin1}"], "train.csv is not valid UTF-8"),
    ("predict", ["--data.predict_file", "{latin1_txt}"],
     "latin1.txt is not valid UTF-8 (invalid continuation byte on line 2)"),
    ("validate", ["--ckpt_path", "{truncated_ckpt}"], "truncated.ckpt' cannot be read"),
    ("validate", ["--ckpt_path", "no/such.ckpt"], "checkpoint 'no/such.ckpt' does not exist"),
    ("fit", ["--config", "{typo_yaml}"],
     "src.data.ClassificationDataModule has no argument 'batch_sizee' (given as data.batch_sizee); see: python -m src "
     "fit --data.help src.data.ClassificationDataModule"),
    ("fit", ["--trainer.max_epoch", "1"], "unrecognized arguments: --trainer.max_epoch 1"),
    ("predict", ["--data.predict_texts", "A great film"],
     "--data.predict_texts expects list, got 'A great film'; for example: --data.predict_texts '[\"a review\", "),
    ("fit", ["--data.max_length", "abc"],
     "--data.max_length expects int, got 'abc'; for example: --data.max_length 128"),
    ("fit", ["--trainer.callbacks+=src.callbacks.TimeBudget", "--trainer.callbacks.init_args.minutes", "-45"],
     "TimeBudget minutes is -45.0: the fit would stop after its first step; fix: a budget above 0"),
    ("fit", ["--data.batch_size", "0"], "data.batch_size is 0; fix: --data.batch_size 1 or more"),
    ("fit", ["--data.limit_train", "0"], "data.limit_train is 0; fix: --data.limit_train 1 or more"),
    ("fit", ["--data.max_length", "5000"], "data.max_length is 5000, longer than the 512 tokens"),
    ("fit", ["--data.val_size", "500"], "data.val_size is 500: 500 held out of 96 training reviews leaves none"),
    ("fit", ["--model.init_args.warmup_ratio", "2"], "model.warmup_ratio is 2.0; fix: --model.warmup_ratio from 0"),
    ("fit", ["--data.truncation", "middle"], "--data.truncation is 'middle'; fix: one of 'head', 'head_tail'"),
    ("predict", ["--ckpt_path", "last", "--data.predict_texts", '["a fine film"]'],
     "--ckpt_path last: no run with checkpoints under"),
    ("fit", ["--data.label_budget", "0"], "the training set is empty"),
    ("fit", ["--data.soft_label_temperature", "0"], "data.soft_label_temperature is 0.0; fix:"),
    ("fit", ["--data.labelled_share", "1.5"], "data.labelled_share is 1.5; fix:"),
    ("fit", ["--data.consistency_noise", "token_dropout", "--data.consistency_p", "2"], "data.consistency_p is 2.0"),
    ("fit", ["--model.init_args.label_names", "[only]"], "model.label_names has 1 names and data.num_labels is 2"),
])
def test_bad_input_is_one_error_line(tiny_bert, imdb_dir, tmp_path, capsys, bad_sources, sub, override, message):
    override = [arg.format_map(bad_sources) for arg in override]
    with pytest.raises(SystemExit) as exit_:
        entry([sub, *tiny_args(tiny_bert, imdb_dir, tmp_path), *override])
    assert exit_.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: ") and message in err[-1] and "Traceback" not in "\n".join(err)
    assert len(err[-1]) < 400, err[-1]  # a line, not a dump


class FailOnSecondBatch(L.Callback):
    def on_predict_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0):
        if batch_idx == 1:
            raise RuntimeError("simulated failure mid-predict")


def test_a_failed_predict_leaves_no_predictions_file_and_no_empty_folder(fitted, tmp_path):
    run, args = fitted
    before = sorted(run.rglob("*"))
    texts = json.dumps([f"review number {i}" for i in range(100)])
    with pytest.raises(RuntimeError, match="simulated failure"):
        main(["predict", *args, "--ckpt_path", str(run / "checkpoints" / "last.ckpt"), "--data.predict_texts", texts,
              "--trainer.callbacks+=tests.test_cli.FailOnSecondBatch",
              "--trainer.callbacks+=src.callbacks.PredictionWriter",
              f"--trainer.callbacks.init_args.output_dir={tmp_path}"])
    assert list(tmp_path.iterdir()) == []
    blank = tmp_path / "blank.txt"
    blank.write_text("\n \n")
    with pytest.raises(SystemExit):  # a UserError in the data module's setup, after the log folder was opened
        entry(["predict", *args, "--ckpt_path", str(run / "checkpoints" / "last.ckpt"),
              "--data.predict_file", str(blank)])
    assert sorted(run.rglob("*")) == before  # no predict/version_N with only a config and an empty event file


def test_empty_missing_and_huge_reviews_are_handled(tiny_bert, imdb_dir, tmp_path):
    import datasets

    source = tmp_path / "odd"
    source.mkdir()
    reviews = datasets.load_dataset("parquet", data_files=str(imdb_dir / "train.parquet"), split="train").to_dict()
    huge = " ".join(["great"] * 50_000 + ["dull"] * 50_000)  # 100,000 words
    reviews["text"][:3] = ["", None, huge]
    datasets.Dataset.from_dict(reviews).to_parquet(str(source / "train.parquet"))
    args = tiny_args(tiny_bert, imdb_dir, tmp_path) + ["--data.source", str(source)]
    main(["fit", *args, "--trainer.max_steps", "2", "--data.val_size", "0.5"])
    ckpt = next((tmp_path / "runs").glob("bert_imdb/*/checkpoints/last.ckpt"))
    main(["predict", *args, "--ckpt_path", str(ckpt), "--data.predict_texts", json.dumps(["", huge, "fine"])])
    (out,) = (tmp_path / "runs").glob("bert_imdb/*/predict/*/predictions.jsonl")
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["text"] for r in rows] == ["", huge, "fine"] and all(r["label"] in (0, 1) for r in rows)


@pytest.mark.slow
def test_the_process_exits_with_one_line_not_a_traceback(tiny_bert, imdb_dir, tmp_path):
    args = tiny_args(tiny_bert, imdb_dir, tmp_path) + ["--model.init_args.model_name", "no-such-org/no-such-model"]
    proc = subprocess.run([sys.executable, "-m", "src", "fit", *args], capture_output=True, text=True,
                          env={**__import__("os").environ, "HF_HUB_OFFLINE": "1"}, timeout=300)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr and proc.stderr.strip().splitlines()[-1].startswith("error: unknown model")


def exported_classes() -> list[str]:
    """Every class the CLI can build: what src.data, src.models and src.callbacks export, and the packed-text base."""
    import importlib

    names = [f"{package}.{name}" for package in ("src.data", "src.models", "src.callbacks")
             for name in importlib.import_module(package).__all__]
    return [*names, "src.data.packed.PackedTextDataModule"]


@pytest.mark.parametrize("cls", exported_classes())
def test_every_argument_has_help_from_the_docstring(cls):
    import importlib
    import inspect
    import re

    from jsonargparse import ArgumentParser

    module, name = cls.rsplit(".", 1)
    target = getattr(importlib.import_module(module), name)
    parser = ArgumentParser()
    parser.add_class_arguments(target, "x")
    text = " ".join(parser.format_help().split("options:")[1].split())  # after the usage line
    entries = dict(re.findall(r"--x\.(\w+) (?:\S+ )?(.*?)\((?:required, )?type:", text))  # option -> its help
    own = [p for p, v in inspect.signature(target.__init__).parameters.items()
           if p != "self" and v.kind not in (v.VAR_KEYWORD, v.VAR_POSITIONAL)]
    assert set(own) <= set(entries)  # **kwargs are resolved to the base class's arguments, documented there
    assert [p for p, doc in entries.items() if not doc.strip()] == []


def test_the_private_torch_cpu_probes_still_exist():
    """src/hardware.py's one private use (torch has no public bf16 CPU probe): an upgrade renaming them fails here."""

    assert isinstance(torch.cpu._is_avx512_bf16_supported(), bool)
    assert isinstance(torch.cpu._is_amx_tile_supported(), bool)


def test_serve_checks_an_export_folder_and_refuses_a_corrupt_checkpoint_in_one_line(fitted, tmp_path):
    import subprocess
    import sys

    from src.api import check

    assert check(fitted[0] / "export" / "best") is None  # what serve accepts before it starts its workers
    (tmp_path / "broken.ckpt").write_bytes(b"\x00" * 1024)
    done = subprocess.run([sys.executable, "-m", "src", "serve", str(tmp_path / "broken.ckpt")], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and "cannot be read as a checkpoint" in done.stderr


def test_a_fit_into_a_log_file_prints_progress_lines_and_plain_notes(tiny_bert, imdb_dir, tmp_path, capsys, caplog):
    import logging

    caplog.set_level(logging.INFO)
    main(["fit", *tiny_args(tiny_bert, imdb_dir, tmp_path, trainer__max_epochs=1,
                            progress_lines__every_n_steps=2)])  # pytest's stdout is no terminal, as a log file
    out, err = capsys.readouterr()
    steps = [line for line in out.splitlines() if line.startswith("step ")]
    assert [line.split()[1] for line in steps] == ["2/5", "4/5"]
    assert all("loss" in line and "samples/s" in line and "left" in line for line in steps)
    assert "validation at step 5: val/acc" in out
    notes = " ".join(r.getMessage() for r in caplog.records)
    assert "litlogger" not in notes and "litmodels" not in notes and "Skipping setting a default" not in notes
    (table,) = [r.getMessage() for r in caplog.records if "Trainable params" in r.getMessage()]
    assert "| Params" in table and "FLOPs" not in table  # Lightning's FLOPs column read 0 without example inputs
    bars = ("tokenizing train:", "it/s]", "examples/s]")  # no progress bars in a log file
    assert not [bar for bar in bars if bar in err + out]


def test_own_csv_data_with_three_classes_fits_and_predicts_named_classes(tiny_bert, tmp_path):
    import csv

    from src.api import load

    names = ["negative", "mixed", "positive"]
    (tmp_path / "mine").mkdir()
    with open(tmp_path / "mine" / "train.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["text", "label"])
        writer.writerows([[f"{names[i % 3]} review number {i}", i % 3] for i in range(48)])
    main(["fit", *tiny_args(tiny_bert, tmp_path / "mine", tmp_path, trainer__max_epochs=1, data__val_size="0.25"),
          "--data.num_labels", "3", "--model.init_args.label_names", json.dumps(names)])
    (run,) = (tmp_path / "runs" / "bert_imdb").iterdir()
    for source in (run, run / "export" / "best"):
        rows = load(source).predict(["a mixed review", "a positive review"])
        assert all(len(r["probabilities"]) == 3 and r["label_name"] == names[r["label"]] for r in rows)


def test_test_after_fit_ends_the_fit_on_the_test_split_with_the_best_checkpoint(tiny_bert, imdb_test_dir, tmp_path):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        cli = main(["fit", *tiny_args(tiny_bert, imdb_test_dir, tmp_path), "--test_after_fit", "true"])
    assert not [w for w in caught if "multiple ModelCheckpoint" in str(w.message)]
    metrics = cli.trainer.callback_metrics
    assert {"test/acc", "test/f1", "test/auroc"} <= set(metrics) and 0 <= metrics["test/acc"] <= 1
    assert cli.trainer.ckpt_path == cli.trainer.checkpoint_callback.best_model_path  # the best, not the last weights
    plain = main(["fit", *tiny_args(tiny_bert, imdb_test_dir, tmp_path / "plain")])
    assert "test/acc" not in plain.trainer.callback_metrics


def test_evaluating_a_checkpoint_says_nothing_about_checkpoint_folders(fitted, tmp_path, capsys):
    """Lightning compares a fit's checkpoint callbacks' folder with the evaluation's (never made) and warns; the
    evaluation commands leave that out of their output."""
    run, args = fitted
    ckpt = str(run / "checkpoints" / "last.ckpt")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for command in (["validate"], ["test", "--data.test_split", "validation"],
                        ["predict", "--data.predict_texts", '["a fine film"]']):
            main([command[0], *args, "--ckpt_path", ckpt, *command[1:]])
    said = [str(w.message) for w in caught] + capsys.readouterr().err.splitlines()
    assert not [line for line in said if "dirpath has changed" in line or "multiple ModelCheckpoint" in line], said


def test_a_checkpoint_of_another_model_class_than_the_config_is_refused(fitted, capsys):
    run, _ = fitted
    with pytest.raises(SystemExit) as exit_:
        entry(["predict", "--config", "configs/gpt_zeroshot_imdb.yaml", "--ckpt_path", str(run / "checkpoints" /
              "last.ckpt"), "--data.predict_texts", '["a review"]'])
    assert exit_.value.code == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        f"error: checkpoint '{run / 'checkpoints' / 'last.ckpt'}' was written by src.models.SequenceClassifier, the "
        "config builds src.models.ZeroShotClassifier; fix: pass the config the checkpoint's run used (its "
        "config.yaml), or a checkpoint of this config")


def test_a_data_setting_out_of_range_is_refused_before_the_model_loads(tiny_bert, imdb_dir, tmp_path, monkeypatch):
    from src.errors import UserError
    from src.models import SequenceClassifier

    def load_model(self):
        raise AssertionError("the model was loaded before the data settings were checked")

    monkeypatch.setattr(SequenceClassifier, "load_model", load_model)
    for bad, message in ((["--data.batch_size", "0"], "data.batch_size is 0"),
                         (["--data.label_budget", "-1"], "data.label_budget is -1")):
        with pytest.raises(UserError, match=message):
            main(["fit", *tiny_args(tiny_bert, imdb_dir, tmp_path), *bad])
