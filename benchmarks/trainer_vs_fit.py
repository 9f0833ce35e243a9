"""Side by side on this machine: the Hugging Face `Trainer` against this project's fit, fine-tuning the packaged
MiniLM on the same IMDB reviews, at the same max length, batch size, learning rate and schedule.

Arms, each in a fresh process (so that its peak memory is its own), alternating within one run:
  A    the seed's recipe: `Trainer`, `padding="max_length"`, fp32;
  B    the best-practice `Trainer`: `DataCollatorWithPadding`, grouped by length (`train_sampling_strategy=
       "group_by_length"`, formerly `group_by_length=True`), bf16. On a CPU without native bf16 (AVX512-BF16
       or AMX) every bf16 matmul is emulated and many times slower, so B then runs `--bf16_steps` steps for
       its speed only, and
  B32  B in fp32: the fastest the Trainer goes on such a CPU, and the arm C must beat;
  C    this project's fit: `python -m src fit --config configs/bench_fit.yaml`, timed around `trainer.fit`
       and `trainer.validate`;
  C32  C in fp32 (32-true);
  Cc, Cc32  C and C32 with the Hugging Face model compiled (`torch.compile`, dynamic shapes), its compilation inside
       the timed fit: whether compiling pays (the CPU: no; a GPU, where a small model's step costs its launches: to
       measure).
All arms train `--epochs` epochs (one by default) on the same `--n_train` reviews (the first of configs/bert_imdb.yaml's
training split, cleaned of HTML line breaks) and score the same `--n_val` held-out reviews.

To run: make bench   (or .venv/bin/python benchmarks/trainer_vs_fit.py; writes outputs/bench/trainer_vs_fit.json
and the table in docs/benchmarks.md)
"""

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

MODEL = "sentence-transformers/all-MiniLM-L6-v2"
DEVICE = "cuda" if torch.cuda.is_available() else "cpu"  # every arm trains there (Trainer and fit pick it alike)
SUFFIX = "" if DEVICE == "cpu" else f"_{DEVICE}"  # a GPU run gets its own JSON and table beside the CPU one's
MARKER = f"trainer_vs_fit{SUFFIX}"  # of its table in the doc
OUT = ROOT / f"outputs/bench/trainer_vs_fit{SUFFIX}.json"
DOC = ROOT / "docs/benchmarks.md"
VAL_SIZE, SEED, LR, WEIGHT_DECAY, WARMUP = 2500, 42, 1e-4, 0.01, 0.1  # as configs/bench_fit.yaml
DESCRIBE = {
    "A": "Trainer, padding=max_length, fp32 (the seed's recipe)",
    "B": "Trainer, DataCollatorWithPadding, group_by_length, bf16",
    "B32": "B in fp32",
    "C": "this project's fit (configs/bench_fit.yaml)",
    "C32": "C in fp32",
    "Cc": "C, torch.compile",
    "Cc32": "C32, torch.compile",
}


def sample(n_train: int, n_val: int) -> tuple[list[str], list[int], list[str], list[int]]:
    """The reviews the data module trains and validates on: its seeded split of the training set."""
    from src.data.base import held_out_split
    from src.data.sources import default_source, load_source
    from src.data.text import clean

    raw = load_source(default_source())[0]["train"]
    parts = held_out_split(raw, VAL_SIZE, SEED)
    train, val = parts["train"].select(range(n_train)), parts["test"].select(range(n_val))
    return [clean(t) for t in train["text"]], list(train["label"]), [clean(t) for t in val["text"]], list(val["label"])


