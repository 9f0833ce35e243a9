"""CPU inference: this project's predict path (`src.api.load(...).predict`: length-sorted batches, dynamic padding,
head+tail truncation) against `transformers.pipeline("text-classification")` in its documented batched use, on the
same test reviews, side by side (arms alternated in every round, medians of the rounds, one warm-up round).
The predict path's arms: fp32, bf16 (autocast, and weights cast to bf16; CPUs with native bf16 only), dynamic int8
(`quantize="int8"`), OpenVINO (fp32 behind the same batches; bf16 where the CPU has it natively, as
`quantize="openvino-bf16"`: src/openvino_model.py), and what else the field uses, behind the same batches:
`torch.compile` (of fp32 and of int8) and ONNX Runtime (fp32; int8 after its transformer fusions and dynamic
quantization). Reviews/s, accuracy, agreement with fp32.

ONNX Runtime is not a dependency of the project, OpenVINO an optional one: `pip install -r
benchmarks/requirements-inference.txt` (an arm whose package is missing is written as skipped).

To run: python benchmarks/inference.py --run outputs/bert_imdb/version_0   (a run folder or .ckpt of the classifier)
        -> outputs/bench/inference.json and the table in docs/benchmarks.md
"""

import argparse
import datetime
import importlib.util
import json
import platform
import statistics
import tempfile
from pathlib import Path
from types import SimpleNamespace

import torch
from timing import alternate_results  # benchmarks/timing.py, beside this script
from torch import nn
from transformers import pipeline

from src.api import load
from src.data.selection import evaluation_reviews
from src.doc_tables import write_between_markers
from src.hardware import cpu_has_fast_bf16, cpu_kind
from src.quantize import pick

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "benchmarks.md"
INPUTS = ["input_ids", "attention_mask"]


class Exported(nn.Module):
    """An exported model behind the Hugging Face call the classifier makes: `model(input_ids=, attention_mask=)`
    returns an object with `.logits`. `run` maps numpy inputs to the logits array."""

    def __init__(self, run):
        super().__init__()
        self.run = run

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> SimpleNamespace:
        return SimpleNamespace(logits=torch.from_numpy(self.run(input_ids.numpy(), attention_mask.numpy())))


def export_onnx(model: nn.Module, folder: Path) -> Path:
    """The classifier as ONNX, batch and length dynamic (torch's TorchScript exporter: the graph ONNX Runtime's
    transformer fusions recognise)."""
    path, example = folder / "model.onnx", torch.ones(2, 16, dtype=torch.long)
    axes = {"input_ids": {0: "batch", 1: "length"}, "attention_mask": {0: "batch", 1: "length"}, "logits": {0: "batch"}}
    torch.onnx.export(model, (example, example), str(path), input_names=INPUTS, output_names=["logits"],
                      dynamic_axes=axes, dynamo=False)
    return path


