import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from src.errors import UserError
from src.studies.report import report
from src.studies.run import fit_args, seeded
from src.studies.runner import plan, read_rows
from src.studies.schema import load_study, parse_study
from tests.conftest import entry

STUDY_FILES = sorted(p for p in Path("configs/studies").glob("*.yaml")
                     if "python -m src study " in p.read_text() and p.name != "prerequisites.yaml")


def study_file(tmp_path, **study) -> str:
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump({"name": "s", "eval_split": "test", "budgets": [16, 64], "seeds": [0, 1, 2],
                                    "output_dir": str(tmp_path / "studies"), "approaches": [
                                        {"name": "zero", "kind": "unlabelled", "config": [], "seeds": [0]},
                                        {"name": "icl", "kind": "demonstrations", "config": [], "budgets": [4]},
                                        {"name": "tune", "config": [], "steps": {"epochs": 4, "min": 2}}],
                                    **study}))
    return str(path)


def test_the_plan_covers_every_approach_budget_and_seed(tmp_path):
    runs = plan(load_study(study_file(tmp_path)))
    assert [(r.approach, r.labels) for r in runs].count(("tune", 64)) == 3
    assert len(runs) == 1 + 3 + 6 and {r.labels for r in runs if r.approach == "zero"} == {0}
    assert len(plan(load_study(study_file(tmp_path), quick=True))) == 1 + 2 + 4


@pytest.mark.parametrize("change, message", [
    ({"eval_size": 10, "evall_split": "test"}, "unknown key 'evall_split' for Study"),
    ({"approaches": [{"name": "a", "config": [], "budget": [4]}]}, "unknown key 'budget' for Labels"),
    ({"approaches": [{"name": "a", "kind": "unlabelled", "config": [], "steps": {"epochs": 1, "min": 1}}]},
     "unknown key 'steps' for Unlabelled"),
    ({"approaches": [{"name": "a", "kind": "fewshot", "config": []}]}, "unknown approach kind 'fewshot'"),
    ({"approaches": [{"name": "a", "config": [], "steps": {"epochs": 1}}]}, "Steps lacks 'min'"),
    ({"seeds": "0, 1"}, "s.seeds should be a list"),
    ({"eval_split": "train"}, "eval_split is 'train'; fix: one of \\['test', 'validation'\\]"),
    ({"reference": "nobody"}, "'nobody' \\(in reference or compare\\) is no approach"),
    ({"eval_size": 0}, "eval_size is 0; fix: 2 or more"),
    ({"bootstrap": 0}, "bootstrap is 0; fix: 1 or more"),
    ({"budgets": [16, -4]}, "s's budgets \\[16, -4\\] hold a negative one"),
    ({"seeds": []}, "s's seeds are empty"),
    ({"approaches": [{"name": "a", "config": [], "seeds": []}]}, "a's seeds are empty"),
])
def test_a_bad_study_file_is_one_line_naming_the_key(tmp_path, change, message):
    with pytest.raises(UserError, match=message) as err:
        load_study(study_file(tmp_path, **change))
    assert "\n" not in str(err.value)


def test_a_study_names_its_evaluation_split(tmp_path):
    data = yaml.safe_load(open(study_file(tmp_path)))
    del data["eval_split"]
    with pytest.raises(UserError, match="lacks 'eval_split'"):
        parse_study(data, "s.yaml")


def test_the_shipped_study_and_its_approaches_parse(shared_imdb, capsys):  # demonstrations are drawn from the mirror

    study = load_study("configs/studies/label_budget.yaml")
    assert study.eval_split == "test" and study.eval_size == 2000
    assert {r.labels for r in plan(study)} == {0, 4, 8, 16, 64, 256, 1024}
    assert all(len(a.seeds or study.seeds) == 3 for a in study.approaches)
    for approach in study.approaches:
        labels = 16 if approach.kind in ("label_budget", "upstream_labels") else 4
        args = fit_args(study, approach, labels, 1, study.folder() / "runs" / "x" / "n16_seed1")
        with pytest.raises(SystemExit) as exit_:
            entry(["fit", *args, "--print_config"])
        assert exit_.value.code == 0, (approach.name, capsys.readouterr().err)
        printed = yaml.safe_load(capsys.readouterr().out)
        data = printed["data"]["init_args"]
        assert printed["seed_everything"] == 1 and data["sample_seed"] == 1 and data["val_size"] == 2500
        assert "{seed}" not in json.dumps(printed)
        if approach.kind == "label_budget":
            assert data["label_budget"] == 16 and data["label_seed"] == 1
        if approach.kind == "demonstrations":
            assert len(printed["model"]["init_args"]["demonstrations"]) == 4
        if approach.requires:  # what it prepares is what the runs read, per seed (and budget, where it names one)
            path = seeded([approach.requires.path], 1, labels)[0]
            assert reads(path, "\n".join(args))  # an argument, a member of a list argument, or its run folder
            for cmd in approach.requires.commands:
                if cmd[3] == "fit" and "/export/" in approach.requires.path:  # the fit exports where runs read
                    assert export_folder(seeded(cmd[3:], 1, labels), capsys) == \
                        str(Path(approach.requires.path).parent), approach.name


