"""Studies: one command runs a grid of the project's recipes (approaches x label budgets x seeds), each run through the
same CLI, data and model code as a single run and each scored on the same evaluation reviews, then reports accuracy
with a 95% interval over seeds and a bootstrap interval over the evaluation reviews.

Rows go to `<output_dir>/<name>/results.jsonl`, one per run (approach, labels, seed, accuracy, per-review correctness,
wall time, peak memory, run folder). A killed study continues with the runs not yet done; a run that fails is recorded
with its one-line error and the study goes on (a later `run` retries it).

To run: python -m src.study run --config configs/studies/label_budget.yaml
        python -m src.study report --config configs/studies/label_budget.yaml   (-> report.md, learning_curve.png)
"""

import argparse
import hashlib
import json
import math
import os
import random
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import yaml

from src.errors import UserError

# Two-sided 95% Student t quantiles by degrees of freedom (beyond 30 the normal's 1.96 is within 4%).
T95 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262, 10: 2.228,
       15: 2.131, 20: 2.086, 30: 2.042}
LABELS_FROM = ("budget", "demonstrations", "none")


# ---- the study file ----

def load_study(path: str | Path, quick: bool = False) -> dict:
    """The study file, checked, with defaults filled in; `quick` keeps 2 seeds, the 2 smallest budgets and 16
    evaluation reviews."""
    return check_study(yaml.safe_load(Path(path).read_text()), path, quick)


def check_study(study: dict, path: str | Path, quick: bool = False) -> dict:
    """A study (read from `path`), checked, with defaults filled in (see `load_study`)."""
    study = {"output_dir": "outputs/studies", "source": None, "val_size": 2500, "split_seed": 42, "eval_size": 1000,
             "bootstrap": 1000, "eval_batch_size": 32, **study}
    for key in ("name", "budgets", "seeds", "approaches"):
        if key not in study:
            raise UserError(f"study file {path} lacks {key!r}; fix: add it (see configs/studies/label_budget.yaml)")
    for a in study["approaches"]:
        a.setdefault("labels_from", "budget")
        a.setdefault("args", [])
        if a["labels_from"] not in LABELS_FROM:
            raise UserError(f"approach {a.get('name')!r}: labels_from must be one of {LABELS_FROM}")
        if quick:
            for key in ("budgets", "seeds"):
                if key in a:
                    a[key] = a[key][:2]
    if quick:  # its own folder, and no doc: its rows never mix with the full study's
        study.pop("doc", None)
        study |= {"name": f"{study['name']}_quick", "eval_size": min(study["eval_size"], 16),
                  "budgets": sorted(study["budgets"])[:2], "seeds": study["seeds"][:2], "bootstrap": 200}
    return study


def planned(study: dict) -> list[dict]:
    """Every run of the study, in order: approaches, then label budgets, then seeds."""
    runs = []
    for a in study["approaches"]:
        budgets = a.get("budgets", [0] if a["labels_from"] == "none" else study["budgets"])
        for n in budgets:
            for seed in a.get("seeds", study["seeds"]):
                runs.append({"approach": a["name"], "labels": n, "seed": seed})
    return runs


def folder(study: dict) -> Path:
    return Path(study["output_dir"]) / study["name"]


def read_rows(study: dict) -> list[dict]:
    """The latest row of every run recorded so far."""
    path = folder(study) / "results.jsonl"
    rows = {}
    if path.exists():
        for line in path.read_text().splitlines():
            if line.strip():
                row = json.loads(line)
                rows[(row["approach"], row["labels"], row["seed"])] = row
    return list(rows.values())


# ---- one run ----

