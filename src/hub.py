"""Fail fast offline: before a hub id is fetched, a 3-second probe of the Hugging Face Hub, so that an offline user
with nothing cached gets one line at once instead of the libraries' retries (measured offline: 31 s in `datasets`,
53 s in `transformers`, before their own error).

To run: python -c "from src.hub import hub_reachable; print(hub_reachable())"
"""

import functools
import os
import socket
from pathlib import Path
from urllib.parse import urlparse

import datasets
from huggingface_hub import constants

from src.errors import UserError


@functools.cache
def hub_reachable(timeout: float = 3.0) -> bool:
    """Whether a TCP connection to the Hub's endpoint opens (behind a proxy: assumed, the proxy decides)."""
    if any(os.environ.get(name) for name in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")):
        return True
    url = urlparse(constants.ENDPOINT)
    try:
        socket.create_connection((url.hostname, url.port or 443), timeout=timeout).close()
        return True
    except OSError:  # no route, no DNS, refused, timed out
        return False


def is_cached(repo_id: str, repo_type: str) -> bool:
    """Whether the Hub cache (or, for a dataset, `datasets`' own cache) holds anything of `repo_id`."""
    folders = [Path(constants.HF_HUB_CACHE) / f"{repo_type}s--{repo_id.replace('/', '--')}"]
    if repo_type == "dataset":
        folders.append(Path(datasets.config.HF_DATASETS_CACHE) / repo_id.replace("/", "___"))
    return any(folder.exists() for folder in folders)


def require_hub(repo_id: str, repo_type: str, what: str, fix: str) -> None:
    """A one-line UserError when `repo_id` must come from the Hub and the Hub cannot be reached. Offline mode
    (HF_HUB_OFFLINE=1) and a cached copy are left to the libraries, which read their cache."""
    if constants.HF_HUB_OFFLINE or is_cached(repo_id, repo_type) or hub_reachable():
        return
    raise UserError(f"{what} {repo_id!r} is no local path and not in the Hugging Face cache, and the Hub "
                    f"({constants.ENDPOINT}) cannot be reached: offline? fix: {fix}")