@pytest.mark.parametrize("path", STUDY_FILES)
def test_every_study_file_parses_and_each_approach_runs_its_recipe(path, shared_imdb, capsys, tmp_path):
    """Each study file: fields known, and every approach's run line parses with the CLI (as a run would start); the
    demonstrations a prerequisite draws (from the mirror) are drawn into tmp_path, where its next command reads them."""
    from src.studies.main import study as study_command

    study = load_study(path)
    assert plan(study)
    for approach in study.approaches:
        args = fit_args(study, approach, min(study.budgets), 0, study.folder() / "runs" / "x" / "n16_seed0")
        with pytest.raises(SystemExit) as exit_:
            entry(["fit", *args, "--print_config"])
        assert exit_.value.code == 0, (path, approach.name, capsys.readouterr().err)
        made: dict[str, str] = {}  # what an earlier command writes -> where it wrote it here
        for cmd in approach.requires.commands if approach.requires else []:  # its prerequisites' command lines too
            cmd = [made.get(a, a) for a in seeded(cmd, 0, min(study.budgets))]
            if cmd[3] == "study":  # `study demonstrations --output <overlay>`
                out = cmd.index("--output") + 1
                made[cmd[out]] = cmd[out] = str(tmp_path / Path(cmd[out]).name)
                study_command(cmd[4:])
                assert Path(cmd[out]).exists()
            elif cmd[1:3] == ["-m", "src"]:
                with pytest.raises(SystemExit) as exit_:
                    entry([*cmd[3:], "--print_config"])
                assert exit_.value.code == 0, (path, approach.name, cmd, capsys.readouterr().err)


def reads(path: str, text: str) -> bool:
    """Whether `text` (arguments and commands, one a line) names `path`, or as a whole value the run folder `path` was
    written into: an ensemble's members are run folders (an argument of its own, or `"<folder>"` in a list)."""
    folder = str(Path(path).parent)
    return path in text or f'"{folder}"' in text or f"\n{folder}\n" in f"\n{text}\n"


def declared(study, names: list[str]) -> set[str]:
    """The named prerequisites `names` and everything they need."""
    found: set[str] = set()
    while names:
        name = names.pop()
        if name not in found:
            found.add(name)
            names += study.prerequisite(name).needs
    return found


@pytest.mark.parametrize("path", STUDY_FILES)
def test_every_prerequisite_a_run_reads_is_named_by_its_approach(path):
    """The runner makes what an approach names (`requires`, `needs`, and what those need), never what its arguments
    happen to mention: so every shared prerequisite whose output a run's arguments or its own prerequisite's commands
    read must be named, or a fresh `--only` run would start before its inputs exist. Shipped study files name their
    prerequisites (none is spelled out inline), so two study files share one definition."""
    from src.studies.schema import named_prerequisites

    study = load_study(path)
    named = named_prerequisites(study.prerequisites)
    for approach in study.approaches:
        own = [n for n, r in named.items() if approach.requires is not None and r == approach.requires]
        assert approach.requires is None or own, f"{approach.name}: its prerequisite is not one of {sorted(named)}"
        names = declared(study, [*own, *approach.needs])
        for labels, seed in ((min(approach.budgets or study.budgets), 1), (0, 2)):
            text = "\n".join(seeded(approach.args, seed, labels) + [
                a for n in names for cmd in named[n].commands for a in seeded(cmd, seed, labels)])
            for name, need in named.items():
                if name not in names and reads(seeded([need.path], seed, labels)[0], text):
                    pytest.fail(f"{path.name}: {approach.name} reads {name}'s {need.path} but does not name it")