def eval_reviews(source: str | None, val_size: int, split_seed: int, size: int) -> tuple[list[str], list[int]]:
    """The evaluation reviews of every run: the first `size` of the data modules' held-out validation split (the same
    seeded split of the training reviews, drawn the same way), or of the source's test split when it has one."""
    from src.data.base import held_out_split
    from src.data.sources import default_source, load_source

    raw, _ = load_source(source or default_source())
    if "test" in raw:  # sources are ordered by label: a seeded sample, not the first rows
        reviews = raw["test"].shuffle(seed=split_seed)
    else:
        reviews = held_out_split(raw["train"], val_size, split_seed)["test"]
    reviews = reviews.select(range(min(size, len(reviews))))
    return list(reviews["text"]), list(reviews["label"])


def command(study: dict, approach: dict, run: dict, run_dir: Path) -> list[str]:
    """The CLI arguments of one run: the approach's recipe and arguments, the study's data settings, its labels."""
    n, seed = run["labels"], run["seed"]
    args = [x for c in approach["config"] for x in ("--config", c)] + list(approach["args"])
    args += ["--seed_everything", str(seed), "--data.init_args.val_size", str(study["val_size"]),
             "--data.init_args.seed", str(study["split_seed"]), "--trainer.enable_progress_bar", "false",
             "--trainer.logger.init_args.save_dir", str(run_dir.parent), "--trainer.logger.init_args.name", "",
             "--trainer.logger.init_args.version", run_dir.name]
    if study["source"]:
        args += ["--data.init_args.source", str(study["source"])]
    if approach["labels_from"] == "budget":
        args += ["--data.init_args.label_budget", str(n), "--data.init_args.label_seed", str(seed)]
    if "steps" in approach:  # steps, not epochs: `epochs` passes over the labels, at least `min` steps
        batch = approach["steps"].get("batch_size", 16)
        steps = max(approach["steps"]["min"], math.ceil(approach["steps"]["epochs"] * n / batch))
        args += ["--data.init_args.batch_size", str(batch), "--trainer.max_steps", str(steps),
                 "--trainer.max_epochs", "-1"]
    return args


def demonstrations(study: dict, n: int, seed: int) -> tuple[list[str], list[int]]:
    """`n` class-balanced labelled training reviews (never evaluation ones), in a seeded order, with their labels."""
    from src.data.base import held_out_split
    from src.data.classification import balanced_sample
    from src.data.sources import default_source, load_source

    raw, _ = load_source(study["source"] or default_source())
    train = held_out_split(raw["train"], study["val_size"], study["split_seed"])["train"]
    rows = balanced_sample(train["label"], n, len(set(train["label"])), seed)
    random.Random(seed).shuffle(rows)  # classes interleaved at random, not sorted
    return [train[i]["text"] for i in rows], [train[i]["label"] for i in rows]


def run_one(spec: dict) -> dict:
    """Fit one run with the project's CLI, then predict the evaluation reviews with its module (as `predict` does)."""
    import torch

    from src.api import Predictor
    from src.cli import main

    study, approach, run = spec["study"], spec["approach"], spec["run"]
    run_dir = Path(spec["run_dir"])
    args = command(study, approach, run, run_dir)
    if approach["labels_from"] == "demonstrations":
        texts, labels = demonstrations(study, run["labels"], run["seed"])
        args += ["--model.init_args.demonstrations", json.dumps(texts),
                 "--model.init_args.demonstration_labels", json.dumps(labels)]
    start = time.perf_counter()
    cli = main(args, run=False)
    trainer, model, data = cli.trainer, cli.model, cli.datamodule
    if approach.get("compare") and model.hparams.get("calibration") != "none":
        raise UserError("an approach with `compare` must predict raw scores; fix: add --model.init_args.calibration "
                        "none to its args")
    if approach.get("fit", True):
        trainer.fit(model, datamodule=data)
    fit_s = time.perf_counter() - start
    texts, labels = eval_reviews(study["source"], study["val_size"], study["split_seed"], study["eval_size"])
    device = "cuda" if torch.cuda.is_available() else "cpu"
    bf16 = str(trainer.precision).startswith("bf16")  # as the run trained (the CLI falls back to fp32 where slow)
    start = time.perf_counter()
    with torch.autocast(device, dtype=torch.bfloat16, enabled=bf16):
        rows = Predictor(model.to(device), data, batch_size=study["eval_batch_size"]).predict(texts)
    eval_s = time.perf_counter() - start
    correct = [int(row["label"] == y) for row, y in zip(rows, labels)]
    compared = {}
    if approach.get("compare"):  # a zero-shot run's reviews under each calibration, from the same scores
        scores = torch.tensor([row["probabilities"] for row in rows]).log()  # calibration none: the raw scores
        for kind in approach["compare"]:
            predicted = model.calibrate(scores, kind).argmax(-1).tolist()
            compared[kind] = [int(p == y) for p, y in zip(predicted, labels)]
    return {**run, "status": "ok", "accuracy": sum(correct) / len(correct), "correct": correct, "compared": compared,
            "eval_reviews": hashlib.sha256(json.dumps(texts).encode()).hexdigest()[:16],
            "fit_s": round(fit_s, 2), "eval_s": round(eval_s, 2), "eval_reviews_per_s": round(len(texts) / eval_s, 2),
            "peak_rss_gb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 3),
            "precision": str(trainer.precision), "device": device, "run_dir": str(run_dir)}


