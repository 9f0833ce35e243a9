"""The study's report: one cell per approach and label budget (mean over seeds, the seed interval, the bootstrap
interval over seeds and reviews), a table of paired differences between the approaches the study file compares
(with a verdict only where the interval excludes zero), the learning-curve plot, TensorBoard HPARAMS, and the doc.

Only rows of the approaches as they stand are reported (a changed approach's old rows are left out and counted),
and all of them must have scored the same evaluation reviews (texts and labels).

To run: python -m src study report --config configs/studies/label_budget.yaml   (-> report.md, learning_curve.png)
"""

import json
import statistics
from pathlib import Path

from src.doc_tables import write_between_markers
from src.errors import UserError
from src.stats import bootstrap_interval, mcnemar_exact, paired_difference, seed_interval
from src.studies.runner import current_rows
from src.studies.schema import Study


def check_rows(rows: list[dict]) -> list[dict]:
    """The successful rows, which must share one evaluation hash."""
    ok = [r for r in rows if r["status"] == "ok"]
    if len({r["eval_reviews"] for r in ok}) > 1:
        raise UserError("the runs were scored on different evaluation reviews (the source's files changed mid-study); "
                        "fix: start the study in a new output folder, or delete its results.jsonl")
    return ok


def cell_runs(ok: list[dict], approach: str, labels: int) -> dict[int, list[int]]:
    """seed -> correctness of an approach's runs at a budget."""
    return {r["seed"]: r["correct"] for r in ok if r["approach"] == approach and r["labels"] == labels}


def summarise(study: Study, ok: list[dict]) -> list[dict]:
    """One cell per approach and label budget: mean accuracy, seed interval, bootstrap interval, cost."""
    cells = []
    for a in study.approaches:
        for n in sorted({r["labels"] for r in ok if r["approach"] == a.name}):
            runs = sorted((r for r in ok if r["approach"] == a.name and r["labels"] == n), key=lambda r: r["seed"])
            mean, half = seed_interval([r["accuracy"] for r in runs])
            low, high = bootstrap_interval([r["correct"] for r in runs], study.bootstrap)
            cells.append({"approach": a.name, "labels": n, "runs": len(runs), "mean": mean, "seed_half": half,
                          "boot_low": low, "boot_high": high, "fit_s": statistics.median(r["fit_s"] for r in runs),
                          "eval_reviews_per_s": statistics.median(r["eval_reviews_per_s"] for r in runs)})
    return cells


def pairs(study: Study) -> list[tuple[str, str]]:
    """The comparisons the study file asks for: each approach against the reference, then the named pairs."""
    out = [(a.name, study.reference) for a in study.approaches if study.reference and a.name != study.reference]
    unique = {}
    for a, b in out + [tuple(p) for p in study.compare]:
        unique.setdefault(frozenset((a, b)), (a, b))  # a pair once, in the orientation first asked for
    return list(unique.values())


# An interval end within 0.2 points of zero: at 1,000 draws the verdict flips with the bootstrap's own noise, so such
# a pair is drawn again 10,000 times.
NEAR_ZERO, REFINED_DRAWS = 0.002, 10_000


def differences(study: Study, ok: list[dict]) -> list[dict]:
    """Paired differences (a − b) at the budgets both ran; an approach run at one budget only (zero-shot, a student)
    is a level, compared with every budget of the other."""
    out = []
    budgets = {a.name: sorted({r["labels"] for r in ok if r["approach"] == a.name}) for a in study.approaches}
    for a, b in pairs(study):
        shared = [(n, n) for n in budgets[a] if n in budgets[b]]
        if not shared and len(budgets[a]) == 1:
            shared = [(budgets[a][0], n) for n in budgets[b]]
        elif not shared and len(budgets[b]) == 1:
            shared = [(n, budgets[b][0]) for n in budgets[a]]
        for na, nb in shared:
            ra, rb = cell_runs(ok, a, na), cell_runs(ok, b, nb)
            mean, low, high = paired_difference(ra, rb, study.bootstrap)
            if min(abs(low), abs(high)) < NEAR_ZERO and study.bootstrap < REFINED_DRAWS:
                mean, low, high = paired_difference(ra, rb, REFINED_DRAWS)  # its verdict would flip with the draws
            p = mcnemar_exact(*ra.values(), *rb.values()) if len(ra) == len(rb) == 1 else None
            verdict = (f"{a} better" if low > 0 else f"{b} better" if high < 0 else "no measurable difference")
            out.append({"a": a, "labels_a": na, "b": b, "labels_b": nb, "runs_a": len(ra), "runs_b": len(rb),
                        "diff": mean, "low": low, "high": high, "mcnemar_p": p, "verdict": verdict})
    return out


def cell_text(c: dict | None) -> str:
    if c is None:
        return ""
    spread = f"±{100 * c['seed_half']:.1f}" if c["seed_half"] is not None else "(1 run)"
    return f"{100 * c['mean']:.1f} {spread} [{100 * c['boot_low']:.1f}–{100 * c['boot_high']:.1f}]"


