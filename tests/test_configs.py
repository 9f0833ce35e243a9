"""Every config in configs/ parses with the CLI (nothing is downloaded: --print_config instantiates nothing)."""

from pathlib import Path

import pytest
import yaml

from src.cli import main

CONFIGS = sorted(Path("configs").glob("*.yaml"))


def test_there_are_configs():
    assert {"bert_imdb.yaml", "bert_base_imdb.yaml", "gpt_zeroshot_imdb.yaml", "gpt_generate.yaml",
            "gpt_finetune_imdb.yaml", "gpt2_finetune_imdb.yaml", "mlm_imdb.yaml", "mlm_scratch_imdb.yaml",
            "bert_imdb_adapted.yaml"} <= {p.name for p in CONFIGS}


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


STRATEGIES = sorted(Path("configs/strategies").glob("*.yaml"))


@pytest.mark.parametrize("overlay", STRATEGIES, ids=lambda p: p.name)
def test_strategy_overlays_parse_on_top_of_a_recipe(overlay, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["fit", "--config", "configs/bert_imdb.yaml", "--config", str(overlay), "--print_config"])
    assert exit_.value.code == 0
    trainer = yaml.safe_load(capsys.readouterr().out)["trainer"]
    wanted = yaml.safe_load(overlay.read_text())["trainer"]
    strategy = trainer["strategy"]
    assert strategy == wanted["strategy"] or strategy["class_path"] == wanted["strategy"]["class_path"]
    assert {k: trainer[k] for k in wanted if k != "strategy"} == {k: v for k, v in wanted.items() if k != "strategy"}
    assert trainer["precision"] == "bf16-mixed"  # GPUs keep bf16 (the CPU fallback applies only on CPUs)


def test_there_are_strategy_overlays():
    assert {"ddp.yaml", "fsdp.yaml", "deepspeed.yaml", "multinode.yaml"} <= {p.name for p in STRATEGIES}