# ---- the study ----

def run_study(study: dict, only: list[str] | None = None, in_process: bool = False) -> list[dict]:
    """Every planned run not yet recorded as done (of the `only` approaches, if given), each in its own process
    (`in_process`: in this one, which saves each run's start-up where that dominates, on a GPU)."""
    out = folder(study)
    out.mkdir(parents=True, exist_ok=True)
    done = {(r["approach"], r["labels"], r["seed"]) for r in read_rows(study) if r["status"] == "ok"}
    approaches = {a["name"]: a for a in study["approaches"]}
    todo = [r for r in planned(study) if (r["approach"], r["labels"], r["seed"]) not in done
            and (not only or r["approach"] in only)]
    print(f"study {study['name']}: {len(done)} runs done, {len(todo)} to run -> {out / 'results.jsonl'}", flush=True)
    prepared: dict[str, str | None] = {}
    for i, run in enumerate(todo, 1):
        approach = approaches[run["approach"]]
        run_dir = out / "runs" / run["approach"] / f"n{run['labels']}_seed{run['seed']}"
        run_dir.mkdir(parents=True, exist_ok=True)
        if run["approach"] not in prepared:
            prepared[run["approach"]] = prepare(approach, out)
        start = time.perf_counter()
        if prepared[run["approach"]]:
            returncode = 1
            (run_dir / "run.log").write_text(f"error: {prepared[run['approach']]}\n")
        else:
            spec = {"study": study, "approach": approach, "run": run, "run_dir": str(run_dir)}
            (run_dir / "spec.json").write_text(json.dumps(spec))
            (run_dir / "result.json").unlink(missing_ok=True)
            returncode = execute([sys.executable, "-m", "src.study", "one", str(run_dir / "spec.json")],
                                 run_dir / "run.log", in_process)
        wall = time.perf_counter() - start
        result = run_dir / "result.json"
        if returncode == 0 and result.exists():
            row = json.loads(result.read_text()) | {"wall_s": round(wall, 2)}
        else:
            row = {**run, "status": "failed", "error": last_error(run_dir / "run.log", returncode),
                   "wall_s": round(wall, 2), "run_dir": str(run_dir)}
        with open(out / "results.jsonl", "a") as f:  # one line per run: a killed study loses the run in flight only
            f.write(json.dumps(row) + "\n")
        what = f"accuracy {row['accuracy']:.4f}" if row["status"] == "ok" else f"FAILED: {row['error']}"
        print(f"[{i}/{len(todo)}] {run['approach']} labels={run['labels']} seed={run['seed']}: {what} "
              f"({wall:.0f} s)", flush=True)
    return read_rows(study)


