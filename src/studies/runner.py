"""The study runner: plans every run (approaches x label budgets x seeds), runs those not yet recorded, each in its
own process (or in this one, or spread over workers: workers.py), prepares prerequisites once, and appends one row
per run to `results.jsonl`.

A row is keyed by its approach, labels, seed and a hash of everything that defines how the approach runs (its
fields, the content of its config files, the study's data and evaluation settings): a changed approach runs again
instead of mixing old rows into the report. A killed study continues with the runs not yet done; a run that fails
is recorded with its one-line error and the study goes on (a later `run` retries it).

To run: python -m src study run --config configs/studies/label_budget.yaml [--only zero_shot] [--in_process]
"""

import dataclasses
import hashlib
import json
import sys
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

from src import commands
from src.errors import UserError, reason
from src.studies import provenance, workers
from src.studies import run as one
from src.studies.approach import Approach, Requires
from src.studies.schema import Study


@dataclass(frozen=True)
class Planned:
    approach: str
    labels: int
    seed: int
    key: str


def approach_key(study: Study, approach: Approach) -> str:
    """What defines how an approach's runs run: its fields but budgets and seeds (which runs, not how), its config
    files' content, and the study's data and evaluation settings. Its prerequisite counts by what it runs (its path
    and commands), not by its name, description or what it needs made first: moving a prerequisite into the shared
    file, or naming it, keeps every key."""
    fields = {k: v for k, v in dataclasses.asdict(approach).items() if k not in ("budgets", "seeds", "needs")}
    if approach.requires is not None:
        fields["requires"] = {"path": approach.requires.path, "commands": approach.requires.commands}
    settings = {k: getattr(study, k) for k in ("source", "val_size", "split_seed", "eval_split", "eval_size",
                                               "eval_seed")}
    configs = {c: provenance.hash_path(c) if Path(c).exists() else None for c in approach.config}
    return hashlib.sha256(json.dumps([fields, settings, configs], sort_keys=True).encode()).hexdigest()[:12]


def plan(study: Study) -> list[Planned]:
    """Every run of the study, in order: approaches, then label budgets, then seeds."""
    runs = []
    for a in study.approaches:
        key = approach_key(study, a)
        for n in a.budgets if a.budgets is not None else a.default_budgets(study.budgets):
            for seed in a.seeds if a.seeds is not None else study.seeds:
                runs.append(Planned(a.name, n, seed, key))
    return runs


def read_rows(study: Study) -> list[dict]:
    """The latest row of every run recorded so far (of any version of its approach)."""
    path = study.folder() / "results.jsonl"
    rows = {}
    if path.exists():
        for line in path.read_text().split("\n"):
            if line.strip():
                row = json.loads(line)
                rows[(row["approach"], row["labels"], row["seed"], row.get("key"))] = row
    return list(rows.values())


def current_rows(study: Study) -> tuple[list[dict], int]:
    """The rows of the study's planned runs as the approaches stand now, and how many rows of changed approaches
    (or of runs no longer planned) were left out."""
    planned = {(r.approach, r.labels, r.seed, r.key) for r in plan(study)}
    rows = read_rows(study)
    mine = [r for r in rows if (r["approach"], r["labels"], r["seed"], r.get("key")) in planned]
    return mine, len(rows) - len(mine)