def run_trainer(arm: str, length: int, args) -> dict:
    import datasets
    import numpy as np
    from transformers import (
        AutoModelForSequenceClassification,
        DataCollatorWithPadding,
        Trainer,
        TrainingArguments,
        default_data_collator,
    )

    from src.pretrained import from_pretrained, load_tokenizer

    texts, labels, val_texts, val_labels = sample(args.n_train, args.n_val)
    tok = load_tokenizer(MODEL)
    padding = "max_length" if arm == "A" else False

    def encode(texts: list[str], labels: list[int]) -> datasets.Dataset:
        enc = tok(texts, truncation=True, max_length=length, padding=padding)
        return datasets.Dataset.from_dict({**enc, "labels": labels})

    train, val = encode(texts, labels), encode(val_texts, val_labels)
    bf16 = arm == "B"
    steps = args.bf16_steps if bf16 and not _fast_bf16() else -1
    if steps > 0:  # emulated bf16: speed only, on the first steps and one validation batch
        val = val.select(range(min(len(val), args.eval_batch_size)))
    model = from_pretrained(AutoModelForSequenceClassification, MODEL, num_labels=2)
    with tempfile.TemporaryDirectory() as out:
        targs = TrainingArguments(
            output_dir=out, per_device_train_batch_size=args.batch_size,
            per_device_eval_batch_size=args.eval_batch_size,
            learning_rate=LR, weight_decay=WEIGHT_DECAY, warmup_steps=WARMUP, lr_scheduler_type="linear",
            num_train_epochs=args.epochs, max_steps=steps, bf16=bf16, use_cpu=not torch.cuda.is_available(),
            train_sampling_strategy="random" if arm == "A" else "group_by_length",
            eval_strategy="no", save_strategy="no", logging_strategy="no", report_to="none", seed=SEED,
            dataloader_num_workers=0, disable_tqdm=True,
        )
        collator = default_data_collator if arm == "A" else DataCollatorWithPadding(tok)
        trainer = Trainer(
            model=model, args=targs, train_dataset=train, eval_dataset=val, data_collator=collator,
            compute_metrics=lambda p: {"acc": float((np.argmax(p.predictions, -1) == p.label_ids).mean())},
        )
        start = time.perf_counter()
        trainer.train()
        train_s = time.perf_counter() - start
        start = time.perf_counter()
        metrics = trainer.evaluate()
        eval_s = time.perf_counter() - start
    n = len(train) * args.epochs if steps < 0 else min(len(train), steps * args.batch_size)
    lengths = [sum(m) for m in train["attention_mask"]] * args.epochs
    # With max_steps the Trainer's random or grouped order is not known here: count the mean review's tokens.
    real = sum(lengths) if steps < 0 else round(n * sum(lengths) / len(lengths))
    return {"train_samples": n, "train_s": train_s, "real_tokens": real, "lengths": lengths if steps < 0 else None,
            "padded_tokens": n * length if arm == "A" else None, "eval_samples": len(val), "eval_s": eval_s,
            "val_acc": metrics["eval_acc"] if steps < 0 else None, "precision": "bf16" if bf16 else "fp32"}


def run_fit(length: int, args, precision: str | None, compile_model: bool = False) -> dict:
    from src.cli import main

    cli = main(["--config", str(ROOT / "configs/bench_fit.yaml"), f"--data.max_length={length}",
                f"--data.limit_train={args.n_train}", f"--data.limit_val={args.n_val}",
                f"--data.batch_size={args.batch_size}", f"--data.eval_batch_size={args.eval_batch_size}",
                f"--trainer.max_epochs={args.epochs}", *([f"--trainer.precision={precision}"] if precision else [])],
               run=False)
    dm, trainer = cli.datamodule, cli.trainer
    if compile_model:  # in place: the state dict's names stay; compiled at the first step, on the clock
        cli.model.model.compile(dynamic=True)
    dm.prepare_data()  # tokenize and cache before the clock, as the Trainer arms tokenize before theirs
    dm.setup("fit")
    _, labels, _, val_labels = sample(args.n_train, args.n_val)
    if list(dm.splits["train"]["label"]) != labels or list(dm.splits["validation"]["label"]) != val_labels:
        raise SystemExit("arm C would train or score other reviews than the Trainer arms: the splits differ")
    start = time.perf_counter()
    trainer.fit(cli.model, datamodule=dm)
    train_s = time.perf_counter() - start
    start = time.perf_counter()
    (metrics,) = trainer.validate(cli.model, datamodule=dm, verbose=False)
    eval_s = time.perf_counter() - start
    lengths = list(dm.splits["train"]["length"]) * args.epochs
    return {"train_samples": len(lengths), "train_s": train_s, "real_tokens": sum(lengths), "lengths": lengths,
            "padded_tokens": None, "eval_samples": len(dm.splits["validation"]), "eval_s": eval_s,
            "val_acc": metrics["val/acc"], "precision": str(trainer.precision)}


