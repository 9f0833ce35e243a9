"""Prompt engineering as a study: zero-shot accuracy of every prompt template x label-word pair x chat template (off,
on) under every calibration, on validation reviews (a choice: never on the reported test reviews). Its report picks
the recipe's prompt by the rule the grid file writes (`choose`: the best accuracy under one calibration) and writes
it as a config overlay, which the label-budget study's zero-shot approaches use: only that prompt is scored on test.

Each prompt is a run of the zero-shot recipe through the study runner: `fit` fits the `unlabelled` calibration on a
seeded sample of unlabelled training reviews in that prompt, then the evaluation reviews are scored once and
classified under each calibration from the same scores. With the chat template the prompt is the user's turn and the
answer opens the assistant's turn, so the label words lose their leading space there.

To run: python -m src prompts run --config configs/studies/prompts.yaml   (then: python -m src prompts report ...)
"""

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import yaml

from src.data.selection import EvalSplit
from src.doc_tables import write_between_markers
from src.errors import UserError
from src.models.calibrations import compared, label_free
from src.stats import bootstrap_interval, mcnemar_exact, paired_difference
from src.studies.report import publish_rows
from src.studies.runner import current_rows
from src.studies.schema import Study, parse, parse_study


@dataclass
class Choose:
    """The rule that picks the recipe's prompt: the best accuracy under `calibration`; the overlay goes to `write`."""

    calibration: str
    write: str


@dataclass(frozen=True)
class Cell:
    """One prompt of the grid, as its run prompts: the template (the chat template applied where it is on), the
    label words as scored, and whether the chat template is on."""

    prompt: str
    words: list[str]
    chat: bool


@dataclass
class Grid:
    name: str
    recipe: str  # every prompt is a run of it
    templates: list[str]
    label_words: list[list[str]]
    calibration_reviews: int  # unlabelled training reviews that fit the `unlabelled` calibration, in each prompt
    choose: Choose
    eval_split: EvalSplit = "validation"
    chat_template: list[bool] = field(default_factory=lambda: [False, True])
    model_name: str | None = None  # None: the recipe's
    args: list[str] = field(default_factory=list)
    output_dir: str = "outputs/studies"
    doc: str | None = None
    source: str | None = None
    val_size: int = 2500
    split_seed: int = 42
    eval_size: int | None = 1000
    eval_seed: int = 0
    seeds: list[int] = field(default_factory=lambda: [0])
    bootstrap: int = 1000
    cells: dict = field(default_factory=dict, repr=False)  # approach name -> Cell, made by load_grid


def load_grid(path: str | Path, quick: bool = False) -> tuple[Grid, Study]:
    """The grid file, and the study it makes: one approach (a zero-shot run) per template, label words and chat."""
    from src.data.text import chat_prompt, check_template
    from src.pretrained import load_tokenizer

    if not Path(path).is_file():
        raise UserError(f"prompt grid {path} does not exist; fix: pass configs/studies/prompts.yaml or a copy of it")
    grid = parse(Grid, yaml.safe_load(Path(path).read_text()) or {}, str(path))
    # Checked here, not in each prompt's run: there each would fail on its own, one after another.
    if not grid.templates or not grid.label_words or not grid.chat_template or grid.calibration_reviews < 1:
        raise UserError(f"{path}: templates, label_words and chat_template need an entry each and calibration_reviews "
                        "1 or more; fix: see configs/studies/prompts.yaml")
    for template in grid.templates:
        check_template(template)
    if grid.choose.calibration not in label_free():
        raise UserError(f"{path}: choose.calibration {grid.choose.calibration!r} cannot classify a review on its own; "
                        f"fix: one of {label_free()}")
    model = grid.model_name or yaml.safe_load(Path(grid.recipe).read_text())["model"]["init_args"]["model_name"]
    tokenizer = load_tokenizer(model)
    approaches = []
    for chat in grid.chat_template:
        for t, template in enumerate(grid.templates, 1):
            for words in grid.label_words:
                prompt = chat_prompt(template, tokenizer) if chat else template
                scored = [w.lstrip() for w in words] if chat else words
                name = f"T{t}_{'-'.join(w.strip() for w in words)}{'_chat' if chat else ''}"
                grid.cells[name] = Cell(prompt, scored, chat)
                approaches.append({
                    "name": name,
                    "kind": "calibrations", "config": [grid.recipe], "compare": compared(),
                    "args": ["--model.init_args.model_name", model, "--model.init_args.prompt_template", prompt,
                             "--data.init_args.prompt_template", prompt, "--model.init_args.label_words",
                             json.dumps(scored), "--model.init_args.calibration", "none",
                             "--data.init_args.limit_train", str(grid.calibration_reviews),
                             "--trainer.limit_val_batches", "0", *grid.args],
                })
    study = {k: getattr(grid, k) for k in asdict(grid) if k in Study.__dataclass_fields__} | {
        "budgets": [0], "approaches": approaches}
    study = parse_study(study, str(path), quick)
    if quick:  # a quick grid chooses into its own folder, never into the committed overlay
        grid.choose = Choose(grid.choose.calibration, str(study.folder() / "chosen.yaml"))
    return grid, study


def choose(grid: Grid, study: Study, done: dict[str, dict]) -> str:
    """The chosen prompt's approach: the best accuracy under the rule's calibration (the first of equals)."""
    kind = grid.choose.calibration
    scores = {a.name: sum(done[a.name]["compared"][kind]) for a in study.approaches if a.name in done}
    return max(scores, key=lambda name: (scores[name], -list(scores).index(name)))


