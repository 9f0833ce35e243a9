"""The `setfit` library against this project's SetFit (src/models/setfit.py): the same packaged MiniLM, the same N
labelled training reviews (the study's class-balanced sample for each seed), the same 1,000 validation reviews as
configs/studies/beat_the_teacher_validation.yaml. The library trains with its defaults (its "oversampling" pairs: every
positive and every negative pair of the N reviews, the fewer kind repeated to match, about 140 pairs at N = 16 and
2,000 at 64; one epoch, batch 16, body learning rate 2e-5, logistic-regression head), its encoder cut to 256 tokens as
ours. A cross-check that the native recipe is SetFit, not a weaker cousin: each run's row (accuracy, per-review
correctness, times, versions) is appended to `--out` (a rerun does only the runs missing), and the table, with the
paired difference against the study's `setfit_e32` rows, goes into docs/results.md between its markers.

Needs the library, which is no dependency of the project (it brings a second training loop):
  pip install --no-deps setfit==1.2.0 sentence-transformers==6.2.0 scikit-learn evaluate
To run: .venv/bin/python benchmarks/setfit_library.py --budgets 16 64 --seeds 0 1 2
"""

import argparse
import json
import time
from importlib.metadata import version
from pathlib import Path

from src.data.selection import balanced_sample, evaluation_reviews, training_pool
from src.doc_tables import write_between_markers
from src.hashing import texts_hash
from src.pretrained import resolve
from src.stats import paired_difference

STUDY_ROWS = "docs/studies/beat_the_teacher_validation/results.jsonl"


def run(labels: int, seed: int, eval_texts: list[str], eval_labels: list[int]) -> dict:
    import datasets
    from setfit import SetFitModel, Trainer, TrainingArguments

    pool = training_pool(None, 2500, 42)  # as the data modules hold out validation (val_size 2500, seed 42)
    rows = balanced_sample(pool["label"], labels, 2, seed)  # as data.label_budget draws them for data.label_seed
    chosen = pool.select(rows)
    train = datasets.Dataset.from_dict({"text": chosen["text"], "label": chosen["label"]})
    start = time.perf_counter()
    model = SetFitModel.from_pretrained(resolve("sentence-transformers/all-MiniLM-L6-v2")[0])
    model.model_body.max_seq_length = 256
    args = TrainingArguments(batch_size=16, num_epochs=1, seed=seed, report_to="none", save_strategy="no",
                             output_dir="outputs/bench/setfit_library")  # not its default checkpoints/ in the cwd
    Trainer(model=model, args=args, train_dataset=train).train()
    fit_s = time.perf_counter() - start
    start = time.perf_counter()
    predicted = [int(p) for p in model.predict(eval_texts, batch_size=32)]
    eval_s = time.perf_counter() - start
    correct = [int(p == y) for p, y in zip(predicted, eval_labels)]
    return {"labels": labels, "seed": seed, "accuracy": sum(correct) / len(correct), "correct": correct,
            "eval_reviews": texts_hash(eval_texts, eval_labels), "fit_s": round(fit_s, 1), "eval_s": round(eval_s, 1),
            "versions": {p: version(p) for p in ("setfit", "sentence-transformers", "torch", "transformers")}}


def accuracy(correct: dict[int, list[int]]) -> float:
    return 100 * sum(map(sum, correct.values())) / sum(map(len, correct.values()))


def table(rows: list[dict], study_rows: list[dict], draws: int) -> str:
    lines = ["| N | setfit library | ours, 32 passes (`setfit_e32`) | library − ours | 95% interval | library fit s "
             "(median) |", "| ---: | ---: | ---: | ---: | --- | ---: |"]
    for n in sorted({r["labels"] for r in rows}):
        lib = {r["seed"]: r["correct"] for r in rows if r["labels"] == n}
        ours = {r["seed"]: r["correct"] for r in study_rows if r["labels"] == n}
        fit = sorted(r["fit_s"] for r in rows if r["labels"] == n)[len(lib) // 2]
        if not ours:
            lines.append(f"| {n} | {accuracy(lib):.1f} ({len(lib)} seeds) | | | | {fit:.0f} |")
            continue
        diff, low, high = paired_difference(lib, ours, draws)
        lines.append(f"| {n} | {accuracy(lib):.1f} ({len(lib)} seeds) | {accuracy(ours):.1f} ({len(ours)} seeds) | "
                     f"{100 * diff:+.1f} | [{100 * low:+.1f}, {100 * high:+.1f}] | {fit:.0f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--budgets", type=int, nargs="+", default=[16, 64])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--eval_size", type=int, default=1000)
    parser.add_argument("--out", default="outputs/bench/setfit_library.jsonl")
    parser.add_argument("--doc", default="docs/results.md", help="where the table goes (between its markers)")
    parser.add_argument("--bootstrap", type=int, default=1000)
    args = parser.parse_args()
    reviews = evaluation_reviews(None, "validation", args.eval_size, 0)  # the validation study's reviews
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    done = [json.loads(line) for line in out.read_text().splitlines()] if out.exists() else []
    for n in args.budgets:
        for seed in args.seeds:
            if any(r["labels"] == n and r["seed"] == seed for r in done):
                continue
            row = run(n, seed, reviews.texts, reviews.labels)
            print(f"setfit library N={n} seed={seed}: {row['accuracy']:.4f} (fit {row['fit_s']:.0f} s)", flush=True)
            with open(out, "a") as f:
                f.write(json.dumps(row) + "\n")
            done.append(row)
    ours = {}
    for line in Path(STUDY_ROWS).read_text().splitlines():  # the latest ok row of each run, as the report takes them
        r = json.loads(line)
        if r["approach"] == "setfit_e32" and r["status"] == "ok" and r["eval_reviews"] == done[0]["eval_reviews"]:
            ours[(r["labels"], r["seed"])] = r
    body = table(done, list(ours.values()), args.bootstrap)
    print(body)
    write_between_markers(args.doc, "setfit_library", f"`python benchmarks/setfit_library.py` ({out}): accuracy (%) "
                          f"on the {args.eval_size} validation reviews of the beat-the-teacher study (evaluation hash "
                          f"`{done[0]['eval_reviews']}`), mean over seeds; the paired difference resamples seeds and "
                          f"reviews together ({args.bootstrap} draws).\n\n{body}")


if __name__ == "__main__":
    main()
