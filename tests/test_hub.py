"""Offline, a hub id that nothing cached answers is one line at once, not half a minute of retries."""

import time

import pytest
from huggingface_hub import constants

from src import hub
from src.data.sources import load_source
from src.errors import UserError
from src.pretrained import load_tokenizer


@pytest.fixture
def offline_hub(monkeypatch, tmp_path):
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)  # not in offline mode: the probe decides
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setattr(hub.datasets.config, "HF_DATASETS_CACHE", str(tmp_path / "datasets"))
    monkeypatch.setattr(hub, "hub_reachable", lambda: False)
    return tmp_path


@pytest.mark.parametrize("load, name, message", [
    (load_source, "my_reviews", "data source 'my_reviews' is no local path and not in the Hugging Face cache"),
    (load_tokenizer, "no-such-org/no-such-model", "model 'no-such-org/no-such-model' is no local path"),
])
def test_an_uncached_hub_id_offline_fails_at_once(offline_hub, load, name, message):
    start = time.perf_counter()
    with pytest.raises(UserError, match=message) as err:
        load(name)
    assert time.perf_counter() - start < 5 and "fix:" in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize("relative", [False, True])
def test_a_local_folder_loads_offline_without_asking_the_hub(offline_hub, tiny_bert, relative, monkeypatch):
    """A folder named by a clean path (an export, `outputs/.../export/best`) is no hub id, however it is written."""
    from transformers import AutoModelForSequenceClassification

    from src.pretrained import from_pretrained

    if relative:
        monkeypatch.chdir(tiny_bert.rsplit("/", 1)[0])
    name = tiny_bert.rsplit("/", 1)[1] if relative else tiny_bert
    assert from_pretrained(AutoModelForSequenceClassification, name).config.num_hidden_layers == 2
    assert load_tokenizer.__wrapped__(name).vocab_size > 1000


def test_a_cached_hub_id_goes_on_to_the_library_cache(offline_hub):
    (offline_hub / "hub" / "datasets--owner--reviews").mkdir(parents=True)
    assert hub.is_cached("owner/reviews", "dataset") and not hub.is_cached("owner/other", "dataset")
    hub.require_hub("owner/reviews", "dataset", "data source", "")  # no error: the library reads its cache


def test_the_probe_answers_within_its_timeout(monkeypatch):
    for name in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(constants, "ENDPOINT", "https://127.0.0.1:9")  # the discard port: refused at once
    hub.hub_reachable.cache_clear()
    start = time.perf_counter()
    assert hub.hub_reachable(timeout=3.0) is False and time.perf_counter() - start < 4
    hub.hub_reachable.cache_clear()
