"""Why the `Trainer`'s bf16 arm ran 6x slower than its fp32 arm on an H200 (docs/benchmarks.md, "On a GPU"): what a
training step of the packaged MiniLM costs the first time it meets an input shape against a shape it has seen, in bf16
autocast and in fp32, with PyTorch's cuDNN attention allowed and not. Dynamic padding (the Trainer's
`DataCollatorWithPadding`) makes nearly every batch a new shape; the suspect is a kernel that builds a plan per shape.

Each setting trains on its own lengths (none shared between settings, so no setting finds another's plans), each length
twice: the first pass times new shapes, the second the same shapes again. Batches of `--batch_size` random token ids,
AdamW, one step = forward, backward, optimizer step, synchronized. Then one new-shape step per setting under the
profiler: its slowest operations by host time, and which attention kernel ran.

To run: .venv/bin/python benchmarks/bf16_shapes.py   (on a GPU; writes outputs/bench/bf16_shapes.json)
"""

import argparse
import json
import random
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
OUT = ROOT / "outputs/bench/bf16_shapes.json"
MODEL = "sentence-transformers/all-MiniLM-L6-v2"
SETTINGS = [("bf16", True), ("bf16", False), ("fp32", True), ("fp32", False)]  # (precision, cuDNN attention allowed)


def step(model, optimizer, length: int, batch: int, precision: str, device: str) -> float:
    """One training step on a (batch, length) input; its wall time in ms, the device synchronized."""
    ids = torch.randint(1000, 20000, (batch, length), device=device)
    labels = torch.randint(0, 2, (batch,), device=device)
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    sync()
    start = time.perf_counter()
    with torch.autocast(device, dtype=torch.bfloat16, enabled=precision == "bf16"):
        loss = model(input_ids=ids, attention_mask=torch.ones_like(ids), labels=labels).loss
    loss.backward()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    sync()
    return 1000 * (time.perf_counter() - start)


def profile(model, optimizer, length: int, batch: int, precision: str, device: str) -> dict:
    """One step under the profiler: the five costliest operations by host time, and the attention kernels that ran."""
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as profiler

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device == "cuda" else [])
    with profiler(activities=activities) as prof:
        step(model, optimizer, length, batch, precision, device)
    events = prof.key_averages()
    top = sorted(events, key=lambda e: e.self_cpu_time_total, reverse=True)[:5]
    attention = sorted({e.key for e in events if any(s in e.key.lower() for s in ("cudnn", "flash", "efficient",
                                                                                  "fmha", "sdpa", "attention"))})
    return {"top_host_ops_ms": {e.key: round(e.self_cpu_time_total / 1000, 2) for e in top},
            "attention_ops": attention[:12]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shapes", type=int, default=24, help="new lengths a setting trains on (each twice)")
    parser.add_argument("--batch_size", type=int, default=16)
    args = parser.parse_args()
    from transformers import AutoModelForSequenceClassification

    from src.pretrained import from_pretrained

    device = "cuda" if torch.cuda.is_available() else "cpu"
    lengths = list(range(64, 257))
    random.Random(0).shuffle(lengths)
    need = len(SETTINGS) * (args.shapes + 1)  # +1: the profiled step's own new length
    if need > len(lengths):
        raise SystemExit(f"--shapes {args.shapes}: at most {len(lengths) // len(SETTINGS) - 1} (distinct lengths)")
    model = from_pretrained(AutoModelForSequenceClassification, MODEL, num_labels=2).to(device).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5, fused=device == "cuda")
    for _ in range(3):  # warm-up on a length no setting uses: CUDA context, cuBLAS handles, the optimizer's state
        step(model, optimizer, 32, args.batch_size, "fp32", device)
    result = {"device": torch.cuda.get_device_name() if device == "cuda" else "cpu", "torch": torch.__version__,
              "batch_size": args.batch_size, "shapes": args.shapes, "settings": []}
    for i, (precision, cudnn) in enumerate(SETTINGS):
        if device == "cuda":
            torch.backends.cuda.enable_cudnn_sdp(cudnn)
        own = lengths[i * (args.shapes + 1):(i + 1) * (args.shapes + 1)]
        new = [step(model, optimizer, n, args.batch_size, precision, device) for n in own[:-1]]
        seen = [step(model, optimizer, n, args.batch_size, precision, device) for n in own[:-1]]
        row = {"precision": precision, "cudnn_attention": cudnn, "new_shape_ms": statistics.median(new),
               "seen_shape_ms": statistics.median(seen), "new_total_s": sum(new) / 1000,
               **profile(model, optimizer, own[-1], args.batch_size, precision, device)}
        result["settings"].append(row)
        print(f"{precision} cuDNN attention {'on ' if cudnn else 'off'}: new shape {row['new_shape_ms']:.1f} ms, "
              f"seen {row['seen_shape_ms']:.1f} ms; attention ops {row['attention_ops'][:4]}", flush=True)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(result, indent=2))
    print("->", OUT)


if __name__ == "__main__":
    main()