def onnxruntime_arms(model: nn.Module, folder: Path, threads: int) -> dict[str, nn.Module]:
    import onnx
    import onnxruntime as ort
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.transformers import optimizer

    plain = export_onnx(model, folder)
    config = model.config
    fused = optimizer.optimize_model(str(plain), model_type="bert", num_heads=config.num_attention_heads,
                                     hidden_size=config.hidden_size)
    fused.save_model_to_file(str(folder / "fused.onnx"))
    int8 = folder / "fused_int8.onnx"
    quantize_dynamic(folder / "fused.onnx", int8, weight_type=QuantType.QInt8,
                     extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})  # types the fused ops leave open
    options = ort.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = threads, 1

    def runtime(path: Path) -> nn.Module:
        s = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        return Exported(lambda ids, mask: s.run(None, {"input_ids": ids, "attention_mask": mask})[0])

    return {"ONNX Runtime (fp32)": runtime(plain), "ONNX Runtime (int8, fused)": runtime(int8)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", required=True, help="run folder or checkpoint of a classifier")
    parser.add_argument("--n", type=int, default=1000, help="test reviews scored per arm and round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--quick", action="store_true", help="the pipeline, predict in fp32 and quantize='auto' only")
    args = parser.parse_args()

    reviews = evaluation_reviews(None, "test", args.n)
    texts, labels = reviews.texts, reviews.labels
    fp32 = load(args.run, batch_size=args.batch_size, quantize="none")
    max_length, names = fp32.data.hparams.max_length, fp32.module.hparams.label_names
    folder = Path(tempfile.mkdtemp())
    export = folder / "export"  # the pipeline loads the same weights as a Hugging Face folder
    fp32.module.model.save_pretrained(export)
    fp32.module.tokenizer.save_pretrained(export)
    classify = pipeline("text-classification", model=str(export), top_k=None, device=-1)
    threads = torch.get_num_threads()

    def with_model(model: nn.Module):
        """fp32's predict path (same tokenization, batches and head) with `model` in place of the classifier's."""
        def run(batch: list[str]) -> list[dict]:
            kept, fp32.module.model = fp32.module.model, model
            try:
                return fp32.predict(batch)
            finally:
                fp32.module.model = kept
        return run

    def bf16(batch: list[str]) -> list[dict]:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            return fp32.predict(batch)

    arms, skipped = {
        "pipeline (fp32, batch_size=32, truncation to max length)": lambda batch: [
            {"label": names.index(max(scores, key=lambda s: s["score"])["label"])}
            for scores in classify(batch, batch_size=args.batch_size, truncation=True, max_length=max_length)],
        "predict (fp32)": fp32.predict,
    }, {}
    # what load, predict and serve do by default: the fastest quantizer here that keeps the labels
    arms[f"predict (quantize='auto': {pick(fp32.module.model, 'cpu')})"] = load(args.run, batch_size=args.batch_size,
                                                                                quantize="auto").predict
    if args.quick:
        skipped["the other arms"] = "--quick"
    fast_bf16 = cpu_has_fast_bf16()
    if args.quick:
        pass
    elif fast_bf16:
        arms["predict (bf16 autocast)"] = bf16
        # bf16 weights: no fp32 copy of each weight cast on every call, as autocast makes
        arms["predict (bf16 weights, quantize='bf16')"] = load(args.run, batch_size=args.batch_size,
                                                                quantize="bf16").predict
    else:
        skipped["predict (bf16 autocast, bf16 weights)"] = "no native bf16 on this CPU (emulated, many times slower)"
    if args.quick:
        pass
    elif importlib.util.find_spec("openvino") is None:
        skipped["OpenVINO"] = "not installed: pip install -e '.[openvino]'"
    else:
        from src.openvino_model import OpenVINOClassifier

        arms["OpenVINO (fp32)"] = with_model(OpenVINOClassifier(fp32.module.model, "f32"))
        if fast_bf16:
            arms["predict (OpenVINO bf16, quantize='openvino-bf16')"] = load(
                args.run, batch_size=args.batch_size, quantize="openvino-bf16").predict
    if not args.quick:
        int8 = load(args.run, batch_size=args.batch_size, quantize="int8")
        arms["predict (dynamic int8, quantize='int8')"] = int8.predict
        arms["predict (torch.compile, fp32)"] = with_model(torch.compile(fp32.module.model, dynamic=True))
        arms["predict (dynamic int8 + torch.compile)"] = with_model(torch.compile(int8.module.model, dynamic=True))
        try:
            arms |= {arm: with_model(model)
                     for arm, model in onnxruntime_arms(fp32.module.model, folder, threads).items()}
        except ImportError as err:
            skipped["ONNX Runtime"] = (f"not installed ({err.name}): pip install -r "
                                       "benchmarks/requirements-inference.txt")

    seconds, labelled = alternate_results({arm: lambda run=run: [row["label"] for row in run(texts)]
                                           for arm, run in arms.items()}, args.rounds)
    outputs = {arm: rows[-1] for arm, rows in labelled.items()}
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
            "max_length": max_length, "threads": threads, "machine": platform.processor() or "cpu",
            "cpu_capability": cpu_kind(),
            "date": datetime.date.today().isoformat(),
            "split": "test", "skipped": skipped, "quick": args.quick}
    out = ROOT / "outputs" / "bench" / "inference.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"meta": meta, "rows": rows}, indent=2))
    table = write_table(meta, rows)
    print(table, "\n->", out, DOC)


def write_table(meta: dict, rows: list[dict]) -> str:
    lines = [
        f"{meta['n']} test reviews, max length {meta['max_length']}, batch {meta['batch_size']}, "
        f"{meta['threads']} threads ({meta['cpu_capability']}), medians of {meta['rounds']} alternated rounds, "
        f"{meta['date']}; `python benchmarks/inference.py --run {meta['run']}{' --quick' * meta.get('quick', False)}`.",
        "",
        "| arm | reviews/s | vs pipeline | accuracy | same label as predict fp32 |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    lines += [f"| {r['arm']} | {r['reviews_per_s']:.1f} | {r['speedup_over_pipeline']:.2f}x | {r['accuracy']:.3f} | "
              f"{r['agreement_with_predict_fp32']:.3f} |" for r in rows]
    lines += [f"| {arm} | skipped: {why} | | | |" for arm, why in meta["skipped"].items()]
    table = "\n".join(lines)
    # one table per CPU kind: a run on another kind of CPU adds its own table (at the end, under its own heading, not
    # a second inference section) rather than replacing this one's
    write_between_markers(DOC, f"inference-{meta['cpu_capability']}", table,
                          heading=f"## Inference on CPU ({meta['cpu_capability']}): predict against pipeline")
    return table


if __name__ == "__main__":
    main()
