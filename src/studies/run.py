"""One run of a study: fit the approach's recipe with the project's CLI at its label budget and seed, then classify
the study's evaluation reviews with the fitted module (as `predict` does) and record the result with what
reproduces it: the fit's command line, the commit, versions, device, precision, and hashes of its inputs.

To run: python -m src study run_one <run folder>/spec.json   (the runner writes the spec; the result goes beside it)
"""

import json
import resource
import time
from datetime import datetime, timezone
from pathlib import Path

from src.data.selection import evaluation_reviews
from src.hashing import texts_hash
from src.studies import provenance
from src.studies.schema import Study, parse_study


def seeded(values: list[str], seed: int, labels: int | None = None) -> list[str]:
    """`{seed}` in a study file's arguments and prerequisites is the run's seed, and `{labels}` its label budget: a
    prerequisite per seed (a teacher), or per label budget and seed (a first student trained on those labels)."""
    values = [v.replace("{seed}", str(seed)) for v in values]
    return values if labels is None else [v.replace("{labels}", str(labels)) for v in values]


def fit_args(study: Study, approach, labels: int, seed: int, run_dir: Path) -> list[str]:
    """The CLI arguments of one run: the approach's recipe and arguments, the study's data settings, the seed (of
    every random choice: `seed_everything` and `data.sample_seed`), and the kind's own arguments."""
    args = [x for c in approach.config for x in ("--config", c)] + seeded(approach.args, seed, labels)
    args += ["--seed_everything", str(seed), "--data.init_args.sample_seed", str(seed),
             "--data.init_args.val_size", str(study.val_size), "--data.init_args.seed", str(study.split_seed),
             "--trainer.enable_progress_bar", "false", "--trainer.logger.init_args.save_dir", str(run_dir.parent),
             "--trainer.logger.init_args.name", "", "--trainer.logger.init_args.version", run_dir.name]
    if study.source:
        args += ["--data.init_args.source", study.source]
    return args + approach.run_args(study, labels, seed)


def run_one(spec: dict) -> dict:
    """Fit one run, then score the evaluation reviews; the row the study records."""
    import torch

    from src.api import Predictor
    from src.cli import main

    study = parse_study(spec["study"], "spec")
    approach = study.approach(spec["approach"])
    labels, seed, run_dir = spec["labels"], spec["seed"], Path(spec["run_dir"])
    args = fit_args(study, approach, labels, seed, run_dir)
    # What the run reads beyond the source code: the files its recipe and arguments name (not the study's own output
    # folder, which the runner's arguments name), hashed before the run can write anything.
    inputs = provenance.inputs([*approach.config, *seeded(approach.args, seed, labels)])
    start = time.perf_counter()
    cli = main(args, run=False)
    trainer, model, data = cli.trainer, cli.model, cli.datamodule
    trainer.fit(model, datamodule=data)
    fit_s = time.perf_counter() - start
    reviews = evaluation_reviews(study.source, study.eval_split, study.eval_size, study.eval_seed, study.val_size,
                                 study.split_seed)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    bf16 = str(trainer.precision).startswith("bf16")  # as the run trained (the CLI falls back to fp32 where slow)
    start = time.perf_counter()
    with torch.autocast(device, dtype=torch.bfloat16, enabled=bf16):
        rows = Predictor(model.to(device), data, batch_size=study.eval_batch_size).predict(reviews.texts)
    eval_s = time.perf_counter() - start
    correct = [int(row["label"] == y) for row, y in zip(rows, reviews.labels)]
    source = data.source
    return {"status": "ok", "accuracy": sum(correct) / len(correct), "correct": correct,
            **approach.results(model, rows, reviews.labels),
            "eval_split": study.eval_split, "eval_reviews": texts_hash(reviews.texts, reviews.labels),
            "fit_s": round(fit_s, 2), "eval_s": round(eval_s, 2),
            "eval_reviews_per_s": round(len(reviews.texts) / eval_s, 2),
            "peak_rss_gb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 3),
            "precision": str(trainer.precision), "device": device if device == "cpu" else torch.cuda.get_device_name(),
            "command": ["python", "-m", "src", "fit", *args],
            "inputs": {**inputs, "source:" + source: provenance.hash_source(source)},
            **provenance.environment(), "finished": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "run_dir": str(run_dir)}


def run_spec(spec_path: str | Path) -> None:
    """Run the spec's run and write `result.json` beside it; a `UserError` for bad input."""
    spec_path = Path(spec_path)
    result = run_one(json.loads(spec_path.read_text()))
    (spec_path.parent / "result.json").write_text(json.dumps(result))
