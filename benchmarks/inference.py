"""CPU inference: this project's predict path (`src.api.load(...).predict`, length-sorted batches, head+tail
truncation) against `transformers.pipeline("text-classification")` in its documented batched use, on the same
validation reviews, side by side (arms alternated in every round, medians of the rounds); the predict path also
in bf16 autocast and with dynamic int8 quantization of its Linear layers. Reviews/s, accuracy, agreement.

To run: python benchmarks/inference.py --run outputs/bert_imdb/version_0   (a run folder or .ckpt of the classifier)
        -> outputs/bench/inference.json and the table in docs/benchmarks.md
"""

import argparse
import copy
import datetime
import json
import platform
import statistics
import tempfile
import time
from pathlib import Path

import torch
from torch import nn
from transformers import pipeline

from src.api import load
from src.data.selection import evaluation_reviews
from src.doc_tables import write_between_markers

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "benchmarks.md"


def reviews(n: int) -> tuple[list[str], list[int]]:
    """`n` class-balanced held-out validation reviews of configs/bert_imdb.yaml (the same seeded split), raw."""
    r = evaluation_reviews(None, "validation", n)
    return r.texts, r.labels


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", required=True, help="run folder or checkpoint of a classifier")
    parser.add_argument("--n", type=int, default=1000, help="validation reviews scored per arm and round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch_size", type=int, default=32)
    args = parser.parse_args()

    texts, labels = reviews(args.n)
    fp32 = load(args.run, batch_size=args.batch_size)
    max_length = fp32.data.hparams.max_length
    int8 = copy.deepcopy(fp32)
    int8.module.model = torch.ao.quantization.quantize_dynamic(int8.module.model, {nn.Linear}, dtype=torch.qint8)
    export = Path(tempfile.mkdtemp()) / "export"  # the pipeline loads the same weights as a Hugging Face folder
    fp32.module.model.save_pretrained(export)
    fp32.module.tokenizer.save_pretrained(export)
    classify = pipeline("text-classification", model=str(export), top_k=None, device=-1)
    names = fp32.module.hparams.label_names

    def predicted(rows: list[dict]) -> list[int]:
        return [row["label"] for row in rows]

    def bf16_predict(batch: list[str]) -> list[dict]:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            return fp32.predict(batch)

    arms = {
        "pipeline (fp32, batch_size=32, truncation to max length)": lambda: [
            names.index(max(scores, key=lambda s: s["score"])["label"])
            for scores in classify(texts, batch_size=args.batch_size, truncation=True, max_length=max_length)],
        "predict (fp32)": lambda: predicted(fp32.predict(texts)),
        "predict (bf16 autocast)": lambda: predicted(bf16_predict(texts)),
        "predict (dynamic int8)": lambda: predicted(int8.predict(texts)),
    }
    seconds, outputs = {arm: [] for arm in arms}, {}
    for _ in range(args.rounds):
        for arm, run in arms.items():
            start = time.perf_counter()
            outputs[arm] = run()
            seconds[arm].append(time.perf_counter() - start)
    base, reference = next(iter(arms)), "predict (fp32)"
    rows = []
    for arm in arms:
        median = statistics.median(seconds[arm])
        rows.append({
            "arm": arm, "median_s": median, "reviews_per_s": args.n / median,
            "speedup_over_pipeline": statistics.median(seconds[base]) / median,
            "accuracy": sum(p == y for p, y in zip(outputs[arm], labels)) / args.n,
            "agreement_with_predict_fp32": sum(p == q for p, q in zip(outputs[arm], outputs[reference])) / args.n,
            "all_s": seconds[arm],
        })
    meta = {"run": str(args.run), "n": args.n, "rounds": args.rounds, "batch_size": args.batch_size,
            "max_length": max_length, "threads": torch.get_num_threads(), "machine": platform.processor() or "cpu",
            "cpu_capability": torch.backends.cpu.get_cpu_capability(), "date": datetime.date.today().isoformat()}
    out = ROOT / "outputs" / "bench" / "inference.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"meta": meta, "rows": rows}, indent=2))
    table = write_table(meta, rows)
    print(table, "\n->", out, DOC)


def write_table(meta: dict, rows: list[dict]) -> str:
    lines = [
        f"{meta['n']} validation reviews, max length {meta['max_length']}, batch {meta['batch_size']}, "
        f"{meta['threads']} threads ({meta['cpu_capability']}), medians of {meta['rounds']} alternated rounds, "
        f"{meta['date']}; `python benchmarks/inference.py --run {meta['run']}`.",
        "",
        "| arm | reviews/s | vs pipeline | accuracy | same label as predict fp32 |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    lines += [f"| {r['arm']} | {r['reviews_per_s']:.1f} | {r['speedup_over_pipeline']:.2f}x | {r['accuracy']:.3f} | "
              f"{r['agreement_with_predict_fp32']:.3f} |" for r in rows]
    table = "\n".join(lines)
    write_between_markers(DOC, "inference", table, heading="## 5. Inference on CPU: predict against pipeline")
    return table


if __name__ == "__main__":
    main()