def write_choice(grid: Grid, study: Study, name: str, correct: list[int]) -> None:
    """The chosen prompt as a config overlay on the recipe."""
    prompt, words = grid.cells[name].prompt, grid.cells[name].words
    accuracy, n_eval = sum(correct) / len(correct), len(correct)
    head = (f"# Chosen by the prompt grid ({grid.name}): {name}, the best accuracy under the "
            f"`{grid.choose.calibration}`\n# calibration on {n_eval} {grid.eval_split} reviews ({100 * accuracy:.1f}%)."
            " Written by `python -m src prompts report`; do not edit by hand.\n"
            f"# To run: python -m src fit --config {grid.recipe} --config {grid.choose.write}\n")
    body = {"model": {"init_args": {"prompt_template": prompt, "label_words": words,
                                    "calibration": grid.choose.calibration}},
            "data": {"init_args": {"prompt_template": prompt}}}
    Path(grid.choose.write).write_text(head + yaml.safe_dump(body, sort_keys=False, allow_unicode=True))
    print(f"chosen: {name} -> {grid.choose.write}", flush=True)


def markdown(grid: Grid, study: Study, done: dict[str, dict], chosen: str | None, failed: list[dict]) -> str:
    """Accuracy (%) of every prompt under every calibration, with its bootstrap interval over the reviews."""
    kinds = compared()
    lines = [f"| prompt | label words | chat | {' | '.join(kinds)} | reviews/s |",
             "| --- | --- | --- |" + " ---: |" * (len(kinds) + 1)]
    for a in study.approaches:
        row = done.get(a.name)
        if row is None:
            continue
        words, chat = grid.cells[a.name].words, grid.cells[a.name].chat
        cells = []
        for kind in kinds:
            correct = row["compared"][kind]
            low, high = bootstrap_interval([correct], study.bootstrap)
            cell = f"{100 * sum(correct) / len(correct):.1f} ({100 * low:.1f}–{100 * high:.1f})"
            cells.append(f"**{cell}**" if (a.name, kind) == (chosen, grid.choose.calibration) else cell)
        template = a.name.split("_")[0]
        lines.append(f"| {template} | {' / '.join(f'`{w}`' for w in words)} | {'on' if chat else 'off'} | "
                     f"{' | '.join(cells)} | {row['eval_reviews_per_s']:.2f} |")
    n_eval = len(next(iter(done.values()))["correct"]) if done else 0
    notes = ["", f"Accuracy (%) on the same {n_eval} **{study.eval_split}** reviews (evaluation hash "
             f"`{next(iter(done.values()))['eval_reviews'] if done else '-'}`), with the 95% bootstrap interval over "
             f"them ({study.bootstrap} draws). Bold: the prompt the rule chose (best under "
             f"`{grid.choose.calibration}`), written to `{grid.choose.write}`. `unlabelled` is fitted on "
             f"{grid.calibration_reviews} unlabelled training reviews in the same prompt; `transductive` borrows the "
             "evaluated reviews' balance (a comparison, not a classifier). Prompts (`{text}` is the review, cut to "
             "fit the recipe's max_length):", ""]
    notes += [f"- T{i}: `{json.dumps(t)[1:-1]}`" for i, t in enumerate(grid.templates, 1)]
    if chosen and len(done) > 1:  # is the choice distinguishable from the next best? paired on the same reviews
        kind = grid.choose.calibration
        runner_up = max((n for n in done if n != chosen), key=lambda n: sum(done[n]["compared"][kind]))
        a, b = done[chosen]["compared"][kind], done[runner_up]["compared"][kind]
        diff, low, high = paired_difference({0: a}, {0: b}, study.bootstrap)
        verdict = "the chosen prompt is better" if low > 0 else "no measurable difference"
        notes += ["", f"The chosen prompt ({chosen}) against the runner-up ({runner_up}) under `{kind}`, paired on the "
                  f"same reviews: {100 * diff:+.1f} points [{100 * low:+.1f}, {100 * high:+.1f}], McNemar p = "
                  f"{mcnemar_exact(a, b):.3f}: {verdict}."]
    if failed:
        notes += ["", "Failed runs:", *[f"- {r['approach']}: {r['error']}" for r in failed]]
    return "\n".join(lines + notes) + "\n"


def report(grid: Grid, study: Study, doc: bool = True) -> Path:
    """Write the grid's report into its folder and, with `doc`, the table and rows beside its doc and the chosen
    prompt's overlay (`run` reports without: those are tracked files)."""
    rows, _ = current_rows(study)
    if len({r["eval_reviews"] for r in rows if r["status"] == "ok"}) > 1:
        raise UserError("the prompts were scored on different evaluation reviews; fix: start the grid in a new folder")
    done = {r["approach"]: r for r in rows if r["status"] == "ok"}
    if not done:
        raise UserError(f"no prompt scored in {study.folder() / 'results.jsonl'}; fix: python -m src prompts run first")
    chosen = None
    if len(done) == len(study.approaches):  # the rule chooses among all the prompts, never among some
        chosen = choose(grid, study, done)
        if doc:
            Path(grid.choose.write).parent.mkdir(parents=True, exist_ok=True)
            write_choice(grid, study, chosen, done[chosen]["compared"][grid.choose.calibration])
    out = study.folder() / "report.md"
    out.write_text(markdown(grid, study, done, chosen, [r for r in rows if r["status"] == "failed"]))
    print(f"report: {out}", flush=True)
    if doc and study.doc:
        publish_rows(study)
        write_between_markers(study.doc, f"study:{study.name}", out.read_text())
    return out
