import json
import math
import os
import signal
import subprocess
import sys
import time

import pytest
import yaml

from src import study as st


def test_the_seed_interval_matches_a_hand_computed_t_interval():
    mean, half = st.seed_interval([0.80, 0.90, 0.85])
    # sd = 0.05, n = 3, t(0.975, df 2) = 4.303: 4.303 * 0.05 / sqrt(3)
    assert mean == pytest.approx(0.85) and half == pytest.approx(4.303 * 0.05 / math.sqrt(3))
    assert st.seed_interval([0.7]) == (0.7, 0.0)


def test_the_bootstrap_interval_covers_the_binomial_spread():
    correct = [[1] * 300 + [0] * 100]  # 75% of 400 reviews: standard error 2.17 points
    low, high = st.bootstrap_interval(correct, draws=2000)
    assert low < 0.75 < high
    assert high - low == pytest.approx(2 * 1.96 * math.sqrt(0.75 * 0.25 / 400), rel=0.15)
    assert st.bootstrap_interval([[1] * 50], draws=100) == (1.0, 1.0)


def test_the_evaluation_reviews_are_the_data_modules_held_out_reviews(tiny_bert, imdb_dir, tmp_path):
    from src.data import ClassificationDataModule
    from tests.conftest import fit_ready

    dm = fit_ready(ClassificationDataModule(tokenizer=tiny_bert, source=str(imdb_dir), val_size=16, limit_val=10,
                                            cache_dir=str(tmp_path / "c")))
    texts, labels = st.eval_reviews(str(imdb_dir), val_size=16, split_seed=42, size=10)
    assert labels == dm.splits["validation"]["label"]
    assert [ids for ids in dm.predict_ids(texts)] == dm.splits["validation"]["input_ids"]


def test_the_plan_covers_every_approach_budget_and_seed(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump({"name": "s", "budgets": [16, 64], "seeds": [0, 1, 2], "approaches": [
        {"name": "zero", "config": [], "labels_from": "none", "seeds": [0]},
        {"name": "icl", "config": [], "labels_from": "demonstrations", "budgets": [4]},
        {"name": "tune", "config": []}]}))
    runs = st.planned(st.load_study(path))
    assert [(r["approach"], r["labels"]) for r in runs].count(("tune", 64)) == 3
    assert len(runs) == 1 + 3 + 6
    assert len(st.planned(st.load_study(path, quick=True))) == 1 + 2 + 4


def test_the_shipped_study_and_its_approaches_parse(capsys):
    from src.cli import main

    study = st.load_study("configs/studies/label_budget.yaml")
    assert {r["labels"] for r in st.planned(study)} == {0, 4, 8, 16, 64, 256, 1024}
    for approach in study["approaches"]:
        run = {"approach": approach["name"], "labels": 16, "seed": 1}
        args = st.command(study, approach, run, st.folder(study) / "runs" / "x" / "n16_seed1")
        if approach["labels_from"] == "demonstrations":
            args += ["--model.init_args.demonstrations", '["a"]', "--model.init_args.demonstration_labels", "[1]"]
        with pytest.raises(SystemExit) as exit_:
            main(["fit", *args, "--print_config"])
        assert exit_.value.code == 0, (approach["name"], capsys.readouterr().err)
        printed = yaml.safe_load(capsys.readouterr().out)
        assert printed["seed_everything"] == 1 and printed["data"]["init_args"]["val_size"] == 2500
        if approach["labels_from"] == "budget":
            assert printed["data"]["init_args"]["label_budget"] == 16
        if "steps" in approach:
            assert printed["trainer"]["max_steps"] == approach["steps"]["min"]  # the floor: 4 passes over 16 labels
            # are 4 steps


