"""The training loop's own cost per step, side by side: a tiny BERT (2 layers, hidden 32, the maths negligible) trained
on the same reviews (batches of 16 at max length 64, AdamW, linear schedule with warm-up) by
  plain    a plain PyTorch loop over a DataLoader, fused AdamW (the floor);
  trainer  the Hugging Face `Trainer` (its defaults: progress bar, logging every 10 steps as the recipe does);
  trainer_ckpt  the same, saving its resume state every 50 steps (weights, optimizer, schedule, random state;
           `save_steps=50`, the last one kept), as fit did before its resume checkpoint waited a minute between saves;
  fit      this project's fit with the recipe's callbacks (`configs/bert_imdb.yaml`: a resume checkpoint every 50 steps
           once 60 s have passed since the last, so none within a round here; learning-rate monitor, throughput,
           progress bar, logging every 10 steps), validation off.
Each arm trains 2S steps from a fresh model and notes when every step starts; the time from the start of step S to the
end of step 2S, over S, is its cost per step without its start-up (model, optimizer, tokenized cache, the first
batches) and with what it does every N steps (logging, checkpoints: four saves for the arms that save every 50). Arms
alternate round by round; medians over rounds.
One intra-op thread (`--threads`): the maths is tiny, the cost measured is Python's, and a second thread only adds
waits at every op's barrier (many times the step itself when another process shares the cores).

To run: .venv/bin/python benchmarks/step_overhead.py   (writes outputs/bench/step_overhead.json)
"""

import argparse
import contextlib
import io
import itertools
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
from timing import alternate_results  # benchmarks/timing.py, beside this script

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
OUT = ROOT / "outputs/bench/step_overhead.json"
TOKENIZER = "sentence-transformers/all-MiniLM-L6-v2"
BATCH, LENGTH, LR = 16, 64, 1e-4


def now() -> tuple[float, float]:
    """Wall time, and this process's CPU time: on a shared machine, time the process was not running is not its cost."""
    return time.perf_counter(), time.process_time()


def tiny_model(folder: Path) -> str:
    """A random-init 2-layer BERT classifier (hidden 32) with MiniLM's tokenizer, saved as a folder."""
    from transformers import BertConfig, BertForSequenceClassification

    from src.pretrained import load_tokenizer

    tokenizer = load_tokenizer(TOKENIZER)
    torch.manual_seed(0)
    config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, num_labels=2, attention_probs_dropout_prob=0.0)
    BertForSequenceClassification(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return str(folder)


def training_set(model: str, n: int, cache: Path):
    """The first `n` training reviews of the fit's own split, tokenized by its data module."""
    from src.data import ClassificationDataModule

    data = ClassificationDataModule(tokenizer=model, max_length=LENGTH, val_size=2500, limit_train=n,
                                    cache_dir=str(cache))
    data.prepare_data()
    data.setup("fit")
    return data.splits["train"].remove_columns("length").rename_column("label", "labels")


def plain(model_dir: str, train, steps: int) -> float:
    from torch.utils.data import DataLoader
    from transformers import (
        AutoModelForSequenceClassification,
        DataCollatorWithPadding,
        get_linear_schedule_with_warmup,
    )

    from src.pretrained import load_tokenizer

    device = "cuda" if torch.cuda.is_available() else "cpu"  # where the Trainer and fit put it
    model = AutoModelForSequenceClassification.from_pretrained(model_dir).train().to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=LR, weight_decay=0.01, fused=True)  # as the Trainer and fit
    schedule = get_linear_schedule_with_warmup(opt, int(0.1 * steps), steps)
    loader = DataLoader(train, batch_size=BATCH, shuffle=True, collate_fn=DataCollatorWithPadding(load_tokenizer(
        model_dir)), pin_memory=device == "cuda")  # as the Trainer and fit: copies that do not wait for the GPU
    starts = []
    for step, batch in zip(range(steps), loader):
        starts.append(now())  # after the batch is fetched, as in the Trainer and in fit
        loss = model(**{k: v.to(device, non_blocking=True) for k, v in batch.items()}).loss
        loss.backward()
        opt.step()
        schedule.step()
        opt.zero_grad(set_to_none=True)
        if step % 10 == 0:
            loss.item()  # what logging every 10 steps reads
    return starts + [now()]


