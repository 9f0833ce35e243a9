"""Prompt engineering: zero-shot accuracy of every prompt template x label-word pair x chat template (off, on), under
every calibration, on a fixed subset of the label-budget study's evaluation reviews, in one table.

Each prompt is a run of the zero-shot recipe through the study runner (its own process; a killed grid resumes, a
failed prompt is recorded and the grid goes on): `fit` fits the `unlabelled` calibration on unlabelled training reviews
in that prompt, then the evaluation reviews are scored once and classified under each calibration from the same
scores. With the chat template the prompt is the user's turn and the answer opens the assistant's turn, so the label
words lose their leading space there.

To run: python -m src.prompts run --config configs/studies/prompts.yaml   (then: python -m src.prompts report ...)
"""

import argparse
import json
import sys
from pathlib import Path

import yaml

from src import study as st
from src.errors import UserError
from src.models.zero_shot import COMPARED as CALIBRATIONS  # none, content_free, unlabelled, transductive


def load_grid(path: str | Path, quick: bool = False) -> dict:
    """The prompt grid as a study: one approach (a zero-shot run) per template, label-word pair and chat setting."""
    from src.data.text import chat_prompt
    from src.pretrained import load_tokenizer

    grid = yaml.safe_load(Path(path).read_text())
    for key in ("name", "recipe", "templates", "label_words", "calibration_reviews"):
        if key not in grid:
            raise UserError(f"prompt grid {path} lacks {key!r}; fix: add it (see configs/studies/prompts.yaml)")
    recipe = yaml.safe_load(Path(grid["recipe"]).read_text())
    model = grid.get("model_name") or recipe["model"]["init_args"]["model_name"]
    tokenizer = load_tokenizer(model)
    approaches = []
    for chat in grid.get("chat_template", [False, True]):
        for t, template in enumerate(grid["templates"], 1):
            for words in grid["label_words"]:
                prompt = chat_prompt(template, tokenizer) if chat else template
                scored = [w.lstrip() for w in words] if chat else words
                approaches.append({
                    "name": f"T{t}_{'-'.join(w.strip() for w in words)}{'_chat' if chat else ''}",
                    "config": [grid["recipe"]], "labels_from": "none", "seeds": [0], "compare": list(CALIBRATIONS),
                    "template": t, "label_words": scored, "chat": chat,
                    "args": ["--model.init_args.model_name", model, "--model.init_args.prompt_template", prompt,
                             "--data.init_args.prompt_template", prompt, "--model.init_args.label_words",
                             json.dumps(scored), "--model.init_args.calibration", "none",
                             "--data.init_args.limit_train", str(grid["calibration_reviews"]),
                             "--trainer.limit_val_batches", "0", *grid.get("args", [])],
                })
    return st.check_study({**grid, "budgets": [0], "seeds": [0], "approaches": approaches}, path, quick)


def markdown(grid: dict, rows: list[dict]) -> str:
    """Accuracy (%) of every prompt under every calibration, with its bootstrap interval over the reviews."""
    done = {r["approach"]: r for r in rows if r["status"] == "ok"}
    lines = [f"| prompt | label words | chat | {' | '.join(CALIBRATIONS)} | reviews/s |",
             "| --- | --- | --- |" + " ---: |" * (len(CALIBRATIONS) + 1)]
    best = max(((sum(c) / len(c), a, k) for a, r in done.items() for k, c in r["compared"].items()
                if k != "transductive"), default=None)  # the best classifier: transductive is a comparison only
    for a in grid["approaches"]:
        row = done.get(a["name"])
        if row is None:
            continue
        cells = []
        for kind in CALIBRATIONS:
            correct = row["compared"][kind]
            low, high = st.bootstrap_interval([correct], grid["bootstrap"])
            cell = f"{100 * sum(correct) / len(correct):.1f} ({100 * low:.1f}–{100 * high:.1f})"
            cells.append(f"**{cell}**" if best and (a["name"], kind) == best[1:] else cell)
        words = " / ".join(f"`{w}`" for w in a["label_words"])
        lines.append(f"| T{a['template']} | {words} | {'on' if a['chat'] else 'off'} | {' | '.join(cells)} | "
                     f"{row['eval_reviews_per_s']:.2f} |")
    n_eval = len(next(iter(done.values()))["correct"]) if done else 0
    failed = [r for r in rows if r["status"] == "failed"]
    notes = ["", f"Accuracy (%) on the same {n_eval} evaluation reviews (the first of the label-budget study's), with "
             f"the 95% bootstrap interval over them ({grid['bootstrap']} resamples); bold: the best classifier. "
             f"`unlabelled` is fitted on {grid['calibration_reviews']} unlabelled training reviews in the same prompt; "
             "`transductive` borrows the evaluated reviews' balance (a comparison, not a classifier). Prompts "
             "(`{text}` is the review, cut to fit the recipe's max_length):", ""]
    notes += [f"- T{i}: `{json.dumps(t)[1:-1]}`" for i, t in enumerate(grid["templates"], 1)]
    if failed:
        notes += ["", "Failed runs:", *[f"- {r['approach']}: {r['error']}" for r in failed]]
    return "\n".join(lines + notes) + "\n"


def report(grid: dict) -> Path:
    rows = st.read_rows(grid)
    if not rows:
        raise UserError(f"no runs recorded in {st.folder(grid) / 'results.jsonl'}; fix: python -m src.prompts run "
                        "first")
    out = st.folder(grid) / "report.md"
    out.write_text(markdown(grid, rows))
    print(f"report: {out}", flush=True)
    if grid.get("doc"):
        st.write_doc(grid, out.read_text())
    return out


def arguments() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m src.prompts", description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=["run", "report"], help="run the prompts not yet scored, or report")
    parser.add_argument("--config", required=True, help="the prompt grid, e.g. configs/studies/prompts.yaml")
    parser.add_argument("--quick", action="store_true", help="16 evaluation reviews, in its own folder")
    return parser


def main(argv: list[str] | None = None) -> None:
    args = arguments().parse_args(argv)
    try:
        grid = load_grid(args.config, args.quick)
        if args.command == "run":
            st.run_study(grid)
        report(grid)
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
