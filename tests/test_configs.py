"""Every config in configs/ parses with the CLI as its own "To run:" line runs it (nothing is downloaded:
--print_config instantiates nothing), and every value it sets survives parsing."""

import re
import shlex
from pathlib import Path

import pytest
import yaml

from tests.conftest import entry

RECIPES = sorted(Path("configs").glob("*.yaml"))
# strategies/, variants of a recipe (bert_imdb/) and the studies' recipes; a study file itself is parsed in test_study,
# the prompt grid in test_prompts
OVERLAYS = sorted(p for p in Path("configs").glob("*/*.yaml")
                  if not any(f"python -m src {runner} " in p.read_text() for runner in ("study", "prompts")))


def run_line(config: Path) -> list[str]:
    """The arguments after `python -m src` on the config's "To run:" line."""
    (line,) = [line for line in config.read_text().splitlines() if line.startswith("# To run:")][:1]
    args = shlex.split(line.split("To run:", 1)[1].split("  (")[0])  # without a trailing "  (remark)"
    return args[args.index("src") + 1 :]


def assert_subset(given, printed, where: str) -> None:
    if isinstance(given, dict):
        assert isinstance(printed, dict), where
        for key, value in given.items():
            if key.endswith("+"):  # appended to the recipe's list: the printed list ends with it
                key, printed_value = key[:-1], printed.get(key[:-1]) or []
                assert_subset(value, printed_value[len(printed_value) - len(value):], f"{where}.{key}+")
                continue
            assert key in printed, f"{where}.{key} was dropped"
            assert_subset(value, printed[key], f"{where}.{key}")
    elif isinstance(given, list) and given and isinstance(given[0], dict):
        assert len(given) == len(printed), where
        for i, (a, b) in enumerate(zip(given, printed)):
            assert_subset(a, b, f"{where}[{i}]")
    else:
        assert printed == given, where


def test_there_are_configs():
    assert {"bert_imdb.yaml", "gpt_zeroshot_imdb.yaml", "gpt_generate.yaml", "gpt_finetune_imdb.yaml",
            "gpt2_finetune_imdb.yaml", "mlm_imdb.yaml", "mlm_scratch_imdb.yaml"} <= {p.name for p in RECIPES}
    assert {"strategies/ddp.yaml", "strategies/fsdp.yaml", "strategies/deepspeed.yaml", "strategies/multinode.yaml",
            "bert_imdb/45min.yaml", "bert_imdb/adapted.yaml", "bert_imdb/bert_base.yaml"} <= {
        str(p.relative_to("configs")) for p in OVERLAYS}


@pytest.mark.parametrize("config", RECIPES + OVERLAYS, ids=lambda p: str(p.relative_to("configs")))
def test_config_parses_as_its_run_line_runs_it(config, capsys):
    args = run_line(config)
    configs = [Path(args[i + 1]) for i, a in enumerate(args) if a == "--config"]
    assert configs[-1] == config  # the config itself comes last: its values win
    with pytest.raises(SystemExit) as exit_:
        entry([*args, "--print_config"])
    assert exit_.value.code == 0, capsys.readouterr().err
    printed = yaml.safe_load(capsys.readouterr().out)
    given = yaml.safe_load(config.read_text())
    assert_subset(given, printed, config.name)
    assert printed["model"]["class_path"].startswith("src.models.")
    assert printed["data"]["class_path"].startswith("src.data.")


def test_a_classifier_recipe_shows_only_classification_data_arguments(capsys):
    with pytest.raises(SystemExit):
        entry(["fit", "--config", "configs/bert_imdb.yaml", "--print_config"])
    data = yaml.safe_load(capsys.readouterr().out)["data"]["init_args"]
    assert {"max_length", "truncation", "prompt_template", "num_labels", "source", "batch_size"} <= set(data)
    assert not {"mlm_probability", "label_prefixes", "chat_template", "block_size", "task"} & set(data)


def test_strategy_overlays_keep_bf16_on_gpus(capsys):
    for overlay in Path("configs/strategies").glob("*.yaml"):
        with pytest.raises(SystemExit):
            entry(["fit", "--config", "configs/bert_imdb.yaml", "--config", str(overlay), "--print_config"])
        assert yaml.safe_load(capsys.readouterr().out)["trainer"]["precision"] == "bf16-mixed"


def test_every_config_says_how_to_run_it():
    for config in RECIPES + OVERLAYS:
        assert re.search(r"^# To run: (python -m src|torchrun|srun)", config.read_text(), re.M), config
