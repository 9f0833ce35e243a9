"""Every config in configs/ parses with the CLI (nothing is downloaded: --print_config instantiates nothing)."""

from pathlib import Path

import pytest
import yaml

from src.cli import main

CONFIGS = sorted(Path("configs").glob("*.yaml"))


def test_there_are_configs():
    assert {"bert_imdb.yaml", "bert_base_imdb.yaml", "gpt_zeroshot_imdb.yaml", "gpt_generate.yaml",
            "gpt_finetune_imdb.yaml", "gpt2_finetune_imdb.yaml"} <= {p.name for p in CONFIGS}


@pytest.mark.parametrize("config", CONFIGS, ids=lambda p: p.name)
def test_config_parses(config, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["fit", "--config", str(config), "--print_config"])
    assert exit_.value.code == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    source = yaml.safe_load(config.read_text())
    assert printed["model"]["class_path"] == source["model"]["class_path"]
    for section in ("model", "data"):  # every key the YAML sets survives parsing unchanged
        given = source[section].get("init_args", source[section]) if section == "model" else source[section]
        parsed = printed[section].get("init_args", printed[section]) if section == "model" else printed[section]
        assert {k: parsed[k] for k in given if k in parsed} == {k: v for k, v in given.items() if k in parsed}