def test_a_prerequisite_named_by_two_study_files_is_made_once(tmp_path):
    """Two study files name the same teacher: `study run` of the first makes it; `study run` of the second finds it
    made by the same commands (the stamp beside it) and goes on to its own runs (which fail here at once: no recipe)."""
    from src.studies.main import study as study_command

    log, made = tmp_path / "teacher_runs.txt", tmp_path / "teacher_seed{seed}.txt"
    write = "import sys; open(sys.argv[1], 'a').write('x'); open(sys.argv[2], 'a').write('run\\n')"
    shared = tmp_path / "prerequisites.yaml"
    shared.write_text(yaml.safe_dump({"teacher": {"what": "a teacher", "path": str(made),
                                                  "commands": [["python", "-c", write, str(made), str(log)]]}}))
    for name in ("a", "b"):
        path = tmp_path / f"{name}.yaml"
        path.write_text(Path(study_file(tmp_path, name=name, seeds=[0], prerequisites=str(shared), approaches=[
            {"name": "student", "kind": "unlabelled", "config": [], "requires": "teacher",
             "args": ["--data.init_args.soft_labels", str(made)]}])).read_text())
        with pytest.raises(UserError, match="no successful run"):  # the report after the run: its run failed
            study_command(["run", "--config", str(path), "--in_process"])
        (row,) = read_rows(load_study(path))
        assert row["status"] == "failed" and "prerequisite" not in row["error"]  # the run's own failure
    assert log.read_text() == "run\n" and (tmp_path / "teacher_seed0.txt").read_text() == "x"  # made once, for both
    with pytest.raises(UserError, match="names the prerequisite 'teachr', which .* does not define; fix: one of"):
        load_study(study_file(tmp_path, prerequisites=str(shared), approaches=[
            {"name": "student", "config": [], "needs": ["teachr"]}]))


@pytest.mark.parametrize("name", ["distilled", "distilled_ensemble", "distilled_ensemble_512_s512"])
def test_the_one_command_recipe_is_the_studys_entry_and_exports_its_student(shared_imdb, capsys, name):
    """configs/studies/distilled.yaml: the label-budget study's `distilled`, `distilled_ensemble` and
    `distilled_ensemble_512_s512` (the same teachers, made once, and the same student arguments) on the same test
    reviews, each student exported into its run folder, where `serve` and `pipeline` load it; the ensemble's first
    member is the single teacher, made first; the 512-token members are fitted (the teacher's entry) before they
    label."""
    recipe, study = load_study("configs/studies/distilled.yaml"), load_study("configs/studies/label_budget.yaml")
    mine, theirs = recipe.approach(name), study.approach(name)
    assert mine.requires == theirs.requires and mine.needs == theirs.needs and mine.config == theirs.config
    assert mine.args == [*theirs.args, "--trainer.callbacks+=src.callbacks.HFExport"]
    assert (recipe.eval_split, recipe.eval_size, recipe.eval_seed) == (study.eval_split, study.eval_size,
                                                                      study.eval_seed)
    if name == "distilled_ensemble":
        assert mine.needs == ["teacher"]  # its first member: `distilled`'s teacher, made first
    if name == "distilled_ensemble_512_s512":
        assert mine.requires.needs == ["ensemble_512_members"]  # the members are fitted before they label
        assert recipe.approach("zero_shot_ensemble_512") == study.approach("zero_shot_ensemble_512")
    run_dir = recipe.folder() / "runs" / name / "n0_seed0"
    assert export_folder(["fit", *fit_args(recipe, mine, 0, 0, run_dir)], capsys) == str(run_dir / "export")


def export_folder(args: list[str], capsys) -> str:
    """Where a `fit` command line's HFExport writes `last` and `best`."""

    with pytest.raises(SystemExit):
        entry([*args, "--print_config"])
    trainer = yaml.safe_load(capsys.readouterr().out)["trainer"]
    (export,) = [c["init_args"] for c in trainer["callbacks"] if c["class_path"] == "src.callbacks.HFExport"]
    logger = trainer["logger"]["init_args"]
    run = Path(logger["save_dir"], logger["name"] or "", str(logger["version"]))
    return export["output_dir"] or str(run / export["dirname"])


