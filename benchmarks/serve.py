"""`python -m src serve` under load, on loopback: requests/s and p50/p99 latency at 1, 16 and 64 concurrent clients,
each request one real review, against the same model's in-process batch throughput (`src.api.load(run).predict`);
plus the server's memory, idle and under load. In-process rounds are taken before and after the server levels, and
every level sends the same reviews; the server's answers are checked against the in-process labels.

To run: python benchmarks/serve.py --run outputs/bert_imdb/version_0   (a run folder, .ckpt or export folder)
        -> outputs/bench/serve.json and the table in docs/benchmarks.md
"""

import argparse
import contextlib
import datetime
import json
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import torch

from src.api import load
from src.data.selection import evaluation_reviews
from src.doc_tables import write_between_markers

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "benchmarks.md"


def group_memory_mb(group: int) -> tuple[float, float, int]:
    """Resident and proportional (shared pages split between their processes) MB summed over a process group, and
    how many processes it has (Linux /proc; zeros elsewhere)."""
    rss = pss = count = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError):
            if int(stat.read_text().rsplit(")", 1)[1].split()[2]) != group:
                continue
            fields = dict(line.split(":", 1) for line in (stat.parent / "smaps_rollup").read_text().splitlines()[1:])
            rss += int(fields["Rss"].split()[0]) / 1024
            pss += int(fields["Pss"].split()[0]) / 1024
            count += 1
    return rss, pss, count


def post(url: str, text: str) -> tuple[float, dict]:
    body = json.dumps({"text": text}).encode()
    request = urllib.request.Request(f"{url}/predict", data=body, headers={"content-type": "application/json"})
    start = time.perf_counter()
    with urllib.request.urlopen(request, timeout=600) as response:
        row = json.loads(response.read())
    return time.perf_counter() - start, row


def start_server(run: str, max_batch_size: int) -> tuple[subprocess.Popen, str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "src", "serve", run, "--port", str(port), "--max_batch_size",
                             str(max_batch_size)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True, cwd=ROOT)
    url = f"http://127.0.0.1:{port}"
    for _ in range(600):
        with contextlib.suppress(OSError):
            with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
                if response.status == 200:
                    return proc, url
        if proc.poll() is not None:
            raise SystemExit(f"the server exited with {proc.returncode}: run python -m src serve {run} to see why")
        time.sleep(0.5)
    raise SystemExit("the server did not answer /health within 5 minutes")


def level(url: str, texts: list[str], clients: int, group: int) -> dict:
    """Every text sent once as its own request by `clients` concurrent clients; memory sampled meanwhile."""
    peak, done = [0.0, 0.0], threading.Event()

    def sample() -> None:
        while not done.wait(0.5):
            rss, pss, _ = group_memory_mb(group)
            peak[:] = max(peak[0], rss), max(peak[1], pss)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    start = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        answers = list(pool.map(lambda text: post(url, text), texts))
    wall = time.perf_counter() - start
    done.set()
    sampler.join()
    latencies = sorted(seconds for seconds, _ in answers)
    return {"clients": clients, "requests": len(texts), "wall_s": wall, "requests_per_s": len(texts) / wall,
            "p50_ms": 1000 * latencies[len(latencies) // 2],
            "p99_ms": 1000 * latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))],
            "labels": [row["label"] for _, row in answers], "peak_rss_mb": peak[0], "peak_pss_mb": peak[1]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", required=True, help="run folder, checkpoint or export folder of a classifier")
    parser.add_argument("--n", type=int, default=256, help="validation reviews: requests per level, batch in process")
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 16, 64])
    parser.add_argument("--max_batch_size", type=int, default=64, help="the server's --max_batch_size (its default)")
    parser.add_argument("--rounds", type=int, default=2, help="in-process rounds before and after the server levels")
    args = parser.parse_args()

    texts = evaluation_reviews(None, "validation", args.n).texts
    model = load(args.run)
    model.predict(texts[:8])  # warm-up

    def in_process() -> float:
        start = time.perf_counter()
        labels[:] = [row["label"] for row in model.predict(texts)]
        return args.n / (time.perf_counter() - start)

    labels: list[int] = []
    batch_rates = [in_process() for _ in range(args.rounds)]
    proc, url = start_server(args.run, args.max_batch_size)
    try:
        idle = group_memory_mb(proc.pid)
        for text in texts[:8]:
            post(url, text)  # warm-up
        levels = [level(url, texts, clients, proc.pid) for clients in args.clients]
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=60)
    del model  # the server's worker is gone: measure in process again on the same CPU
    model = load(args.run)
    model.predict(texts[:8])
    batch_rates += [in_process() for _ in range(args.rounds)]
    batch = statistics.median(batch_rates)
    for row in levels:
        row["of_in_process"] = row["requests_per_s"] / batch
        row["same_label_as_in_process"] = sum(a == b for a, b in zip(row.pop("labels"), labels)) / args.n
    meta = {"run": str(args.run), "n": args.n, "max_batch_size": args.max_batch_size, "in_process_batch": 32,
            "in_process_reviews_per_s": batch, "in_process_all": batch_rates, "idle_rss_mb": idle[0],
            "idle_pss_mb": idle[1], "processes": idle[2], "threads": torch.get_num_threads(),
            "cpu_capability": torch.backends.cpu.get_cpu_capability(), "cores": os.cpu_count(),
            "machine": platform.machine(), "date": datetime.date.today().isoformat()}
    out = ROOT / "outputs" / "bench" / "serve.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"meta": meta, "rows": levels}, indent=2))
    print(write_table(meta, levels), "\n->", out, DOC)


def write_table(meta: dict, rows: list[dict]) -> str:
    lines = [
        f"{meta['n']} validation reviews a level, each its own request; server `--max_batch_size "
        f"{meta['max_batch_size']}`; in process: `load(run).predict` in batches of {meta['in_process_batch']}, "
        f"{meta['in_process_reviews_per_s']:.1f} reviews/s (median of {len(meta['in_process_all'])} rounds, before and "
        f"after). {meta['cores']} cores ({meta['cpu_capability']}), {meta['date']}; server idle: {meta['processes']} "
        f"processes, {meta['idle_rss_mb']:.0f} MB resident in all ({meta['idle_pss_mb']:.0f} MB proportional). "
        f"`python benchmarks/serve.py --run {meta['run']}`.",
        "",
        "| clients | requests/s | of in-process | p50 ms | p99 ms | same label | peak RSS MB (PSS) |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    lines += [f"| {r['clients']} | {r['requests_per_s']:.1f} | {100 * r['of_in_process']:.0f}% | {r['p50_ms']:.0f} | "
              f"{r['p99_ms']:.0f} | {r['same_label_as_in_process']:.3f} | {r['peak_rss_mb']:.0f} "
              f"({r['peak_pss_mb']:.0f}) |" for r in rows]
    table = "\n".join(lines)
    write_between_markers(DOC, "serve", table, heading="## 8. Serving under load")
    return table


if __name__ == "__main__":
    main()