def execute(cmd: list[str], log: Path, in_process: bool = False) -> int:
    """Run `python -m src.study one <spec>` (or a prerequisite command) with its output in `log`; its exit code."""
    if in_process and cmd[1:3] == ["-m", "src.study"]:
        import traceback

        output = _RunOutput.install()
        with open(log, "w") as f:
            output.file = f
            try:
                main(cmd[3:])
                return 0
            except SystemExit as err:
                return err.code if isinstance(err.code, int) else 1
            except Exception:
                traceback.print_exc()
                return 1
            finally:
                output.file = None
    with open(log, "w") as f:
        return subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT,
                              env={**os.environ, "PYTHONUNBUFFERED": "1"}).returncode


class _RunOutput:
    """stdout and stderr while runs share this process: the current run's log, else the console. Logging handlers
    made during one run hold on to this object, not to that run's log file, which closes when the run ends."""

    def __init__(self, console):
        self.console, self.file = console, None

    @classmethod
    def install(cls) -> "_RunOutput":
        if not isinstance(sys.stdout, cls):
            sys.stdout = sys.stderr = cls(sys.stdout)
        return sys.stdout

    def write(self, text: str) -> int:
        return (self.file or self.console).write(text)

    def flush(self) -> None:
        (self.file or self.console).flush()

    def isatty(self) -> bool:
        return False

    def fileno(self) -> int:
        return self.console.fileno()


def prepare(approach: dict, out: Path) -> str | None:
    """Run an approach's prerequisite once (e.g. the masked-LM adaptation its runs start from: `command`, or several
    in order: `commands`), unless the path it creates exists; the one-line error if it fails."""
    need = approach.get("requires")
    if not need or Path(need["path"]).exists():
        return None
    log = out / "runs" / approach["name"] / "prepare.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    for i, cmd in enumerate(need.get("commands") or [need["command"]]):
        print(f"{approach['name']}: preparing {need['path']} ({' '.join(cmd)})", flush=True)
        step_log = log.with_name(f"prepare{i or ''}.log")
        code = execute([sys.executable if c == "python" else c for c in cmd], step_log)
        if code:
            return f"prerequisite failed ({' '.join(cmd)}): {last_error(step_log, code)}"
    if not Path(need["path"]).exists():
        return f"prerequisite did not write {need['path']}; fix: check {log.parent}/prepare*.log"
    return None


def last_error(log: Path, returncode: int) -> str:
    """The run's one-line error: its `error: ...` line, else the last line of its traceback."""
    lines = [line.strip() for line in log.read_text(errors="replace").splitlines() if line.strip()]
    for line in reversed(lines):
        if line.startswith("error: ") or "Error" in line.split(":")[0]:
            return line[:300]
    return f"exit code {returncode}" + (f": {lines[-1][:200]}" if lines else "")


# ---- the report ----

def seed_interval(values: list[float]) -> tuple[float, float]:
    """Mean and the half-width of its 95% t interval over seeds (0 for one seed)."""
    mean = statistics.fmean(values)
    if len(values) < 2:
        return mean, 0.0
    df = len(values) - 1
    t = T95[max(k for k in T95 if k <= df)] if df <= 30 else 1.96  # between table rows: the larger t (wider)
    return mean, t * statistics.stdev(values) / math.sqrt(len(values))


def bootstrap_interval(correct: list[list[int]], draws: int, seed: int = 0) -> tuple[float, float]:
    """95% percentile interval of the seed-averaged accuracy when the evaluation reviews are resampled (the same
    resample for every seed: the runs are paired on the reviews)."""
    rng = random.Random(seed)
    n = len(correct[0])
    per_review = [statistics.fmean(c[i] for c in correct) for i in range(n)]
    means = sorted(statistics.fmean(per_review[rng.randrange(n)] for _ in range(n)) for _ in range(draws))
    return means[int(0.025 * draws)], means[min(draws - 1, int(0.975 * draws))]


