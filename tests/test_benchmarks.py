"""The benchmark scripts' bookkeeping (the measurements themselves are scripts: `make bench`)."""

import importlib.util
from pathlib import Path

import pytest
import torch


@pytest.fixture
def bench(tmp_path, monkeypatch):
    spec = importlib.util.spec_from_file_location("trainer_vs_fit", Path("benchmarks/trainer_vs_fit.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.setattr(module, "DOC", tmp_path / "benchmarks.md")
    return module


def result(arm: str, train_s: float, acc: float | None, samples: int = 100) -> dict:
    return {"arm": arm, "length": 256, "train_samples": samples, "train_s": train_s, "real_tokens": 200 * samples,
            "lengths": [200] * samples if acc is not None else None, "eval_samples": 50, "eval_s": 5.0,
            "val_acc": acc, "peak_rss_gb": 1.0, "precision": "bf16-mixed" if arm == "C" else "fp32"}


def test_table_ratios_mfu_and_speed_only_arms(bench):
    peaks, shape = {"fp32": 1e11, "bf16": 1e9}, (1000, 2, 32)
    results = [result("A", 30.0, 0.8), result("B", 100.0, None, samples=48), result("C", 10.0, 0.81)]
    for r in results:
        r["figures"] = bench.figures(r, shape, peaks)
    meta = {"lengths": [256], "n_train": 100, "n_val": 50, "batch_size": 16, "peaks": peaks, "machine": "cpu",
            "date": "today", "command": "python benchmarks/trainer_vs_fit.py"}
    lines = bench.table(results, meta).splitlines()
    rows = {line.split(" | ")[1][:1]: line for line in lines if line.startswith("| 256")}
    assert rows["A"].endswith("| 3.00 |")  # C trains 100 samples in 10 s, A in 30 s
    assert rows["B"].endswith("| 20.83 |")  # C: 10 samples/s; B: 48 samples in 100 s
    assert "(48 samples)" in rows["B"] and "n/a (speed only)" in rows["B"]
    flops = 6 * 1000 * 200 * 100 + 12 * 2 * 32 * 200**2 * 100  # src/flops.py's formula over 100 reviews of 200
    assert f"| {flops / 10.0 / 1e11:.0%} |" in rows["C"]
    assert results[2]["figures"]["mfu_own_peak"] == pytest.approx(flops / 10.0 / 1e9)  # C ran bf16: its own peak


def test_a_gpu_run_writes_its_own_table_beside_the_cpu_one(bench):
    bench.DOC.write_text("intro\n<!-- trainer_vs_fit:start -->\ncpu table\n<!-- trainer_vs_fit:end -->\n")
    gpu = ("<!-- trainer_vs_fit_cuda:start -->", "<!-- trainer_vs_fit_cuda:end -->")
    bench.MARKER = "trainer_vs_fit_cuda"
    bench.write_doc("gpu table")
    text = bench.DOC.read_text()
    assert "cpu table" in text and f"{gpu[0]}\ngpu table\n{gpu[1]}" in text


def test_doc_keeps_what_is_around_the_table(bench):
    start, end = "<!-- trainer_vs_fit:start -->", "<!-- trainer_vs_fit:end -->"
    bench.DOC.write_text(f"intro\n{start}\nold table\n{end}\nafter\n")
    bench.write_doc("new table")
    assert bench.DOC.read_text() == f"intro\n{start}\nnew table\n{end}\nafter\n"


def test_the_inference_table_names_every_arm_and_why_one_was_skipped(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend("benchmarks")  # its `from timing import ...`, as when run as a script
    spec = importlib.util.spec_from_file_location("inference", Path("benchmarks/inference.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.setattr(module, "DOC", tmp_path / "benchmarks.md")
    meta = {"n": 10, "max_length": 256, "batch_size": 32, "threads": 2, "cpu_capability": "AVX2", "rounds": 3,
            "date": "today", "run": "r", "skipped": {"OpenVINO": "not installed (openvino)"}}
    rows = [{"arm": arm, "reviews_per_s": rate, "speedup_over_pipeline": rate / 10, "accuracy": 0.9,
             "agreement_with_predict_fp32": 1.0} for arm, rate in (("pipeline", 10.0), ("predict (fp32)", 15.0))]
    lines = module.write_table(meta, rows).splitlines()
    assert "| predict (fp32) | 15.0 | 1.50x | 0.900 | 1.000 |" in lines
    assert "| OpenVINO | skipped: not installed (openvino) | | | |" in lines
    assert "10 test reviews" in lines[0] and "<!-- inference-AVX2:start -->" in module.DOC.read_text()


def test_host_reads_counts_each_read_back_of_a_tensor_with_its_site(monkeypatch):
    monkeypatch.syspath_prepend("benchmarks")  # it imports step_overhead.py from beside it
    spec = importlib.util.spec_from_file_location("host_reads", Path("benchmarks/host_reads.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    tolist, waits = torch.Tensor.tolist, module.HostWaits()
    with waits, module.python_reads(waits):
        t = torch.arange(4.0)
        (t * 2).sum().item()
        assert (t > 1).any()
        t.nonzero()
        t.tolist()
        (t + 1).exp().softmax(0)  # no read
    assert sum(waits.counts.values()) == 4
    assert all(kind == "read" and where.startswith("test_benchmarks.py:") for kind, where in waits.counts)
    assert torch.Tensor.tolist is tolist  # put back


def test_arms_alternate_round_by_round_and_the_warm_up_round_is_dropped(monkeypatch):
    """The one timing loop of the benchmarks: each round calls every arm once, in turn; round 0 is not kept."""
    monkeypatch.syspath_prepend("benchmarks")
    from timing import alternate, alternate_results

    calls = []
    arms = {"a": lambda: calls.append("a") or len(calls), "b": lambda: calls.append("b") or len(calls)}
    times, results = alternate_results(arms, 2)
    assert calls == ["a", "b"] * 3  # alternated, a warm-up round and two timed ones
    assert results == {"a": [3, 5], "b": [4, 6]} and [len(t) for t in times.values()] == [2, 2]
    assert all(t >= 0 for t in alternate({"c": lambda: None}, 3)["c"])