def trainer(model_dir: str, train, steps: int, out: Path, save_steps: int | None = None) -> list[float]:
    from transformers import (
        AutoModelForSequenceClassification,
        DataCollatorWithPadding,
        Trainer,
        TrainerCallback,
        TrainingArguments,
    )

    from src.pretrained import load_tokenizer

    class Clock(TrainerCallback):
        def __init__(self):
            self.starts = []

        def on_step_begin(self, args, state, control, **kwargs) -> None:
            self.starts.append(now())

        def on_train_end(self, args, state, control, **kwargs) -> None:
            self.starts.append(now())

    model = AutoModelForSequenceClassification.from_pretrained(model_dir)
    args = TrainingArguments(output_dir=str(out), per_device_train_batch_size=BATCH, max_steps=steps, learning_rate=LR,
                             weight_decay=0.01, warmup_steps=int(0.1 * steps), lr_scheduler_type="linear",
                             logging_steps=10, save_strategy="steps" if save_steps else "no",
                             save_steps=save_steps or 500, save_total_limit=1, report_to=[],
                             use_cpu=not torch.cuda.is_available(), seed=42)
    clock = Clock()
    run = Trainer(model=model, args=args, train_dataset=train, data_collator=DataCollatorWithPadding(
        load_tokenizer(model_dir)), callbacks=[clock])
    run.train()
    return clock.starts


def fit(model_dir: str, steps: int, out: Path, cache: Path, n: int) -> list[float]:
    """`python -m src fit` in this process (a callback notes when every step starts)."""
    from lightning.pytorch.callbacks import Callback

    from src.cli import main

    class Clock(Callback):
        def __init__(self):
            self.starts = []

        def on_train_batch_start(self, trainer, module, batch, batch_idx) -> None:
            self.starts.append(now())

        def on_train_end(self, trainer, module) -> None:
            self.starts.append(now())

    clock = Clock()
    cli = main(["--config", "configs/bert_imdb.yaml", "--model.init_args.model_name", model_dir,
                "--data.max_length", str(LENGTH), "--data.limit_train", str(n), "--data.cache_dir", str(cache),
                "--trainer.max_steps", str(steps), "--trainer.limit_val_batches", "0",
                "--trainer.precision", "32-true", "--trainer.logger.init_args.save_dir", str(out)], run=False)
    cli.trainer.callbacks.append(clock)
    cli.trainer.fit(cli.model, cli.datamodule)
    return clock.starts


def report(times: tuple[dict, dict], unit: str, result: dict, out: Path) -> None:
    """Each arm's median wall and CPU seconds per `unit` (in ms, and against the plain arm), printed and written to
    `out` with `result`; `times` holds the wall, then the CPU, seconds of every round by arm."""
    for clock, name in enumerate(("wall", "cpu")):
        median = {arm: statistics.median(t) for arm, t in times[clock].items()}
        result[name] = {f"ms_per_{unit}": {a: 1000 * t for a, t in median.items()},
                        "vs_plain": {a: t / median["plain"] for a, t in median.items()} if "plain" in median else {},
                        f"all_ms_per_{unit}": {a: [1000 * x for x in t] for a, t in times[clock].items()}}
        for arm, t in median.items():
            ratio = f"  x{t / median['plain']:.2f} plain" if "plain" in median else ""
            print(f"{name:4s} {arm:12s} {1000 * t:7.2f} ms/{unit}{ratio}")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print("->", out)


def quietly(call, *args):
    """`call(*args)` with its output dropped (progress bars, summaries): what it returns."""
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        return call(*args)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=200, help="S: each arm trains 2S steps, timed over the last S")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--arms", nargs="+", default=["plain", "trainer", "trainer_ckpt", "fit"])
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    tmp = Path(tempfile.mkdtemp(prefix="step_overhead_"))
    model_dir = tiny_model(tmp / "tiny")
    n = 2 * args.steps * BATCH
    train = training_set(model_dir, n, tmp / "cache")
    run = {"plain": lambda s, i: plain(model_dir, train, s),
           "trainer": lambda s, i: trainer(model_dir, train, s, tmp / f"trainer{i}"),
           "trainer_ckpt": lambda s, i: trainer(model_dir, train, s, tmp / f"trainer_ckpt{i}", save_steps=50),
           "fit": lambda s, i: fit(model_dir, s, tmp / f"fit{i}", tmp / "cache", n)}
    rounds = itertools.count()  # each call trains in a fresh folder
    _, noted = alternate_results({arm: lambda arm=arm: quietly(run[arm], 2 * args.steps, next(rounds))
                                  for arm in args.arms}, args.rounds)
    per_step = ({arm: [] for arm in args.arms}, {arm: [] for arm in args.arms})  # wall, CPU
    for arm, calls in noted.items():
        for starts in calls:
            if len(starts) != 2 * args.steps + 1:
                raise SystemExit(f"error: {arm} timed {len(starts) - 1} steps, not {2 * args.steps}")
            for clock in (0, 1):
                per_step[clock][arm].append((starts[-1][clock] - starts[args.steps][clock]) / args.steps)
    result = {"steps": args.steps, "batch": BATCH, "max_length": LENGTH, "torch": torch.__version__,
              "threads": torch.get_num_threads()}
    report(per_step, "step", result, OUT)


if __name__ == "__main__":
    main()