def run_study(study: Study, only: list[str] | None = None, in_process: bool = False,
              pool: workers.Serial | workers.Spread | None = None) -> list[dict]:
    """Every planned run not yet recorded as done (of the `only` approaches, if given): prerequisites first, then the
    runs, each in its own process one after the other (`in_process`: in this one, which saves each run's start-up
    where that dominates, on a GPU), or spread by `pool` (src/studies/workers.py); a row per run as it finishes."""
    out = study.folder()
    out.mkdir(parents=True, exist_ok=True)
    done = {(r["approach"], r["labels"], r["seed"], r.get("key")) for r in read_rows(study) if r["status"] == "ok"}
    todo = [r for r in plan(study) if (r.approach, r.labels, r.seed, r.key) not in done
            and (not only or r.approach in only)]
    print(f"study {study.name} ({study.eval_split} reviews): {len(done)} runs done, {len(todo)} to run -> "
          f"{out / 'results.jsonl'}", flush=True)
    prepared: dict[str, str | None] = {}  # prerequisite path -> its error (None: ready)
    jobs, prepare_s, finished = [], {}, 0

    def record(run: Planned, error: str | None, run_dir: Path, wall: float) -> None:
        nonlocal finished
        head = {"approach": run.approach, "labels": run.labels, "seed": run.seed, "key": run.key}
        if error is None:
            row = head | json.loads((run_dir / "result.json").read_text())
        else:
            row = head | {"status": "failed", "error": error, "run_dir": str(run_dir)}
        row |= {"wall_s": round(wall, 2), "prepare_s": round(prepare_s.get(run, 0.0), 2)}
        with open(out / "results.jsonl", "a") as f:  # one line per run: a killed study loses the runs in flight only
            f.write(json.dumps(row) + "\n")
        finished += 1
        what = f"accuracy {row['accuracy']:.4f}" if error is None else f"FAILED: {error}"
        print(f"[{finished}/{len(todo)}] {run.approach} labels={run.labels} seed={run.seed}: {what} ({wall:.0f} s)",
              flush=True)

    for run in todo:
        run_dir = out / "runs" / run.approach / f"n{run.labels}_seed{run.seed}"
        run_dir.mkdir(parents=True, exist_ok=True)
        start = time.perf_counter()
        error = prepare_with_inputs(study, study.approach(run.approach), run.seed, out, prepared, in_process,
                                    run.labels)
        prepare_s[run] = time.perf_counter() - start  # a teacher's time is not the run's
        if error is not None:
            record(run, error, run_dir, 0.0)
            continue
        spec = {"study": dataclasses.asdict(study), "approach": run.approach, "labels": run.labels, "seed": run.seed,
                "run_dir": str(run_dir)}
        (run_dir / "spec.json").write_text(json.dumps(spec))
        (run_dir / "result.json").unlink(missing_ok=True)
        cmd = [sys.executable, "-m", "src", "study", "run_one", str(run_dir / "spec.json")]
        jobs.append(workers.Job(run, cmd, run_dir / "run.log"))
    for result in (pool or workers.Serial(lambda cmd, log: execute(cmd, log, in_process))).map(jobs):
        run_dir = result.job.log.parent
        error = result.error or None
        if error is None and (result.code or not (run_dir / "result.json").exists()):
            error = last_error(result.job.log, result.code)
        record(result.job.name, error, run_dir, result.wall_s)
    return read_rows(study)


def prepare_with_inputs(study: Study, approach: Approach, seed: int, out: Path, prepared: dict[str, str | None],
                        in_process: bool = False, labels: int | None = None) -> str | None:
    """Every prerequisite the approach's runs read, each after those it needs: the named ones in its `needs`, then
    its own (`requires`); the first one-line error, or None when all are ready. Dependencies come from these names,
    never from the text of arguments."""
    for name in approach.needs:
        if (error := prepare_named(study, name, seed, out, prepared, in_process, labels)) is not None:
            return error
    if approach.requires is None:
        return None
    for name in approach.requires.needs:
        if (error := prepare_named(study, name, seed, out, prepared, in_process, labels)) is not None:
            return error
    return prepare(approach.requires, approach.name, seed, out, prepared, in_process, labels)


def prepare_named(study: Study, name: str, seed: int, out: Path, prepared: dict[str, str | None],
                  in_process: bool = False, labels: int | None = None, seen: tuple[str, ...] = ()) -> str | None:
    """The named prerequisite, after those it needs (a cycle is a one-line error)."""
    if name in seen:
        return f"prerequisites need each other ({' -> '.join((*seen, name))}); fix: {study.prerequisites}"
    need = study.prerequisite(name)
    for other in need.needs:
        if (error := prepare_named(study, other, seed, out, prepared, in_process, labels, (*seen, name))) is not None:
            return error
    return prepare(need, name, seed, out, prepared, in_process, labels)