def budget_meanings(study: Study, cells: list[dict]) -> dict[str, list[str]]:
    """What N counts (a fine-tuning run's N is human labels, a time-budget trial's N is training reviews), from the
    kinds of the approaches in the table, with the approaches of each."""
    shown, meanings = {c["approach"] for c in cells}, {}
    for a in study.approaches:
        if a.name in shown:
            meanings.setdefault(a.budget_meaning, []).append(a.name)
    return meanings


def budget_caption(study: Study, cells: list[dict]) -> str:
    meanings = budget_meanings(study, cells)
    if len(meanings) == 1:
        return f"N is the number of {next(iter(meanings))} a run used."
    return "N is the number of " + "; of ".join(f"{m} ({', '.join(names)})" for m, names in meanings.items()) + \
        " a run used."


def markdown(study: Study, cells: list[dict], ok: list[dict], failed: list[dict], left_out: int,
             diffs: list[dict]) -> str:
    budgets = sorted({c["labels"] for c in cells})
    lines = [f"| approach | {' | '.join(f'N = {n}' for n in budgets)} | runs | fit s (median) | eval reviews/s | "
             "CPU/GPU min (all runs) | prerequisites min | device |",
             "| --- |" + " ---: |" * (len(budgets) + 5) + " --- |"]
    for a in study.approaches:
        mine = {c["labels"]: c for c in cells if c["approach"] == a.name}
        if not mine:
            continue
        runs = [r for r in ok if r["approach"] == a.name]
        devices = ", ".join(sorted({f"{r['device']} {r['precision']}" for r in runs}))
        lines.append(f"| {a.name} | {' | '.join(cell_text(mine.get(n)) for n in budgets)} | {len(runs)} | "
                     f"{statistics.median(r['fit_s'] for r in runs):.0f} | "
                     f"{statistics.median(r['eval_reviews_per_s'] for r in runs):.1f} | "
                     f"{sum(r['wall_s'] for r in runs) / 60:.0f} | "
                     f"{sum(r.get('prepare_s') or 0 for r in runs) / 60:.0f} | {devices} |")
    n_eval = len(ok[0]["correct"]) if ok else 0
    notes = ["", f"Accuracy (%) on the same {n_eval} reviews of the **{study.eval_split}** split in every run "
             f"(evaluation hash `{ok[0]['eval_reviews'] if ok else '-'}`): mean over seeds ±half-width of its 95% t "
             f"interval over seeds (\"1 run\": no spread measured), and in brackets the 95% bootstrap interval "
             f"resampling seeds and reviews together ({study.bootstrap} draws). {budget_caption(study, cells)} "
             "Minutes: wall time of the runs (rows recorded before `prepare_s` existed include their "
             "prerequisites), and apart, the prerequisites (teachers, first students, adaptation) these runs made, "
             "each counted once, by the first run that needed it (one made earlier, or by another approach, counts 0)."]
    if diffs:
        notes += ["", "Paired differences (accuracy points, a − b; the same reviews, and the same seeds where both ran "
                  "them): 95% bootstrap interval resampling seeds and reviews together (an interval with an end "
                  f"within {100 * NEAR_ZERO:.1f} points of zero from {REFINED_DRAWS:,} draws); McNemar's exact p "
                  "where each side is one run. A verdict only where the interval excludes zero.", "",
                  "| a | N | b | N | a − b | 95% interval | McNemar p | verdict |",
                  "| --- | ---: | --- | ---: | ---: | --- | ---: | --- |"]
        for d in diffs:
            p = "" if d["mcnemar_p"] is None else f"{d['mcnemar_p']:.3f}"
            notes.append(f"| {d['a']} | {d['labels_a']} | {d['b']} | {d['labels_b']} | {100 * d['diff']:+.1f} | "
                         f"[{100 * d['low']:+.1f}, {100 * d['high']:+.1f}] | {p} | {d['verdict']} |")
    if left_out:
        notes += ["", f"{left_out} recorded row(s) of approaches since changed (or of runs no longer planned) left "
                  "out."]
    if failed:
        notes += ["", "Failed runs:", *[f"- {r['approach']} N={r['labels']} seed={r['seed']}: {r['error']}"
                                        for r in failed]]
    return "\n".join(lines + notes) + "\n"


