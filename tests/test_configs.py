"""Every config in configs/ parses with the CLI (nothing is downloaded: --print_config instantiates nothing)."""

from pathlib import Path

import pytest
import yaml

from src.cli import main

CONFIGS = sorted(Path("configs").glob("*.yaml"))


def test_there_are_configs():
    assert {"bert_imdb.yaml", "bert_base_imdb.yaml"} <= {p.name for p in CONFIGS}


@pytest.mark.parametrize("config", CONFIGS, ids=lambda p: p.name)
def test_config_parses(config, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["fit", "--config", str(config), "--print_config"])
    assert exit_.value.code == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    source = yaml.safe_load(config.read_text())
    assert printed["model"]["class_path"] == source["model"]["class_path"]
    assert printed["model"]["init_args"]["model_name"] == source["model"]["init_args"]["model_name"]
    assert printed["data"]["val_size"] == source["data"]["val_size"]
