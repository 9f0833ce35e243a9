"""A study spread over workers (src/studies/workers.py): runs at once, each with its share of the cores, a dead worker
tried again, a run's own failure not; end to end, two local workers record every run of a quick study once."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from src.errors import UserError
from src.studies.workers import Job, Local, parse_parameters

# A job that notes when it ran and with how many threads, then sleeps.
NOTE = ("import os, sys, time; start = time.time(); time.sleep(float(sys.argv[1])); "
        "print(start, time.time(), os.environ['OMP_NUM_THREADS'], repr(os.environ.get('CUDA_VISIBLE_DEVICES')))")


def alive(pid: int) -> bool:
    """Whether the process runs (not gone, not a zombie); it may exit between the two looks, so read once."""
    try:
        return "zombie" not in Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False


def test_local_workers_run_two_jobs_at_once_each_with_half_the_cores(tmp_path):
    jobs = [Job(i, [sys.executable, "-c", NOTE, "1.5"], tmp_path / f"{i}.log") for i in range(4)]
    done = list(Local(tmp_path / "w", workers=2).map(jobs))
    assert sorted(d.job.name for d in done) == [0, 1, 2, 3] and all(d.code == 0 and not d.error for d in done)
    notes = [(tmp_path / f"{i}.log").read_text().split() for i in range(4)]
    spans = [(float(a), float(b)) for a, b, _, _ in notes]
    most_at_once = max(sum(a <= t < b for a, b in spans) for t, _ in spans)
    assert most_at_once == 2  # two at a time, never more
    assert {threads for _, _, threads, _ in notes} == {str(max(1, os.cpu_count() // 2))}
    assert {gpus for _, _, _, gpus in notes} == {"''"}  # CPU workers see no GPU


def test_a_gpu_listed_twice_takes_two_runs_at_once(tmp_path):
    # Small runs leave a GPU idle: `--workers 2 --gpus 0 0` puts two on GPU 0 (measured 2.58x with 4 on an H200).
    jobs = [Job(i, [sys.executable, "-c", NOTE, "1.5"], tmp_path / f"{i}.log") for i in range(2)]
    done = list(Local(tmp_path / "w", workers=2, gpus=[0, 0]).map(jobs))
    assert all(d.code == 0 and not d.error for d in done)
    notes = [(tmp_path / f"{i}.log").read_text().split() for i in range(2)]
    (a0, b0), (a1, b1) = [(float(a), float(b)) for a, b, _, _ in notes]
    assert a1 < b0 and a0 < b1  # at once
    assert {gpus for _, _, _, gpus in notes} == {"'0'"}  # both on GPU 0


def test_a_dead_worker_is_tried_once_more_and_a_failing_run_is_not(tmp_path):
    # The first try of `flaky` kills its worker (the process submitit runs it in), as a lost node or OOM would.
    kill_once = ("import os, pathlib, signal, sys; marker = pathlib.Path(sys.argv[1]); first = not marker.exists(); "
                 "marker.touch(); first and os.kill(os.getppid(), signal.SIGKILL); print('ran')")
    kill_always = "import os, signal; os.kill(os.getppid(), signal.SIGKILL)"
    jobs = [Job("flaky", [sys.executable, "-c", kill_once, str(tmp_path / "marker")], tmp_path / "flaky.log"),
            Job("fails", [sys.executable, "-c", "import sys; sys.exit(3)"], tmp_path / "fails.log"),
            Job("dies", [sys.executable, "-c", kill_always], tmp_path / "dies.log")]
    done = {d.job.name: d for d in Local(tmp_path / "w", workers=2).map(jobs)}
    assert done["flaky"].code == 0 and (tmp_path / "flaky.log").read_text().strip() == "ran"
    assert done["fails"].code == 3 and not done["fails"].error  # the run's own failure: recorded, not retried
    assert done["dies"].code is None and "died 2 times" in done["dies"].error


def test_bad_worker_options_are_one_line_errors(tmp_path):
    from src.studies.main import study

    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump({"name": "s", "eval_split": "test", "output_dir": str(tmp_path), "budgets": [4],
                                    "seeds": [0], "approaches": [{"name": "tune", "config": []}]}))
    for args, message in ((["--workers", "2", "--in_process"], "--in_process runs every run in the study's process"),
                          (["--workers", "3", "--gpus", "0", "1"], "--gpus lists 2 GPUs for 3 workers"),
                          (["--workers", "0"], "--workers 0: fix"),
                          (["--engine", "slurm", "--slurm", "partition"], "is not key=value")):
        with pytest.raises(UserError, match=message):
            study(["run", "--config", str(path), *args])
    assert parse_parameters(["timeout_min=60", "mem_gb=7.5", "slurm_partition=gpu"]) == {
        "timeout_min": 60, "mem_gb": 7.5, "slurm_partition": "gpu"}


@pytest.mark.slow
def test_a_quick_study_on_two_local_workers_records_every_run_once_and_resumes(tiny_bert, imdb_test_dir, tmp_path,
                                                                              capsys):
    from src.studies.main import study

    small = ["--model.init_args.model_name", tiny_bert, "--data.init_args.max_length", "64",
             "--data.init_args.cache_dir", str(tmp_path / "cache"), "--trainer.precision", "32-true"]
    path = tmp_path / "quick.yaml"
    path.write_text(yaml.safe_dump({
        "name": "quick", "eval_split": "test", "output_dir": str(tmp_path / "studies"), "source": str(imdb_test_dir),
        "val_size": 16, "budgets": [4], "seeds": [0, 1], "reference": "finetune", "approaches": [
            {"name": "finetune", "config": ["configs/bert_imdb.yaml", "configs/studies/few_labels.yaml"],
             "steps": {"epochs": 1, "min": 2, "batch_size": 4}, "args": small},
            {"name": "linear_probe", "config": ["configs/studies/linear_probe.yaml"], "args": small}]}))
    args = ["run", "--config", str(path), "--quick", "--workers", "2"]
    start = time.perf_counter()
    study(args)
    elapsed = time.perf_counter() - start
    lines = (tmp_path / "studies" / "quick_quick" / "results.jsonl").read_text().split("\n")
    rows = [json.loads(line) for line in lines if line]  # one writer: every line whole
    assert sorted((r["approach"], r["seed"]) for r in rows) == [(a, s) for a in ("finetune", "linear_probe")
                                                                for s in (0, 1)]
    assert all(r["status"] == "ok" and r["labels"] == 4 and len(r["correct"]) == 16 for r in rows)
    assert elapsed < 0.8 * sum(r["wall_s"] for r in rows)  # the runs overlapped
    capsys.readouterr()
    study(args)
    assert "4 runs done, 0 to run" in capsys.readouterr().out


@pytest.mark.parametrize("engine_cancels", [True, False])
def test_a_stopped_study_stops_its_runs_in_flight(tmp_path, monkeypatch, engine_cancels):
    if not engine_cancels:  # submitit's SIGINT does not reach the run (a study started in the background ignores it)
        import submitit.local.local

        monkeypatch.setattr(submitit.local.local.LocalJob, "cancel", lambda self, check=True: None)
    # The second job notes its process id, then would run for a minute.
    long = "import os, pathlib, sys, time; pathlib.Path(sys.argv[1]).write_text(str(os.getpid())); time.sleep(60)"
    jobs = [Job("quick", [sys.executable, "-c", "pass"], tmp_path / "quick.log"),
            Job("long", [sys.executable, "-c", long, str(tmp_path / "pid")], tmp_path / "long.log")]
    done = Local(tmp_path / "w", workers=2).map(jobs)
    assert next(done).job.name == "quick"
    deadline = time.time() + 30
    while not (tmp_path / "pid").exists() and time.time() < deadline:
        time.sleep(0.1)
    pid = int((tmp_path / "pid").read_text())
    done.close()  # what Ctrl-C in the study does to the generator
    deadline = time.time() + 15
    while alive(pid) and time.time() < deadline:
        time.sleep(0.2)
    assert not alive(pid)


def test_a_run_dies_with_the_worker_that_runs_it(tmp_path):
    # A worker killed outright (submitit's SIGKILL a second after its SIGINT, on a loaded machine) leaves no run.
    pid_file = tmp_path / "pid"
    long = "import os, pathlib, sys, time; pathlib.Path(sys.argv[1]).write_text(str(os.getpid())); time.sleep(60)"
    worker = subprocess.Popen([sys.executable, "-c", "import sys; from pathlib import Path; from src.studies.workers "
                               "import execute; execute([sys.executable, '-c', sys.argv[1], sys.argv[2]], "
                               "Path(sys.argv[3]))", long, str(pid_file), str(tmp_path / "run.log")])
    deadline = time.time() + 30
    while not pid_file.exists() and time.time() < deadline:
        time.sleep(0.1)
    pid = int(pid_file.read_text())
    worker.kill()
    worker.wait()
    deadline = time.time() + 10
    while alive(pid) and time.time() < deadline:
        time.sleep(0.1)
    assert not alive(pid)