def prepare(need: Requires, name: str, seed: int, out: Path, prepared: dict[str, str | None],
            in_process: bool = False, labels: int | None = None) -> str | None:
    """Run a prerequisite for `seed` (and `labels`, where its path names them) unless the path it creates exists,
    made by the same commands and configs (by any study: the stamp beside it says), or `prepared`, the paths tried in
    this study run, holds it; its one-line error, or None when ready. Its logs go to `<out>/runs/<name>/`.
    `in_process`: its `python -m src` commands run in this process."""
    path = one.seeded([need.path], seed, labels)[0]
    commands = [one.seeded(cmd, seed, labels) for cmd in need.commands]
    # What made the path: the commands and the content of the configs they name. A changed recipe (a new prompt for
    # a teacher, say) prepares again instead of reusing what the old one wrote.
    # A config that an earlier command names is that command's output (demonstrations drawn for an in-context fit):
    # the command is in the stamp, its output is not (absent before the first preparation, it would change the stamp).
    configs = [cmd[i + 1] for n, cmd in enumerate(commands) for i, a in enumerate(cmd[:-1])
               if a == "--config" and not any(cmd[i + 1] in earlier for earlier in commands[:n])]
    stamp = json.dumps({"commands": commands, "configs": provenance.inputs(configs)}, sort_keys=True)
    stamp_file = Path(f"{path.rstrip('/')}.prepared.json")
    if Path(path).exists() and stamp_file.exists() and stamp_file.read_text() == stamp:
        return None
    if path in prepared:
        return prepared[path]
    log_dir = out / "runs" / name
    log_dir.mkdir(parents=True, exist_ok=True)
    tag = f"n{labels}_seed{seed}" if "{labels}" in need.path else f"seed{seed}"
    # A preparation of this same recipe that was interrupted (a masked-LM fit is 90 minutes on a CPU) continues from
    # its fits' last checkpoints instead of starting over; `--ckpt_path last` starts afresh where there is none.
    started = Path(f"{path.rstrip('/')}.preparing.json")
    if started.exists() and started.read_text() == stamp:
        commands = [cmd + ["--ckpt_path", "last"] if cmd[1:4] == ["-m", "src", "fit"] else cmd for cmd in commands]
    started.parent.mkdir(parents=True, exist_ok=True)
    started.write_text(stamp)
    error = None
    for i, cmd in enumerate(commands):
        print(f"{name}: preparing {path} ({' '.join(cmd)})", flush=True)
        log = log_dir / f"prepare_{tag}_{i}.log"
        failed = execute([sys.executable if c == "python" else c for c in cmd], log, in_process)
        if failed is not None:
            error = f"prerequisite failed ({' '.join(cmd)[:200]}): {failed}"
            break
    if error is None and not Path(path).exists():
        error = f"prerequisite did not write {path}; fix: check {log_dir}/prepare_{tag}_*.log"
    if error is None:
        stamp_file.write_text(stamp)
        started.unlink()
    prepared[path] = error
    return error


def execute(cmd: list[str], log: Path, in_process: bool = False) -> str | None:
    """Run a command with its output in `log`; its one-line error, or None when it succeeded. `in_process`: a
    `python -m src ...` command (a run, a prerequisite) is called in this process (`src.commands.run`) and its error
    comes back as the exception it raised; its output goes to the console, the log says so."""
    if not (in_process and cmd[1:3] == ["-m", "src"]):
        code = workers.execute(cmd, log)
        return None if code == 0 else last_error(log, code)
    with open(log, "w") as f:
        f.write(f"{' '.join(cmd)}: ran in the study's process (--in_process); its output went to the console\n")
        try:
            commands.run(cmd[3:])
        except UserError as err:
            f.write(f"error: {err}\n")
            return str(err)
        except Exception as err:
            traceback.print_exc(file=f)
            return reason(err)
    return None


def last_error(log: Path, returncode: int) -> str:
    """The run's one-line error: its `error: ...` line, else the last line of its traceback."""
    lines = [line.strip() for line in log.read_text(errors="replace").splitlines() if line.strip()]
    for line in reversed(lines):
        if line.startswith("error: ") or "Error" in line.split(":")[0]:
            return line[:300]
    return f"exit code {returncode}" + (f": {lines[-1][:200]}" if lines else "")
