"""The evaluation loop's own cost per batch, side by side: a tiny BERT (2 layers, hidden 32, the maths negligible)
scores the same held-out reviews (the fit's validation split, 2,500 by default; batches of 32 at max length 64) by
  plain    a plain PyTorch loop under `torch.no_grad`, counting correct labels on the device (the floor);
  trainer  the Hugging Face `Trainer.evaluate` with accuracy as its `compute_metrics`;
  fit      this project's `validate` with the recipe's metrics and callbacks (`configs/bert_imdb.yaml`: accuracy, F1,
           AUROC, loss; the confusion matrix, precision-recall curve and worst-mistakes table).
Each arm notes when every batch starts; the time from the start of batch 10 to the start of the last, over the batches
between, is its cost per batch without its start-up and without what it does once an epoch (the metrics' compute, the
report's figures). Arms alternate round by round; medians over rounds. One intra-op thread, as in step_overhead.py.

To run: .venv/bin/python benchmarks/eval_overhead.py   (writes outputs/bench/eval_overhead.json)
"""

import argparse
import itertools
import sys
import tempfile
from pathlib import Path

import torch
from step_overhead import LENGTH, now, quietly, report, tiny_model  # benchmarks/step_overhead.py, beside this script
from timing import alternate_results  # benchmarks/timing.py, beside this script

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
OUT = ROOT / "outputs/bench/eval_overhead.json"
BATCH, SKIP = 32, 10  # batches before SKIP are start-up


def validation_set(model: str, cache: Path, size: int):
    """The fit's own validation split (`size` reviews held out of train), tokenized by its data module."""
    from src.data import ClassificationDataModule

    data = ClassificationDataModule(tokenizer=model, max_length=LENGTH, val_size=size, limit_train=16,
                                    cache_dir=str(cache))
    data.prepare_data()
    data.setup("fit")
    return data.splits["validation"].remove_columns("length").rename_column("label", "labels")


def plain(model_dir: str, reviews) -> list:
    from torch.utils.data import DataLoader
    from transformers import AutoModelForSequenceClassification, DataCollatorWithPadding

    from src.pretrained import load_tokenizer

    device = "cuda" if torch.cuda.is_available() else "cpu"
    model = AutoModelForSequenceClassification.from_pretrained(model_dir).eval().to(device)
    loader = DataLoader(reviews.remove_columns([c for c in reviews.column_names if c not in
                                                ("input_ids", "attention_mask", "labels")]),
                        batch_size=BATCH, collate_fn=DataCollatorWithPadding(load_tokenizer(model_dir)),
                        pin_memory=device == "cuda")  # as the Trainer and fit: non_blocking copies
    starts, correct = [], torch.zeros((), dtype=torch.long, device=device)
    with torch.no_grad():
        for batch in loader:
            starts.append(now())
            batch = {k: v.to(device, non_blocking=True) for k, v in batch.items()}
            logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
            correct += (logits.softmax(-1).argmax(-1) == batch["labels"]).sum()
    correct.item()  # the one read, at the end
    return starts


def trainer(model_dir: str, reviews, out: Path) -> list:
    import numpy as np
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
            self.starts = [now()]

        def on_prediction_step(self, args, state, control, **kwargs) -> None:  # after each batch
            self.starts.append(now())

    def accuracy(p) -> dict:
        return {"accuracy": float((np.argmax(p.predictions, -1) == p.label_ids).mean())}

    args = TrainingArguments(output_dir=str(out), per_device_eval_batch_size=BATCH, report_to=[],
                             use_cpu=not torch.cuda.is_available())
    clock = Clock()
    run = Trainer(model=AutoModelForSequenceClassification.from_pretrained(model_dir), args=args,
                  eval_dataset=reviews, data_collator=DataCollatorWithPadding(load_tokenizer(model_dir)),
                  compute_metrics=accuracy, callbacks=[clock])
    run.evaluate()
    return clock.starts[1:]  # the end of batch i is the start of batch i + 1, as the other arms note it


def fit(model_dir: str, out: Path, cache: Path, size: int, flags: tuple[str, ...] = ()) -> list:
    """`python -m src validate` in this process (a callback notes when every batch starts), with `flags` added."""
    from lightning.pytorch.callbacks import Callback

    from src.cli import main

    class Clock(Callback):
        def __init__(self):
            self.starts = []

        def on_validation_batch_start(self, trainer, module, batch, batch_idx, dataloader_idx=0) -> None:
            self.starts.append(now())

    clock = Clock()
    cli = main(["--config", "configs/bert_imdb.yaml", "--model.init_args.model_name", model_dir,
                "--data.max_length", str(LENGTH), "--data.limit_train", "16", "--data.val_size", str(size),
                "--data.cache_dir", str(cache),
                "--data.eval_batch_size", str(BATCH), "--trainer.precision", "32-true",
                "--trainer.logger.init_args.save_dir", str(out), *flags], run=False)
    cli.trainer.callbacks.append(clock)
    cli.trainer.validate(cli.model, cli.datamodule)
    return clock.starts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--arms", nargs="+", default=["plain", "trainer", "fit"])
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    parser.add_argument("--reviews", type=int, default=2500, help="held-out reviews (the validation split's size)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    tmp = Path(tempfile.mkdtemp(prefix="eval_overhead_"))
    model_dir = tiny_model(tmp / "tiny")
    reviews = validation_set(model_dir, tmp / "cache", args.reviews)
    run = {"plain": lambda i: plain(model_dir, reviews),
           "trainer": lambda i: trainer(model_dir, reviews, tmp / f"trainer{i}"),
           "fit": lambda i: fit(model_dir, tmp / f"fit{i}", tmp / "cache", args.reviews)}
    batches = -(-len(reviews) // BATCH)
    rounds = itertools.count()  # each call evaluates in a fresh folder
    _, noted = alternate_results({arm: lambda arm=arm: quietly(run[arm], next(rounds)) for arm in args.arms},
                                 args.rounds)
    per_batch = ({arm: [] for arm in args.arms}, {arm: [] for arm in args.arms})  # wall, CPU
    for arm, calls in noted.items():
        for starts in calls:
            if len(starts) != batches:
                raise SystemExit(f"error: {arm} timed {len(starts)} batches, not {batches}")
            for clock in (0, 1):
                per_batch[clock][arm].append((starts[-1][clock] - starts[SKIP][clock]) / (batches - 1 - SKIP))
    result = {"command": " ".join(["python", "benchmarks/eval_overhead.py", *sys.argv[1:]]), "reviews": len(reviews),
              "batch": BATCH, "max_length": LENGTH, "torch": torch.__version__,
              "threads": torch.get_num_threads()}
    report(per_batch, "batch", result, OUT)

if __name__ == "__main__":
    main()
