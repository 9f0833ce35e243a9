"""Model FLOP utilisation (MFU): the training step's useful FLOP/s over the machine's measured matmul peak.

Useful FLOPs count real (non-padding) tokens only, with the PaLM paper's formula (appendix B): a training
step costs 6 FLOPs per matmul weight per token (forward 2, backward 4), plus attention's score and value
products, 12 * layers * hidden * sequence length per token. Padding, recomputation and elementwise work
count for nothing, so MFU falls when they grow. The peak is measured, not taken from a datasheet: a
large square `torch.matmul` in the training precision, on the same device.

To run: .venv/bin/python -m src.flops   (prints this machine's fp32 and bf16 matmul peaks)
"""

import functools
import time

import torch
from torch import nn


def matmul_weights(model: nn.Module) -> int:
    """Elements of every `nn.Linear` weight (embedding lookups are no matmuls; a tied LM head is one)."""
    return sum(m.weight.numel() for m in model.modules() if isinstance(m, nn.Linear))


def attention_shape(model: nn.Module) -> tuple[int, int]:
    """(layers, hidden size) from the wrapped Hugging Face model's config; (0, 0) when there is none."""
    config = next((m.config for m in model.modules() if hasattr(m, "config")), None)
    if config is None:
        return 0, 0
    config = config.get_text_config() if hasattr(config, "get_text_config") else config
    return getattr(config, "num_hidden_layers", 0), getattr(config, "hidden_size", 0)


def train_flops(lengths: torch.Tensor, weights: int, layers: int, hidden: int) -> torch.Tensor:
    """Useful FLOPs of one training step over sequences of these real lengths (a tensor: no host sync)."""
    lengths = lengths.double()
    return 6 * weights * lengths.sum() + 12 * layers * hidden * (lengths**2).sum()


@functools.cache  # once per process, device and precision
def matmul_peak(device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32, size: int | None = None,
                repeats: int = 5) -> float:
    """Measured FLOP/s of a square `torch.matmul`: the fastest of `repeats`, after a warm-up (noise only slows)."""
    device = torch.device(device)
    size = size or (8192 if device.type == "cuda" else 2048)
    a = torch.randn(size, size, device=device, dtype=dtype)
    b = torch.randn(size, size, device=device, dtype=dtype)
    times = []
    for i in range(repeats + 1):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        a @ b
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        if i:
            times.append(time.perf_counter() - start)
    return 2 * size**3 / min(times)


if __name__ == "__main__":
    device = "cuda" if torch.cuda.is_available() else "cpu"
    for dtype in (torch.float32, torch.bfloat16):
        # Without native bf16 (AVX512-BF16/AMX) a large bf16 matmul takes minutes: measure a smaller one.
        size = 512 if device == "cpu" and dtype == torch.bfloat16 else None
        print(f"{device} {dtype}: {matmul_peak(device, dtype, size) / 1e9:.1f} GFLOP/s")
