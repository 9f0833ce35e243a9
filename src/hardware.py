"""What this machine computes fast: the CLI falls back to fp32 where bf16 would be emulated, and `quantize="auto"`
picks by it. torch is imported on first use (`serve`'s front process stays free of it).

To run: python -c "from src.hardware import cpu_has_fast_bf16; print(cpu_has_fast_bf16())"
"""


def cpu_has_fast_bf16() -> bool:
    """bf16 matmuls run natively only with AVX512-BF16 or AMX; elsewhere autocast emulates them slowly."""
    import torch

    # torch has no public probe for these CPU features (tests/test_cli.py fails if these names go away).
    return torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported()


def cpu_has_amx() -> bool:
    """AMX tiles: torch's bf16 kernels several times faster than AVX512-BF16 alone."""
    import torch

    return torch.cpu._is_amx_tile_supported()


def cpu_kind() -> str:
    """The CPU's vendor and torch's capability, plus AMX (e.g. `Intel-AVX512+AMX`, `AMD-AVX2`): bf16 speed differs
    several-fold within one capability with AMX, and so can an AMD and an Intel CPU: what benchmark tables and study
    rows are keyed or marked by."""
    import platform
    from pathlib import Path

    import torch

    vendor = platform.processor() or "cpu"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        ids = [line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines()
               if line.startswith("vendor_id")]
        vendor = {"GenuineIntel": "Intel", "AuthenticAMD": "AMD"}.get(ids[0], ids[0]) if ids else vendor
    amx = "+AMX" if cpu_has_amx() else ""
    return f"{vendor}-{torch.backends.cpu.get_cpu_capability()}{amx}"