def fake_rows(study, eval_hash="e1") -> list[dict]:
    return [{"approach": r.approach, "labels": r.labels, "seed": r.seed, "key": r.key, "status": "ok",
             "accuracy": 0.5, "correct": [1, 0] * 10, "eval_reviews": eval_hash, "fit_s": 1.0, "wall_s": 2.0,
             "eval_reviews_per_s": 10.0, "device": "cpu", "precision": "32-true"} for r in plan(study)]


def write_rows(study, rows) -> None:
    study.folder().mkdir(parents=True, exist_ok=True)
    (study.folder() / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))


def test_the_report_leaves_out_rows_of_a_changed_approach_and_refuses_other_evaluation_reviews(tmp_path):
    study = load_study(study_file(tmp_path, reference="tune"))
    stale = [r | {"key": "old", "accuracy": 1.0, "correct": [1] * 20}
             for r in fake_rows(study) if r["approach"] == "zero"]
    write_rows(study, stale + [r for r in fake_rows(study) if r["approach"] != "zero"])
    text = (report(study)).read_text()
    assert "| zero |" not in text and "| tune |" in text and "1 recorded row(s) of approaches since changed" in text
    assert "| icl | 4 | tune | 16 | +0.0 | [+0.0, +0.0] |" in text  # a level against each budget, paired
    write_rows(study, fake_rows(study)[:-1] + [fake_rows(study, eval_hash="e2")[-1]])
    with pytest.raises(UserError, match="different evaluation reviews"):
        report(study)


def test_a_paired_verdict_only_where_the_interval_excludes_zero(tmp_path):
    study = load_study(study_file(tmp_path, compare=[["icl", "zero"]]))
    rows = fake_rows(study)
    for r in rows:
        if r["approach"] == "icl":
            r["correct"] = [1] * 20  # right wherever zero-shot is wrong, and wherever it is right
    write_rows(study, rows)
    text = report(study).read_text()
    assert "| icl | 4 | zero | 0 | +50.0 |" in text and "| icl better |" in text
    assert "50.0 (1 run)" in text  # one run: no ±0.0


def test_the_report_says_what_n_counts_per_kind_and_draws_points_for_a_single_budget(tmp_path):
    from src.studies.report import plot, summarise

    study = load_study(study_file(tmp_path))
    write_rows(study, fake_rows(study))
    assert "N is the number of human labels a run used." in report(study).read_text()
    assert "by label budget" in plot(study, summarise(study, fake_rows(study)), tmp_path / "curves.png")
    search = load_study(study_file(tmp_path, budgets=[22500], seeds=[0], approaches=[
        {"name": name, "kind": "train_reviews", "config": []} for name in ("len256", "len384")]))
    write_rows(search, fake_rows(search))
    assert "N is the number of labelled training reviews a run used." in report(search).read_text()
    assert (search.folder() / "learning_curve.png").stat().st_size > 0
    assert "accuracy at N = 22500 (95%" in plot(search, summarise(search, fake_rows(search)), tmp_path / "one.png")
    mixed = load_study(study_file(tmp_path, approaches=[{"name": "tune", "config": []},
                                                        {"name": "all", "kind": "train_reviews", "config": []}]))
    write_rows(mixed, fake_rows(mixed))
    assert ("N is the number of human labels (tune); of labelled training reviews (all) a run used."
            in report(mixed).read_text())


def test_the_report_goes_into_the_doc_between_its_markers_and_keeps_the_rest(tmp_path):
    from src.doc_tables import write_between_markers

    doc = tmp_path / "results.md"
    doc.write_text("intro\n<!-- study:s:start -->\nold\n<!-- study:s:end -->\nafter\n")
    write_between_markers(doc, "study:s", "| new table |\n")
    assert doc.read_text() == "intro\n<!-- study:s:start -->\n| new table |\n<!-- study:s:end -->\nafter\n"
    write_between_markers(tmp_path / "new.md", "bench", "| t |", heading="## 5. Bench")
    assert (tmp_path / "new.md").read_text() == "## 5. Bench\n\n<!-- bench:start -->\n| t |\n<!-- bench:end -->\n"