@pytest.mark.slow
@pytest.mark.parametrize("tiny_causal_lm", ["llama"], indirect=True)
def test_a_quick_study_runs_resumes_after_a_kill_records_a_failure_and_reports(tiny_bert, tiny_causal_lm, imdb_dir,
                                                                             tmp_path):
    def small(model: str) -> list[str]:
        return ["--model.init_args.model_name", model, "--data.init_args.max_length", "64",
                "--data.init_args.cache_dir", str(tmp_path / "cache"), "--trainer.precision", "32-true"]

    # The distillation teacher: the zero-shot recipe, fitted, labels the unsupervised reviews (prepared once).
    teacher = tmp_path / "teacher"
    teacher_args = ["--config", "configs/gpt_zeroshot_imdb.yaml", "--data.init_args.source", str(imdb_dir),
                    "--data.init_args.val_size", "16", "--data.init_args.limit_train", "8", *small(tiny_causal_lm),
                    "--trainer.logger.init_args.save_dir", str(tmp_path), "--trainer.logger.init_args.name", "",
                    "--trainer.logger.init_args.version", "teacher", "--trainer.enable_progress_bar", "false"]
    path = tmp_path / "quick.yaml"
    path.write_text(yaml.safe_dump({
        "name": "quick", "output_dir": str(tmp_path / "studies"), "source": str(imdb_dir), "val_size": 16,
        "budgets": [4, 8, 16], "seeds": [0, 1, 2], "approaches": [
            {"name": "zero_shot", "config": ["configs/gpt_zeroshot_imdb.yaml"], "labels_from": "none", "seeds": [0],
             "args": ["--trainer.limit_val_batches", "0", "--data.init_args.limit_train", "8", *small(tiny_causal_lm)]},
            {"name": "in_context", "config": ["configs/gpt_zeroshot_imdb.yaml", "configs/studies/in_context.yaml"],
             "labels_from": "demonstrations", "budgets": [4],
             "args": ["--data.init_args.limit_train", "8", *small(tiny_causal_lm)]},
            {"name": "finetune", "config": ["configs/bert_imdb.yaml", "configs/studies/few_labels.yaml"],
             "steps": {"epochs": 1, "min": 2, "batch_size": 4}, "args": small(tiny_bert)},
            {"name": "linear_probe", "config": ["configs/studies/linear_probe.yaml"], "args": small(tiny_bert)},
            {"name": "distilled", "config": ["configs/bert_imdb.yaml", "configs/studies/few_labels.yaml"],
             "budgets": [0, 4], "steps": {"epochs": 1, "min": 2, "batch_size": 4},
             "args": ["--data.init_args.soft_labels", str(teacher / "predictions.jsonl"), *small(tiny_bert)],
             "requires": {"path": str(teacher / "predictions.jsonl"), "commands": [
                 ["python", "-m", "src", "fit", *teacher_args, "--trainer.limit_val_batches", "0"],
                 ["python", "-m", "src", "predict", *teacher_args, "--data.init_args.predict_split", "unsupervised",
                  "--ckpt_path", str(teacher / "checkpoints" / "last.ckpt"),
                  "--trainer.callbacks+=src.callbacks.PredictionWriter",
                  "--trainer.callbacks.init_args.output_dir", str(teacher)]]}},
            {"name": "broken", "config": ["configs/bert_imdb.yaml"], "budgets": [4], "seeds": [0],
             "args": ["--data.init_args.batch_sizee", "4"]},
        ]}))
    results = tmp_path / "studies" / "quick_quick" / "results.jsonl"
    cmd = [sys.executable, "-m", "src.study", "run", "--config", str(path), "--quick", "--in_process"]
    first = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 120
    while time.time() < deadline and not (results.exists() and len(results.read_text().splitlines()) >= 2):
        time.sleep(0.2)
    os.killpg(first.pid, signal.SIGKILL)  # a killed study: the run in flight is lost
    first.wait()
    before = [json.loads(line) for line in results.read_text().splitlines()]
    assert len(before) >= 2
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    rows = [json.loads(line) for line in results.read_text().splitlines()]
    assert rows[: len(before)] == before  # nothing done is redone
    keys = [(r["approach"], r["labels"], r["seed"]) for r in rows]
    assert len(keys) == len(set(keys)) == 1 + 2 + 4 + 4 + 4 + 1
    ok = [r for r in rows if r["status"] == "ok"]
    assert len(ok) == 15 and len({r["eval_reviews"] for r in ok}) == 1 and all(len(r["correct"]) == 16 for r in ok)
    (failed,) = [r for r in rows if r["status"] == "failed"]
    assert failed["approach"] == "broken" and "batch_sizee" in failed["error"] and "\n" not in failed["error"]
    report = (tmp_path / "studies" / "quick_quick" / "report.md").read_text()
    assert len((teacher / "predictions.jsonl").read_text().splitlines()) == 16  # the unsupervised reviews
    assert "| finetune |" in report and "| linear_probe |" in report and "| distilled |" in report
    assert "broken N=4 seed=0" in report
    assert (tmp_path / "studies" / "quick_quick" / "learning_curve.png").stat().st_size > 10_000
    assert list((tmp_path / "studies" / "quick_quick" / "tensorboard").rglob("events.out.tfevents.*"))


def test_the_report_goes_into_the_doc_between_its_markers_and_keeps_the_rest(tmp_path):
    doc, png = tmp_path / "results.md", tmp_path / "curve.png"
    png.write_bytes(b"png")
    doc.write_text("intro\n<!-- study:s:start -->\nold\n<!-- study:s:end -->\nafter\n")
    st.write_doc({"name": "s", "doc": str(doc)}, "| new table |\n", png)
    text = doc.read_text()
    assert text.startswith("intro\n<!-- study:s:start -->\n| new table |")
    assert text.endswith("<!-- study:s:end -->\nafter\n")
    assert "old" not in text and (tmp_path / "s.png").read_bytes() == b"png" and "](s.png)" in text
