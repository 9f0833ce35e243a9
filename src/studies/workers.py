"""Where a study's runs execute: one after the other in the study's process (the default), or spread by submitit (the
launcher the field uses for SLURM) over local workers, N runs at a time (one per GPU when GPUs are given, else CPU
workers that share out the cores), or over a SLURM cluster as one job array. Runs are independent processes that write
their own result file; only the study's process appends rows to `results.jsonl`, as runs finish, so the file has one
writer and a killed study resumes as before. A worker that dies (killed, out of memory, preempted, a lost node) is
tried once more; a run that fails on its own is recorded as failed, as in a serial study.

To run: python -m src study run --config configs/studies/label_budget.yaml --workers 2
        python -m src study run --config configs/studies/label_budget.yaml --workers 8 --gpus 0 1 2 3 4 5 6 7
        python -m src study run --config configs/studies/label_budget.yaml --workers 36 --engine slurm \\
            --slurm slurm_partition=gpu gpus_per_node=1 cpus_per_task=8 timeout_min=60
"""

import ctypes
import itertools
import math
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from src.errors import UserError, reason

TRIES = 2  # a worker that dies is tried once more
# submitit configures the logging module when first imported (logging.config.dictConfig: the application's handlers
# are shut down and its own bound to the sys.stdout of that moment); the study's logging stays the study's.
os.environ.setdefault("SUBMITIT_LOG_LEVEL", "NOCONFIG")


@dataclass(frozen=True)
class Job:
    """One run: its command, the file its output goes to, and the runner's name for it."""

    name: object
    cmd: list[str]
    log: Path


@dataclass(frozen=True)
class Done:
    """A finished run: its exit code (None: its worker died, `error` says how) and wall time."""

    job: Job
    code: int | None
    wall_s: float
    error: str = ""


def execute(cmd: list[str], log: Path, env: dict[str, str] | None = None) -> int:
    """Run a command with its output in `log`; its exit code. Its process id goes to `<log>.pid` while it runs (what
    `stop` kills), and on Linux it dies with the process that runs it: a killed worker or study leaves no run."""
    pid_file = Path(f"{log}.pid")
    with open(log, "w") as f:
        with subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT, preexec_fn=die_with_parent(),
                              env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}) as process:
            pid_file.write_text(str(process.pid))
            try:
                return process.wait()
            except BaseException:  # Ctrl-C in a serial study: the run stops with it
                process.kill()
                raise
            finally:
                pid_file.unlink(missing_ok=True)


def die_with_parent() -> Callable[[], None] | None:
    """A `preexec_fn` asking Linux to kill the child when its parent dies (prctl PR_SET_PDEATHSIG); None elsewhere."""
    if not sys.platform.startswith("linux"):
        return None
    libc = ctypes.CDLL(None, use_errno=True)
    return lambda: libc.prctl(1, signal.SIGKILL)  # 1: PR_SET_PDEATHSIG


def timed(cmd: list[str], log: str, env: dict[str, str]) -> tuple[int, float]:
    """What a worker runs (submitit pickles it by reference): the command; its exit code and wall time."""
    start = time.perf_counter()
    code = execute(cmd, Path(log), env)
    return code, time.perf_counter() - start


class Serial:
    """One run after the other, through `run(cmd, log) -> its error or None` (a subprocess, or the study's own
    process)."""

    def __init__(self, run: Callable[[list[str], Path], str | None]):
        self.run = run

    def map(self, jobs: Iterable[Job]) -> Iterator[Done]:
        for job in jobs:
            start = time.perf_counter()
            error = self.run(job.cmd, job.log)
            yield Done(job, 0 if error is None else 1, time.perf_counter() - start, error or "")


class Spread:
    """Runs as submitit jobs, `workers` at a time, yielded as they finish; a job whose worker died goes again."""

    poll_s = 0.5

    def __init__(self, workers: float):
        self.workers = workers  # at most this many at once (SLURM: all; its array's parallelism limits them)

    def submit(self, jobs: list[Job], slots: list[int]) -> list:
        """Start `jobs` in these free slots; their submitit handles."""
        raise NotImplementedError

    def outcome(self, handle) -> tuple[int, float]:
        """A finished job's result; raises when its worker died."""
        return handle.result()

    def stop(self, job: Job) -> None:
        """Make sure a cancelled job's run stops (the engine's cancel may not reach it)."""

    def map(self, jobs: Iterable[Job]) -> Iterator[Done]:
        running = {}  # slot -> (job, handle, start)
        try:
            yield from self._spread(list(jobs), running)
        finally:  # the study stopped (Ctrl-C, an error): its runs in flight stop too, and a rerun does them again
            for job, handle, _ in running.values():
                handle.cancel(check=False)
                self.stop(job)

    def _spread(self, pending: list[Job], running: dict) -> Iterator[Done]:
        tries = {}
        while pending or running:
            n = min(len(pending), self.workers - len(running))
            free = list(itertools.islice((s for s in itertools.count() if s not in running), n))
            if free:
                batch, pending = pending[: len(free)], pending[len(free):]
                now = time.perf_counter()
                for slot, job, handle in zip(free, batch, self.submit(batch, free)):
                    running[slot] = (job, handle, now)
            time.sleep(self.poll_s)
            for slot, (job, handle, start) in list(running.items()):
                if not handle.done():
                    continue
                del running[slot]
                try:
                    code, wall = self.outcome(handle)
                except Exception as err:  # submitit raises when the job's process died, whatever killed it
                    tries[job.name] = tries.get(job.name, 0) + 1
                    if tries[job.name] < TRIES:
                        pending.insert(0, job)
                        continue
                    yield Done(job, None, time.perf_counter() - start, f"its worker died {TRIES} times ({reason(err)})")
                    continue
                yield Done(job, code, wall)