@pytest.mark.slow
@pytest.mark.parametrize("tiny_causal_lm", ["llama"], indirect=True)
def test_a_quick_study_runs_resumes_after_a_kill_records_a_failure_reruns_a_changed_approach_and_reports(
        tiny_bert, tiny_causal_lm, imdb_test_dir, tmp_path):
    def small(model: str) -> list[str]:
        return ["--model.init_args.model_name", model, "--data.init_args.max_length", "64",
                "--data.init_args.cache_dir", str(tmp_path / "cache"), "--trainer.precision", "32-true"]

    # The distillation teacher, per seed: the zero-shot recipe, fitted, labels a seeded sample of unsupervised reviews.
    teacher = str(tmp_path / "teachers" / "seed{seed}")
    teacher_args = ["--config", "configs/gpt_zeroshot_imdb.yaml", "--data.init_args.source", str(imdb_test_dir),
                    "--data.init_args.val_size", "16", "--data.init_args.limit_train", "8", *small(tiny_causal_lm),
                    "--data.init_args.sample_seed", "{seed}", "--trainer.logger.init_args.save_dir",
                    str(tmp_path / "teachers"), "--trainer.logger.init_args.name", "",
                    "--trainer.logger.init_args.version", "seed{seed}", "--trainer.enable_progress_bar", "false"]
    spec = {
        "name": "quick", "eval_split": "test", "output_dir": str(tmp_path / "studies"), "source": str(imdb_test_dir),
        "val_size": 16, "budgets": [4, 8, 16], "seeds": [0, 1, 2], "reference": "finetune", "approaches": [
            {"name": "zero_shot", "kind": "unlabelled", "config": ["configs/gpt_zeroshot_imdb.yaml"],
             "args": ["--trainer.limit_val_batches", "0", "--data.init_args.limit_train", "8", *small(tiny_causal_lm)]},
            {"name": "in_context", "kind": "demonstrations", "budgets": [4],
             "config": ["configs/gpt_zeroshot_imdb.yaml", "configs/studies/in_context.yaml"],
             "args": ["--data.init_args.limit_train", "8", *small(tiny_causal_lm)]},
            {"name": "finetune", "config": ["configs/bert_imdb.yaml", "configs/studies/few_labels.yaml"],
             "steps": {"epochs": 1, "min": 2, "batch_size": 4}, "args": small(tiny_bert)},
            {"name": "linear_probe", "config": ["configs/studies/linear_probe.yaml"], "args": small(tiny_bert)},
            {"name": "distilled", "config": ["configs/bert_imdb.yaml", "configs/studies/few_labels.yaml"],
             "budgets": [0, 4], "steps": {"epochs": 1, "min": 2, "batch_size": 4},
             "args": ["--data.init_args.soft_labels", f"{teacher}/predictions.jsonl", *small(tiny_bert)],
             "requires": {"path": f"{teacher}/predictions.jsonl", "commands": [
                 ["python", "-m", "src", "fit", *teacher_args, "--trainer.limit_val_batches", "0"],
                 ["python", "-m", "src", "predict", *teacher_args, "--data.init_args.predict_split", "unsupervised",
                  "--ckpt_path", f"{teacher}/checkpoints/last.ckpt",
                  "--trainer.callbacks+=src.callbacks.PredictionWriter",
                  "--trainer.callbacks.init_args.output_dir", teacher]]}},
            {"name": "broken", "config": ["configs/bert_imdb.yaml"], "budgets": [4], "seeds": [0],
             "args": ["--data.init_args.batch_sizee", "4"]},
        ]}
    path = tmp_path / "quick.yaml"
    path.write_text(yaml.safe_dump(spec))
    folder = tmp_path / "studies" / "quick_quick"
    results = folder / "results.jsonl"
    cmd = [sys.executable, "-m", "src", "study", "run", "--config", str(path), "--quick", "--in_process"]
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
    assert len(keys) == len(set(keys)) == 2 + 2 + 4 + 4 + 4 + 1
    ok = [r for r in rows if r["status"] == "ok"]
    assert len(ok) == 16 and len({r["eval_reviews"] for r in ok}) == 1 and all(len(r["correct"]) == 16 for r in ok)
    zero = {r["seed"]: r for r in ok if r["approach"] == "zero_shot"}
    assert zero[0]["command"] != zero[1]["command"]  # the calibration sample follows the seed
    student = next(r for r in ok if r["approach"] == "distilled" and r["seed"] == 1)
    assert student["command"][:4] == ["python", "-m", "src", "fit"] and student["eval_split"] == "test"
    assert set(student["versions"]) >= {"torch", "transformers", "lightning"} and "dirty" in student
    from src.hardware import cpu_kind

    assert student["cpu"] == cpu_kind() and student["finished"].endswith("+00:00")  # which CPU kind, and when
    predictions = str(tmp_path / "teachers" / "seed1" / "predictions.jsonl")
    assert len(student["inputs"][predictions]) == 16 and any(k.startswith("source:") for k in student["inputs"])
    assert not [k for k in student["inputs"] if str(tmp_path / "studies") in k]  # its own outputs are no input
    for seed in (0, 1):  # a teacher per seed, each labelling the unsupervised reviews
        assert len((tmp_path / "teachers" / f"seed{seed}" / "predictions.jsonl").read_text().splitlines()) == 16
    (failed,) = [r for r in rows if r["status"] == "failed"]
    assert failed["approach"] == "broken" and "batch_sizee" in failed["error"] and "\n" not in failed["error"]
    text = (folder / "report.md").read_text()
    assert "| finetune |" in text and "| linear_probe |" in text and "| distilled |" in text
    assert "| distilled | 4 | finetune | 4 |" in text and "| zero_shot | 0 | finetune | 8 |" in text
    assert "broken N=4 seed=0" in text
    assert (folder / "learning_curve.png").stat().st_size > 10_000
    assert list((folder / "tensorboard").rglob("events.out.tfevents.*"))
    # A changed approach runs again; the others are kept.
    spec["approaches"][3]["args"] = [*small(tiny_bert), "--model.init_args.l2", "0.5"]
    path.write_text(yaml.safe_dump(spec))
    again = subprocess.run([*cmd, "--only", "linear_probe", "finetune"], capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr[-2000:]
    new = [json.loads(line) for line in results.read_text().splitlines()][len(rows):]
    assert [r["approach"] for r in new] == ["linear_probe"] * 4
    assert len(read_rows(load_study(path, quick=True))) == len(rows) + 4


def test_a_prerequisite_runs_once_per_seed_and_again_when_a_config_it_names_changes(tmp_path):
    from src.studies.approach import Requires
    from src.studies.kinds import KINDS
    from src.studies.runner import prepare

    config, made = tmp_path / "teacher.yaml", tmp_path / "made{seed}.txt"
    config.write_text("prompt: a\n")
    write = "import sys; open(sys.argv[1], 'a').write('x')"
    approach = KINDS["label_budget"](name="a", config=[], requires=Requires(
        path=str(made), commands=[["python", "-c", write, str(made), "--config", str(config)]]))

    def runs(seed: int) -> int:
        assert prepare(approach.requires, "a", seed, tmp_path, {}) is None
        return len((tmp_path / f"made{seed}.txt").read_text())

    assert runs(0) == 1 and runs(0) == 1 and runs(1) == 1  # once per seed, then kept
    config.write_text("prompt: b\n")
    assert runs(0) == 2  # the config changed: prepared again


def test_a_config_an_earlier_command_writes_does_not_make_the_prerequisite_run_again(tmp_path):
    from src.studies.approach import Requires
    from src.studies.kinds import KINDS
    from src.studies.runner import prepare

    overlay, made = tmp_path / "demos{seed}.yaml", tmp_path / "member{seed}.txt"
    write = "import sys; open(sys.argv[1], 'a').write('x')"
    approach = KINDS["upstream_labels"](name="a", config=[], requires=Requires(path=str(made), commands=[
        ["python", "-c", write, str(overlay)],  # draws the demonstrations
        ["python", "-c", write, str(made), "--config", str(overlay)]]))  # fits the member with them
    for _ in range(2):
        assert prepare(approach.requires, "a", 0, tmp_path, {}) is None
    assert (tmp_path / "member0.txt").read_text() == "x"  # made once: the overlay's content is its command's


def test_labels_only_prerequisites_use_place_the_row_without_a_label_argument(tmp_path):
    study = load_study(study_file(tmp_path, approaches=[
        {"name": "ens", "kind": "upstream_labels", "config": [], "budgets": [16],
         "args": ["--model.init_args.members", '["m/icl_{labels}_seed{seed}"]']}]))
    assert [(r.labels, r.seed) for r in plan(study)] == [(16, 0), (16, 1), (16, 2)]
    args = fit_args(study, study.approach("ens"), 16, 1, tmp_path / "runs" / "ens" / "n16_seed1")
    assert '["m/icl_16_seed1"]' in args and "--data.init_args.label_budget" not in args


def test_a_prerequisite_that_names_the_label_budget_runs_once_per_budget_and_seed(tmp_path):
    from src.studies.approach import Requires
    from src.studies.kinds import KINDS
    from src.studies.run import fit_args
    from src.studies.runner import prepare

    made = tmp_path / "student_n{labels}_seed{seed}.txt"
    write = "import sys; open(sys.argv[1], 'a').write('x')"
    approach = KINDS["label_budget"](name="a", config=[], args=["--data.init_args.soft_labels", str(made)],
                                     requires=Requires(path=str(made), commands=[["python", "-c", write, str(made)]]))
    for labels, seed in [(16, 0), (64, 0), (16, 1), (16, 0)]:
        assert prepare(approach.requires, "a", seed, tmp_path, {}, labels=labels) is None
    assert sorted(p.name for p in tmp_path.glob("student_*.txt")) == [
        "student_n16_seed0.txt", "student_n16_seed1.txt", "student_n64_seed0.txt"]
    assert (tmp_path / "student_n16_seed0.txt").read_text() == "x"  # made once, then kept
    assert sorted(p.name for p in (tmp_path / "runs" / "a").glob("*.log")) == [
        "prepare_n16_seed0_0.log", "prepare_n16_seed1_0.log", "prepare_n64_seed0_0.log"]
    study = load_study(study_file(tmp_path))
    args = fit_args(study, approach, 64, 1, tmp_path / "runs" / "a" / "n64_seed1")
    assert str(tmp_path / "student_n64_seed1.txt") in args  # a run reads its own budget's and seed's


def test_reads_sees_a_member_run_folder_but_not_a_folder_that_only_starts_like_it(tmp_path):
    run = tmp_path / "teacher_seed1"
    assert reads(str(run / "p.jsonl"), f"--model.init_args.members\n{run}")  # one member, as an argument
    assert reads(str(run / "p.jsonl"), json.dumps([str(run), "other"]))  # a member of a list
    assert not reads(str(run / "p.jsonl"), json.dumps([f"{run}0"]))


def test_only_a_later_approach_still_makes_the_prerequisites_its_own_prerequisite_needs(tmp_path):
    """`--only self_trained` on a fresh machine: the teacher (which the first student's command reads, and which the
    student's entry needs) is made first, once; an unrelated prerequisite is not."""
    from src.studies.runner import prepare_with_inputs

    teacher, student, other = (str(tmp_path / f"{n}_seed{{seed}}.txt") for n in ("teacher", "student", "other"))
    copy = "import shutil, sys; shutil.copy(sys.argv[1], sys.argv[2])"  # fails where the teacher is missing
    write = "import sys; open(sys.argv[1], 'a').write('t')"
    shared = tmp_path / "prerequisites.yaml"
    shared.write_text(yaml.safe_dump({
        "teacher": {"path": teacher, "commands": [["python", "-c", write, teacher]]},
        "unrelated": {"path": other, "commands": [["python", "-c", write, other]]},
        "student": {"path": student, "needs": ["teacher"], "commands": [["python", "-c", copy, teacher, student]]}}))
    study = load_study(study_file(tmp_path, prerequisites=str(shared), approaches=[
        {"name": "self_trained", "kind": "unlabelled", "config": [], "requires": "student",
         "args": ["--data.init_args.soft_labels", student]}]))
    approach = study.approach("self_trained")
    assert prepare_with_inputs(study, approach, 1, tmp_path, {}, labels=0) is None
    assert (tmp_path / "student_seed1.txt").read_text() == "t" and not (tmp_path / "other_seed1.txt").exists()
    assert prepare_with_inputs(study, approach, 1, tmp_path, {}, labels=0) is None  # kept: made once
    assert (tmp_path / "teacher_seed1.txt").read_text() == "t"
    shared.write_text(yaml.safe_dump({"a": {"path": teacher, "commands": [], "needs": ["b"]},
                                      "b": {"path": other, "commands": [], "needs": ["a"]}}))
    from src.studies.schema import named_prerequisites

    named_prerequisites.cache_clear()
    cyclic = load_study(study_file(tmp_path, prerequisites=str(shared), approaches=[
        {"name": "x", "kind": "unlabelled", "config": [], "needs": ["a"]}]))
    assert "prerequisites need each other (a -> b -> a)" in prepare_with_inputs(cyclic, cyclic.approach("x"), 1,
                                                                                tmp_path, {})


def test_an_interrupted_prerequisite_fit_continues_from_its_last_checkpoint(tmp_path, monkeypatch):
    from src.studies import runner
    from src.studies.approach import Requires
    from src.studies.kinds import KINDS

    made, calls = tmp_path / "export", []

    def execute(cmd, log, in_process=False):  # the first attempt dies; the second writes the export
        calls.append(cmd[3:])
        log.write_text("Killed\n")
        if len(calls) > 1:
            made.mkdir(exist_ok=True)
        return None if len(calls) > 1 else "Killed"

    monkeypatch.setattr(runner, "execute", execute)
    fit = ["python", "-m", "src", "fit", "--config", "configs/mlm_imdb.yaml"]
    approach = KINDS["label_budget"](name="a", config=[], requires=Requires(path=str(made), commands=[fit]))
    assert "prerequisite failed" in runner.prepare(approach.requires, "a", 0, tmp_path, {})
    assert runner.prepare(approach.requires, "a", 0, tmp_path, {}) is None
    assert calls == [["fit", "--config", "configs/mlm_imdb.yaml"],
                     ["fit", "--config", "configs/mlm_imdb.yaml", "--ckpt_path", "last"]]
    assert not (tmp_path / "export.preparing.json").exists() and (tmp_path / "export.prepared.json").exists()
    changed = KINDS["label_budget"](name="a", config=[], requires=Requires(path=str(tmp_path / "other"), commands=[
        fit + ["--trainer.max_steps", "5"]]))
    (tmp_path / "other.preparing.json").write_text("another recipe")
    runner.prepare(changed.requires, "a", 0, tmp_path, {})
    assert calls[-1][-2:] == ["--trainer.max_steps", "5"]  # what another recipe left is not resumed


def test_each_pair_is_compared_once_whatever_its_orientation(tmp_path):
    from src.studies.report import pairs

    study = load_study(study_file(tmp_path, reference="tune", compare=[["tune", "zero"], ["icl", "zero"]]))
    assert pairs(study) == [("zero", "tune"), ("icl", "tune"), ("icl", "zero")]


def test_a_run_hashes_every_file_an_ensemble_argument_lists(tmp_path):
    from src.studies import provenance

    a, b = tmp_path / "a" / "predictions.jsonl", tmp_path / "b" / "predictions.jsonl"
    for path, text in ((a, "one\n"), (b, "two\n")):
        path.parent.mkdir()
        path.write_text(text)
    got = provenance.inputs(["--data.init_args.soft_labels", json.dumps([str(a), str(b)]), str(a), "[not json"])
    assert set(got) == {str(a), str(b)} and got[str(a)] != got[str(b)]


def test_a_report_with_no_rows_here_names_the_published_rows_to_copy_back(tmp_path):
    from src.studies.report import report

    study = load_study(study_file(tmp_path, doc=str(tmp_path / "docs" / "studies" / "s" / "README.md")))
    published = tmp_path / "docs" / "studies" / "s" / "results.jsonl"
    published.parent.mkdir(parents=True)
    published.write_text("")
    with pytest.raises(UserError, match=f"or report its published rows: mkdir -p .* && cp {published} "):
        report(study)


def test_a_difference_with_an_end_near_zero_is_drawn_10000_times(tmp_path, monkeypatch):
    """At 1,000 draws an interval end within 0.2 points of zero moves across zero with the bootstrap's noise: such a
    pair is drawn again, 10,000 times; others keep the study's draws."""
    import src.studies.report as report_module

    asked = []

    def fake(a, b, draws, seed=0):
        asked.append(draws)
        return 0.01, (0.001 if draws < 10_000 else 0.0005), 0.02  # low end 0.1 points above zero

    monkeypatch.setattr(report_module, "paired_difference", fake)
    study = load_study(study_file(tmp_path, reference="zero"))
    ok = [{"approach": a, "labels": n, "seed": 0, "correct": [1, 0, 1, 1]}
          for a, n in (("zero", 0), ("tune", 16), ("icl", 4))]
    rows = report_module.differences(study, ok)
    assert asked.count(10_000) == len(rows) and rows[0]["low"] == 0.0005
    asked.clear()

    def far(a, b, draws, seed=0):
        asked.append(draws)
        return 0.02, 0.01, 0.03

    monkeypatch.setattr(report_module, "paired_difference", far)
    assert report_module.differences(study, ok) and set(asked) == {study.bootstrap}  # far from zero: as they were