def summarise(study: dict, rows: list[dict]) -> list[dict]:
    """One cell per approach and label budget: mean accuracy, seed interval, bootstrap interval, cost."""
    ok = [r for r in rows if r["status"] == "ok"]
    if len({r["eval_reviews"] for r in ok}) > 1:
        raise UserError("the runs were scored on different evaluation reviews (eval_size, val_size, split_seed or "
                        "source changed mid-study); fix: start the study in a new output folder")
    cells = []
    for a in study["approaches"]:
        for n in sorted({r["labels"] for r in ok if r["approach"] == a["name"]}):
            runs = sorted((r for r in ok if r["approach"] == a["name"] and r["labels"] == n), key=lambda r: r["seed"])
            mean, half = seed_interval([r["accuracy"] for r in runs])
            low, high = bootstrap_interval([r["correct"] for r in runs], study["bootstrap"])
            cells.append({"approach": a["name"], "labels": n, "seeds": len(runs), "mean": mean, "seed_half": half,
                          "boot_low": low, "boot_high": high, "fit_s": statistics.median(r["fit_s"] for r in runs),
                          "eval_reviews_per_s": statistics.median(r["eval_reviews_per_s"] for r in runs)})
    return cells


def markdown(study: dict, cells: list[dict], rows: list[dict]) -> str:
    budgets = sorted({c["labels"] for c in cells})
    lines = [f"| approach | {' | '.join(f'N = {n}' for n in budgets)} | fit s (median run) | eval reviews/s | device |",
             "| --- |" + " ---: |" * (len(budgets) + 2) + " --- |"]
    for a in study["approaches"]:
        mine = {c["labels"]: c for c in cells if c["approach"] == a["name"]}
        if not mine:
            continue
        values = []
        for n in budgets:
            c = mine.get(n)
            values.append("" if c is None else f"{100 * c['mean']:.1f} ±{100 * c['seed_half']:.1f} "
                          f"({100 * c['boot_low']:.1f}–{100 * c['boot_high']:.1f})")
        runs = [r for r in rows if r["approach"] == a["name"] and r["status"] == "ok"]
        devices = ", ".join(sorted({f"{r['device']} {r['precision']}" for r in runs}))
        lines.append(f"| {a['name']} | {' | '.join(values)} | {statistics.median(r['fit_s'] for r in runs):.0f} | "
                     f"{statistics.median(r['eval_reviews_per_s'] for r in runs):.1f} | {devices} |")
    failed = [r for r in rows if r["status"] == "failed"]
    n_eval = len(next((r["correct"] for r in rows if r["status"] == "ok"), []))
    notes = [
        "", f"Accuracy (%) on the same {n_eval} evaluation reviews in every run: mean over seeds ±half-width of its "
        f"95% t interval over seeds, and (in brackets) the 95% bootstrap interval over the evaluation reviews "
        f"({study['bootstrap']} resamples, paired across seeds). N is the number of human labels a run used.",
    ]
    if failed:
        notes += ["", "Failed runs:", *[f"- {r['approach']} N={r['labels']} seed={r['seed']}: {r['error']}"
                                        for r in failed]]
    return "\n".join(lines + notes) + "\n"


