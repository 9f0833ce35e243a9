"""What a training loop makes the host wait for, per step, side by side: the same tiny BERT, reviews and arms as
step_overhead.py (a plain PyTorch loop, the Hugging Face `Trainer`, this project's fit with the recipe's callbacks);
with `--loop eval`, the evaluation loop per batch, with eval_overhead.py's arms (`Trainer.evaluate`, `validate`).

On a GPU the host queues kernels and runs ahead of them, unless it waits: for a value it reads back (`.item()`,
`bool(t)`, `float(t)`, `nonzero`, `unique`, a copy to the host: a host sync), or for a copy to the GPU from unpinned
host memory (the driver stages it only once the kernels queued before it are done). A loop that waits every step cannot
run ahead, and on a GPU its step costs the host's time plus the device's instead of the larger of the two.
Counted under a `TorchDispatchMode` (every op the loop runs passes through it, but for those under `inference_mode`)
with the site that called it: the first frame outside torch, with two callers. Each arm runs S and 2S steps (or
batches); what the longer run counts beyond the shorter, over S, is its count per step without start-up and end (what
it does every N steps, such as logging, as a fraction).
On a CPU every tensor is on the host, so nothing waits and every read is counted by its site: those of tensors that a
GPU run also keeps on the host (the fit logs its loss as a CPU tensor, and the progress bar reads that) cost nothing
there; and code that branches on the device reads here where it would not there (torchmetrics checks whether scores
are probabilities with a read on a CPU and with `torch.where` on a GPU). On a GPU only reads of device tensors are
counted, and the unpinned copies to it.

To run: .venv/bin/python benchmarks/host_reads.py [--loop eval]   (writes outputs/bench/host_reads_{train,eval}.json)
"""

import argparse
import collections
import contextlib
import io
import json
import tempfile
import traceback
from pathlib import Path

import torch
from step_overhead import BATCH, fit, plain, tiny_model, trainer, training_set  # beside this script
from torch.utils._python_dispatch import TorchDispatchMode

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "outputs/bench"
# Ops whose result the host reads: _local_scalar_dense is item(), bool(), float() and int() of a tensor; the others
# size their output by the data, so the host reads a count first.
READS = {"_local_scalar_dense", "nonzero", "masked_select", "_unique2", "unique_consecutive", "unique_dim", "equal",
         "repeat_interleave"}
COPIES = {"_to_copy", "copy_"}


def site() -> str:
    """Where the op was called from: the first frame outside torch and this file, then two of its callers."""
    frames = [f for f in traceback.extract_stack() if "/torch/" not in f.filename and f.filename != __file__]
    return " <- ".join(f"{Path(f.filename).name}:{f.lineno} {f.name}" for f in frames[-3:][::-1])


class HostWaits(TorchDispatchMode):
    """Counts, by kind and site, the ops after which the host waits for the device (on a CPU: would wait on a GPU)."""

    def __init__(self):
        super().__init__()
        self.counts = collections.Counter()
        self.gpu = torch.cuda.is_available()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        name = func.overloadpacket.__name__
        first = args[0] if args and isinstance(args[0], torch.Tensor) else None
        if name in READS and first is not None and (not self.gpu or first.device.type != "cpu"):
            self.counts["read", site()] += 1
        elif self.gpu and name in COPIES and first is not None:
            if name == "copy_":  # copy_(target, source)
                source, target = args[1], first.device
            else:  # _to_copy(source, device=...)
                source, target = first, torch.device(kwargs.get("device") or first.device)
            if source.device.type != "cpu" and target.type == "cpu":
                self.counts["read", site()] += 1  # a copy to the host
            elif source.device.type == "cpu" and target.type != "cpu" and not source.is_pinned():
                self.counts["unpinned copy to the device", site()] += 1
        return func(*args, **kwargs)