class Local(Spread):
    """Up to `workers` runs at once on this machine: on the GPUs given, one run per GPU (`CUDA_VISIBLE_DEVICES`);
    else CPU workers, GPUs hidden, each with its share of the cores (`OMP_NUM_THREADS`): none oversubscribes."""

    def __init__(self, folder: Path, workers: int, gpus: list[int] | None = None):
        import submitit

        if gpus and len(gpus) != workers:
            raise UserError(f"--gpus lists {len(gpus)} GPUs for {workers} workers; fix: one GPU per worker "
                            f"(--workers {len(gpus)})")
        super().__init__(workers)
        self.gpus = gpus
        threads = str(max(1, (os.cpu_count() or 1) // workers))
        self.env = {"OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads}
        self.executor = submitit.LocalExecutor(folder=folder)

    def outcome(self, handle) -> tuple[int, float]:
        # On a local disk the result file is there when the job ends, or never: submitit's wait for a slow shared
        # file system (15 s a job) would only delay the retry.
        if not handle.paths.result_pickle.exists():
            raise RuntimeError(f"job {handle.job_id} ended without a result ({handle.state}); its output: "
                               f"{handle.paths.stdout}")
        return handle.result()

    def stop(self, job: Job) -> None:
        # submitit cancels a local job with SIGINT, which a process started in the background ignores (and its
        # worker may not pass on in time): kill the run itself, by the id `execute` wrote, if it is still that run.
        try:
            pid = int(Path(f"{job.log}.pid").read_text())
            cmdline = Path(f"/proc/{pid}/cmdline")
            if cmdline.exists() and cmdline.read_bytes().split(b"\0")[:-1] != [c.encode() for c in job.cmd]:
                return  # the id now belongs to another process
            os.kill(pid, signal.SIGKILL)
        except (OSError, ValueError):  # finished, or never started
            pass

    def submit(self, jobs: list[Job], slots: list[int]) -> list:
        handles = []
        for job, slot in zip(jobs, slots):
            gpu = {"gpus_per_node": 1, "visible_gpus": [self.gpus[slot]]} if self.gpus else {"gpus_per_node": 0}
            self.executor.update_parameters(timeout_min=7 * 24 * 60, **gpu)  # submitit's default kills at 2 min
            handles.append(self.executor.submit(timed, job.cmd, str(job.log), self.env))
        return handles


class Slurm(Spread):
    """The runs as a SLURM job array, `workers` of them at a time (`slurm_array_parallelism`); `parameters` are
    submitit's (timeout_min, gpus_per_node, cpus_per_task, mem_gb, slurm_partition, slurm_account, ...)."""

    def __init__(self, folder: Path, workers: int, parameters: dict, cluster: str = "slurm"):
        import submitit

        super().__init__(math.inf)
        self.executor = submitit.AutoExecutor(folder=folder, cluster=cluster)
        try:
            self.executor.update_parameters(slurm_array_parallelism=workers, **parameters)
        except (ValueError, TypeError, NameError) as err:
            raise UserError(f"--slurm {parameters}: {reason(err)}; fix: use submitit's parameter names, e.g. "
                            "slurm_partition=gpu gpus_per_node=1 timeout_min=60") from None

    def submit(self, jobs: list[Job], slots: list[int]) -> list:
        return self.executor.map_array(timed, [j.cmd for j in jobs], [str(j.log) for j in jobs], [{} for _ in jobs])


def parse_parameters(pairs: list[str]) -> dict:
    """`key=value` pairs (values as int or float where they read as one)."""
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise UserError(f"--slurm {pair!r} is not key=value; fix: e.g. --slurm slurm_partition=gpu timeout_min=60")
        for cast in (int, float, str):
            try:
                out[key] = cast(value)
                break
            except ValueError:
                continue
    return out