def plot(study: dict, cells: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5))
    for i, a in enumerate(study["approaches"]):
        mine = sorted((c for c in cells if c["approach"] == a["name"]), key=lambda c: c["labels"])
        color = f"C{i % 10}"  # one colour per approach, in the study's order
        if not mine:
            continue
        if [c["labels"] for c in mine] == [0]:  # no labels: a level, not a curve
            ax.axhline(100 * mine[0]["mean"], linestyle="--", label=f"{a['name']} (0 labels)", color=color)
            continue
        x = [c["labels"] for c in mine]
        y = [100 * c["mean"] for c in mine]
        ax.plot(x, y, marker="o", label=a["name"], color=color)
        ax.errorbar(x, y, yerr=[100 * c["seed_half"] for c in mine], fmt="none", capsize=3, color=color)
        ax.fill_between(x, [100 * (c["mean"] - c["seed_half"]) for c in mine],
                        [100 * (c["mean"] + c["seed_half"]) for c in mine], alpha=0.2, color=color)
    ax.set_xscale("log")
    ax.set_xlabel("human labels (log scale)")
    ax.set_ylabel("accuracy on the evaluation reviews (%)")
    ax.set_title(f"{study['name']}: accuracy by label budget (bars and bands: 95% interval over seeds)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def log_hparams(study: dict, rows: list[dict], path: Path) -> None:
    """Every run as one row of TensorBoard's HPARAMS view (`tensorboard --logdir <study folder>/tensorboard`)."""
    from torch.utils.tensorboard import SummaryWriter

    for r in rows:
        if r["status"] != "ok":
            continue
        with SummaryWriter(str(path / f"{r['approach']}_n{r['labels']}_seed{r['seed']}")) as writer:
            writer.add_hparams({"approach": r["approach"], "labels": r["labels"], "seed": r["seed"]},
                               {"study/accuracy": r["accuracy"], "study/fit_s": r["fit_s"]}, run_name=".")


def report(study: dict) -> Path:
    rows = read_rows(study)
    if not rows:
        raise UserError(f"no runs recorded in {folder(study) / 'results.jsonl'}; fix: python -m src.study run first")
    cells = summarise(study, rows)
    out = folder(study)
    (out / "report.md").write_text(markdown(study, cells, rows))
    (out / "cells.json").write_text(json.dumps(cells, indent=2))
    plot(study, cells, out / "learning_curve.png")
    log_hparams(study, rows, out / "tensorboard")
    print(f"report: {out / 'report.md'}, {out / 'learning_curve.png'}, HPARAMS in {out / 'tensorboard'}", flush=True)
    if study.get("doc"):
        write_doc(study, (out / "report.md").read_text(), out / "learning_curve.png")
    return out / "report.md"


def write_doc(study: dict, table: str, png: Path | None = None) -> None:
    """The report's table (and plot) into the study's `doc` (between its markers), for readers of the repository."""
    doc = Path(study["doc"])
    body = table
    if png is not None:
        image = doc.parent / f"{study['name']}.png"
        image.write_bytes(png.read_bytes())
        body += f"\n![{study['name']}: accuracy by label budget]({image.name})\n"
    start, end = f"<!-- study:{study['name']}:start -->", f"<!-- study:{study['name']}:end -->"
    text = doc.read_text() if doc.exists() else ""
    if start not in text:
        text += f"\n{start}\n{end}\n"
    head, rest = text.split(start)
    doc.write_text(f"{head}{start}\n{body}{end}{rest.split(end, 1)[1]}")
    print(f"-> {doc}", flush=True)


def arguments() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m src.study", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name, help_ in (("run", "run the study's runs not yet done"), ("report", "write the report of what is done")):
        p = sub.add_parser(name, help=help_)
        p.add_argument("--config", required=True, help="the study file, e.g. configs/studies/label_budget.yaml")
        p.add_argument("--quick", action="store_true", help="2 seeds, the 2 smallest budgets, 16 evaluation reviews")
        if name == "run":
            p.add_argument("--only", nargs="+", help="run only these approaches")
            p.add_argument("--in_process", action="store_true",
                           help="run every run in this process (no start-up per run; for a GPU, no isolation)")
    one = sub.add_parser("one", help=argparse.SUPPRESS)
    one.add_argument("spec")
    return parser


def main(argv: list[str] | None = None) -> None:
    args = arguments().parse_args(argv)
    try:
        if args.command == "one":
            spec_path = Path(args.spec)
            result = run_one(json.loads(spec_path.read_text()))
            (spec_path.parent / "result.json").write_text(json.dumps(result))
            return
        study = load_study(args.config, args.quick)
        if args.command == "run":
            run_study(study, args.only, args.in_process)
        report(study)
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