@contextlib.contextmanager
def python_reads(waits: HostWaits):
    """On a CPU, `tolist()` and `numpy()` read a host tensor without an op; on a GPU they copy, counted above."""
    if waits.gpu:
        yield
        return
    originals = {name: getattr(torch.Tensor, name) for name in ("tolist", "numpy")}

    def counted(name):
        def read(self, *args, **kwargs):
            waits.counts["read", site()] += 1
            return originals[name](self, *args, **kwargs)
        return read

    for name in originals:
        setattr(torch.Tensor, name, counted(name))
    try:
        yield
    finally:
        for name, method in originals.items():
            setattr(torch.Tensor, name, method)


def arms(loop: str, units: int, tmp: Path) -> dict:
    """Each arm as a function of (steps or batches, run index), for the training or the evaluation loop."""
    model_dir = tiny_model(tmp / "tiny")
    if loop == "train":
        n = 2 * units * BATCH
        train = training_set(model_dir, n, tmp / "cache")
        return {"plain": lambda k, i: plain(model_dir, train, k),
                "trainer": lambda k, i: trainer(model_dir, train, k, tmp / f"trainer{i}"),
                "fit": lambda k, i: fit(model_dir, k, tmp / f"fit{i}", tmp / "cache", n)}
    # The evaluation loop over k batches: the fit's held-out split of k batches' reviews. Lightning evaluates under
    # torch.inference_mode, whose tensors skip the dispatch mode, so the fit arm runs under no_grad, as the Trainer.
    import eval_overhead as ev  # beside this script

    def reviews(k: int):
        return ev.validation_set(model_dir, tmp / "cache", k * ev.BATCH)

    return {"plain": lambda k, i: ev.plain(model_dir, reviews(k)),
            "trainer": lambda k, i: ev.trainer(model_dir, reviews(k), tmp / f"trainer{i}"),
            "fit": lambda k, i: ev.fit(model_dir, tmp / f"fit{i}", tmp / "cache", k * ev.BATCH,
                                       ("--trainer.inference_mode", "false"))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--loop", choices=["train", "eval"], default="train",
                        help="the training loop (steps of 16 reviews) or the evaluation loop (batches of 32)")
    parser.add_argument("--steps", type=int, default=100, help="S: each arm runs S and 2S steps (or batches)")
    parser.add_argument("--arms", nargs="+", default=["plain", "trainer", "fit"])
    args = parser.parse_args()
    torch.set_num_threads(1)
    run = arms(args.loop, args.steps, Path(tempfile.mkdtemp(prefix="host_reads_")))
    unit = "step" if args.loop == "train" else "batch"
    result = {"loop": args.loop, unit + "s": args.steps, "device": "cuda" if torch.cuda.is_available() else "cpu",
              "torch": torch.__version__, "arms": {}}
    for arm in args.arms:
        counts = []
        for i, units in enumerate((args.steps, 2 * args.steps)):
            waits = HostWaits()
            with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
                with waits, python_reads(waits):
                    run[arm](units, i)
            counts.append(waits.counts)
        per_unit = {key: (counts[1][key] - counts[0][key]) / args.steps for key in counts[1] | counts[0]}
        per_unit = {key: value for key, value in per_unit.items() if value}
        result["arms"][arm] = [{"kind": kind, "site": where, "per_" + unit: value}
                               for (kind, where), value in sorted(per_unit.items(), key=lambda kv: -kv[1])]
        total = collections.Counter()
        for (kind, _), value in per_unit.items():
            total[kind] += value
        print(f"{arm}: " + (", ".join(f"{value:.2f} {kind} a {unit}" for kind, value in total.items()) or "none"))
        for (kind, where), value in sorted(per_unit.items(), key=lambda kv: -kv[1]):
            print(f"  {value:6.2f}  {kind:28s} {where}")
    out = OUT / f"host_reads_{args.loop}.json"
    OUT.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print("->", out)


if __name__ == "__main__":
    main()