def _fast_bf16() -> bool:
    from src.hardware import cpu_has_fast_bf16

    return torch.cuda.is_available() or cpu_has_fast_bf16()


def child(arm: str, length: int, args) -> None:
    start = time.perf_counter()
    if args.no_cudnn_sdpa and torch.cuda.is_available():
        # cuDNN's attention builds a graph per new input shape; dynamic padding makes many shapes (docs/benchmarks.md)
        torch.backends.cuda.enable_cudnn_sdp(False)
    if arm.startswith("C"):
        result = run_fit(length, args, "32-true" if arm.endswith("32") else None, compile_model=arm.startswith("Cc"))
    else:
        result = run_trainer(arm, length, args)
    result |= {"arm": arm, "length": length, "wall_s": time.perf_counter() - start,
               "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20}
    Path(args.result).write_text(json.dumps(result))


def figures(r: dict, shape: tuple[int, int, int], peaks: dict) -> dict:
    from src.flops import train_flops

    out = {"train_samples_per_s": r["train_samples"] / r["train_s"], "tokens_per_s": r["real_tokens"] / r["train_s"],
           "eval_samples_per_s": r["eval_samples"] / r["eval_s"]}
    if r["lengths"] is not None:  # useful FLOPs: real tokens, attention included (src/flops.py)
        flops = float(train_flops(torch.tensor(r["lengths"]), *shape))
        out["tflops_per_s"] = flops / r["train_s"] / 1e12
        out["mfu_fp32_peak"] = flops / r["train_s"] / peaks["fp32"]
        # against the peak of the arm's own precision too: on a GPU bf16 matmuls peak about 15x higher than fp32
        out["mfu_own_peak"] = flops / r["train_s"] / peaks["bf16" if "bf16" in r["precision"] else "fp32"]
    return out


def table(results: list[dict], meta: dict) -> str:
    rows = [f"Arms at max length {', '.join(map(str, meta['lengths']))}; {meta['n_train']} training reviews, "
            f"{meta['n_val']} validation reviews, batch {meta['batch_size']}, learning rate {LR} "
            f"(linear, 10% warm-up), {meta.get('epochs', 1)} epoch(s)"
            + (", cuDNN attention off" if meta.get("no_cudnn_sdpa") else "")
            + f". {meta['machine']}; matmul peak fp32 {meta['peaks']['fp32'] / 1e9:.0f} GFLOP/s, "
            f"bf16 {meta['peaks']['bf16'] / 1e9:.1f} GFLOP/s. Measured {meta['date']} by `{meta['command']}`.", "",
            "| max len | arm | train samples/s | real tokens/s | train wall s | MFU (fp32 peak) | peak RSS GB "
            "| val acc | eval samples/s | C / arm (samples/s) |",
            "| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for length in meta["lengths"]:
        arms = {r["arm"]: r for r in results if r["length"] == length}
        c = arms.get("C")
        for arm in sorted(arms):
            r, f = arms[arm], arms[arm]["figures"]
            mfu = f"{f['mfu_fp32_peak']:.0%}" if "mfu_fp32_peak" in f else "n/a"
            if DEVICE == "cuda" and "mfu_own_peak" in f:
                mfu += f" ({f['mfu_own_peak']:.1%} of {'bf16' if 'bf16' in r['precision'] else 'fp32'})"
            acc = f"{r['val_acc']:.4f}" if r["val_acc"] is not None else "n/a (speed only)"
            ratio = f"{c['figures']['train_samples_per_s'] / f['train_samples_per_s']:.2f}" if c and arm != "C" else ""
            full = meta["n_train"] * meta.get("epochs", 1)
            steps = "" if r["train_samples"] == full else f" ({r['train_samples']} samples)"
            rows.append(f"| {length} | {arm}: {DESCRIBE[arm]}{steps} | {f['train_samples_per_s']:.2f} | "
                        f"{f['tokens_per_s']:.0f} | {r['train_s']:.0f} | {mfu} | {r['peak_rss_gb']:.2f} | {acc} | "
                        f"{f['eval_samples_per_s']:.1f} | {ratio} |")
    return "\n".join(rows)


def write_doc(text: str, tag: str = "") -> None:
    from src.doc_tables import write_between_markers

    write_between_markers(DOC, f"{MARKER}_{tag}" if tag else MARKER, text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--arms", default="A,B,B32,C", help="comma-separated arms to run")
    parser.add_argument("--lengths", default="256,512", help="comma-separated max lengths")
    parser.add_argument("--n_train", type=int, default=2000, help="training reviews")
    parser.add_argument("--n_val", type=int, default=1000, help="held-out reviews scored after training")
    parser.add_argument("--batch_size", type=int, default=16)
    parser.add_argument("--eval_batch_size", type=int, default=32)
    parser.add_argument("--bf16_steps", type=int, default=3, help="arm B's steps where bf16 is emulated")
    parser.add_argument("--epochs", type=int, default=1, help="passes over the training reviews")
    parser.add_argument("--no_cudnn_sdpa", action="store_true",
                        help="on a GPU, keep PyTorch's attention off its cuDNN kernel (every arm)")
    parser.add_argument("--tag", default="", help="a name for this setting: its own JSON and table in the doc")
    parser.add_argument("--child", nargs=2, metavar=("ARM", "LENGTH"), help=argparse.SUPPRESS)
    parser.add_argument("--result", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args.child[0], int(args.child[1]), args)

    from transformers import AutoModelForSequenceClassification

    from src.flops import attention_shape, matmul_peak, matmul_weights
    from src.pretrained import from_pretrained

    model = from_pretrained(AutoModelForSequenceClassification, MODEL, num_labels=2)
    shape = (matmul_weights(model), *attention_shape(model))
    size = 8192 if DEVICE == "cuda" else 2048
    peaks = {"fp32": matmul_peak(DEVICE, torch.float32, size),
             "bf16": matmul_peak(DEVICE, torch.bfloat16, size if _fast_bf16() else 512)}
    arms, lengths = args.arms.split(","), [int(x) for x in args.lengths.split(",")]
    meta = {"command": " ".join(["python", "benchmarks/trainer_vs_fit.py", *sys.argv[1:]]),
            "date": time.strftime("%Y-%m-%d"), "lengths": lengths, "n_train": args.n_train, "n_val": args.n_val,
            "epochs": args.epochs, "no_cudnn_sdpa": args.no_cudnn_sdpa,
            "batch_size": args.batch_size, "peaks": peaks, "shape": shape, "torch_threads": torch.get_num_threads(),
            "machine": (f"{torch.cuda.get_device_name()}, " if DEVICE == "cuda" else "")
                       + f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
                       f"torch {torch.__version__} ({torch.backends.cpu.get_cpu_capability()})"}
    out = OUT.with_name(f"{OUT.stem}_{args.tag}.json") if args.tag else OUT
    results = []
    for i, length in enumerate(lengths):
        for arm in arms if i % 2 == 0 else arms[::-1]:  # alternate the order: drift hits no arm alone
            with tempfile.NamedTemporaryFile(suffix=".json") as f:
                cmd = [sys.executable, __file__, "--child", arm, str(length), "--result", f.name,
                       *[f"--{k}={getattr(args, k)}" for k in ("n_train", "n_val", "batch_size", "eval_batch_size",
                                                             "bf16_steps", "epochs")],
                       *(["--no_cudnn_sdpa"] if args.no_cudnn_sdpa else [])]
                print(f"[{time.strftime('%H:%M:%S')}] arm {arm}, max length {length}", flush=True)
                subprocess.run(cmd, check=True, cwd=ROOT)
                r = json.loads(Path(f.name).read_text())
            r["figures"] = figures(r, shape, peaks)
            print(f"  {json.dumps(r['figures'])}, val acc {r['val_acc']}, peak RSS {r['peak_rss_gb']:.2f} GB",
                  flush=True)
            results.append(r)
            out.parent.mkdir(parents=True, exist_ok=True)  # after every arm: an interrupted run keeps what it did
            out.write_text(json.dumps({"meta": meta, "results": [{k: v for k, v in x.items() if k != "lengths"}
                                                                 for x in results]}, indent=2))
    write_doc(table(results, meta), args.tag)
    print(f"-> {out}, {DOC}")


if __name__ == "__main__":
    main()