def plot(study: Study, cells: list[dict], path: Path) -> str:
    """Accuracy by label budget, one curve per approach (a level for 0 labels); where every run has the same budget
    (a search among recipes) a curve would be dots at one x, so one point per approach. Returns the title."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5))
    budgets = sorted({c["labels"] for c in cells})
    if len(budgets) == 1:
        title = points(ax, study, cells, budgets[0])
    else:
        title = curves(ax, study, cells)
    ax.set_ylabel(f"accuracy on {study.eval_split} reviews (%)")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return title


def curves(ax, study: Study, cells: list[dict]) -> str:
    for i, a in enumerate(study.approaches):
        mine = sorted((c for c in cells if c["approach"] == a.name), key=lambda c: c["labels"])
        color = f"C{i % 10}"  # one colour per approach, in the study's order
        if not mine:
            continue
        if [c["labels"] for c in mine] == [0]:  # no labels: a level, not a curve
            ax.axhline(100 * mine[0]["mean"], linestyle="--", label=f"{a.name} (0 labels)", color=color)
            continue
        x = [c["labels"] for c in mine]
        y = [100 * c["mean"] for c in mine]
        half = [100 * (c["seed_half"] or 0) for c in mine]
        ax.plot(x, y, marker="o", label=a.name, color=color)
        ax.errorbar(x, y, yerr=half, fmt="none", capsize=3, color=color)
        ax.fill_between(x, [v - h for v, h in zip(y, half)], [v + h for v, h in zip(y, half)], alpha=0.2, color=color)
    ax.set_xscale("log")
    meanings = budget_meanings(study, cells)
    ax.set_xlabel(f"{next(iter(meanings)) if len(meanings) == 1 else 'N'} (log scale)")
    ax.legend(fontsize=8)
    return f"{study.name}: accuracy by label budget (bars and bands: 95% interval over seeds)"


def points(ax, study: Study, cells: list[dict], budget: int) -> str:
    shown = [c for a in study.approaches for c in cells if c["approach"] == a.name]
    for i, c in enumerate(shown):  # the bootstrap interval (seeds and reviews): defined for one run too
        y = 100 * c["mean"]
        ax.errorbar([i], [y], yerr=[[y - 100 * c["boot_low"]], [100 * c["boot_high"] - y]], fmt="o", capsize=6,
                    color=f"C{i % 10}")
        ax.annotate(f"{y:.1f}", (i, y), textcoords="offset points", xytext=(8, 0), fontsize=9)
    ax.set_xticks(range(len(shown)), [c["approach"] for c in shown])
    ax.set_xlim(-0.5, len(shown) - 0.5)
    return f"{study.name}: accuracy at N = {budget} (95% bootstrap intervals)"


def log_hparams(ok: list[dict], path: Path) -> None:
    """Every run as one row of TensorBoard's HPARAMS view (`tensorboard --logdir <study folder>/tensorboard`)."""
    from torch.utils.tensorboard import SummaryWriter

    for r in ok:
        with SummaryWriter(str(path / f"{r['approach']}_n{r['labels']}_seed{r['seed']}")) as writer:
            writer.add_hparams({"approach": r["approach"], "labels": r["labels"], "seed": r["seed"]},
                               {"study/accuracy": r["accuracy"], "study/fit_s": r["fit_s"]}, run_name=".")


def published(study: Study) -> Path | None:
    """Where the study's rows are published beside its doc (`docs/studies/<name>/results.jsonl` beside its page
    `docs/studies/<name>/README.md`), if it has a doc."""
    return Path(study.doc).parent / "results.jsonl" if study.doc else None


def publish_rows(study: Study) -> Path:
    """A copy of the study's rows beside its doc, for readers and for resuming on another machine (copy it back to
    `<output_dir>/<name>/results.jsonl`)."""
    copy = published(study)
    copy.parent.mkdir(parents=True, exist_ok=True)
    copy.write_text((study.folder() / "results.jsonl").read_text())
    return copy


def report(study: Study, doc: bool = True) -> Path:
    """Write the report of what is recorded into the study's folder and, with `doc`, its table, plot and rows beside
    the study's doc (`run` reports without: writing tracked files mid-study would mark the next runs' tree dirty)."""
    rows, left_out = current_rows(study)
    ok = check_rows(rows)
    if not ok:
        rows_there = published(study)
        again = (f", or report its published rows: mkdir -p {study.folder()} && cp {rows_there} {study.folder()}/"
                 if rows_there is not None and rows_there.is_file() else "")
        raise UserError(f"no successful run of the study as it stands in {study.folder() / 'results.jsonl'}; fix: "
                        f"python -m src study run --config <its file> first{again}")
    cells, diffs = summarise(study, ok), differences(study, ok)
    out = study.folder()
    table = markdown(study, cells, ok, [r for r in rows if r["status"] == "failed"], left_out, diffs)
    (out / "report.md").write_text(table)
    (out / "cells.json").write_text(json.dumps({"cells": cells, "differences": diffs}, indent=2))
    title = plot(study, cells, out / "learning_curve.png")
    log_hparams(ok, out / "tensorboard")
    print(f"report: {out / 'report.md'}, {out / 'learning_curve.png'}, HPARAMS in {out / 'tensorboard'}", flush=True)
    if doc and study.doc:
        publish_rows(study)
        image = Path(study.doc).parent / f"{study.name}.png"
        image.write_bytes((out / "learning_curve.png").read_bytes())
        write_between_markers(study.doc, f"study:{study.name}",
                              table + f"\n![{title}]({image.name})\n")
        print(f"-> {study.doc}", flush=True)
    return out / "report.md"
