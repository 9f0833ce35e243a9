"""Every `python -m src` command in the README and docs/ parses as written (dry run: `--print_config` instantiates
nothing)."""

import re
import shlex
from pathlib import Path

import pytest
import yaml

from tests.conftest import entry

DOCS = [Path("README.md"), *sorted(Path("docs").glob("*.md"))]


def readme_commands(docs: list[Path] = DOCS) -> list[str]:
    blocks = [b for doc in docs for b in re.findall(r"```bash\n(.*?)```", doc.read_text(), flags=re.S)]
    lines = [line.strip() for block in blocks for line in block.splitlines()]
    # `python -m src ...`, not `make fit  # ... -m src`
    return [line for line in lines if "src" in shlex.split(line, comments=True)]


def test_the_readme_has_commands_for_every_task():
    text = " ".join(readme_commands([Path("README.md")]))
    for config in ("bert_imdb", "gpt_generate", "gpt_zeroshot_imdb", "gpt_finetune_imdb", "mlm_imdb",
                   "bert_imdb/adapted", "mlm_scratch_imdb", "strategies/ddp"):
        assert f"configs/{config}.yaml" in text, config
    for sub in ("fit", "validate", "test", "predict", "serve"):
        assert f"-m src {sub} " in text, sub


@pytest.mark.parametrize("command", readme_commands())
def test_readme_command_parses(command, capsys):
    args = shlex.split(command, comments=True)
    args = args[args.index("src") + 1 :]
    if args[0] == "study":  # the study runner: its parser accepts the line and the study file loads
        from src.studies.main import study_arguments
        from src.studies.schema import load_study

        parsed = study_arguments().parse_args(args[1:])
        assert parsed.k > 0 if parsed.command == "demonstrations" else load_study(parsed.config).approaches
        return
    if args[0] == "prompts":  # the prompt grid: likewise
        from src.studies.main import prompts_arguments
        from src.studies.prompts import load_grid

        assert load_grid(prompts_arguments().parse_args(args[1:]).config)[1].approaches
        return
    if args[0] == "serve":  # not a LightningCLI subcommand: its own parser must accept the line
        from src.serve import arguments

        assert arguments().parse_args(args[1:]).run
        return
    if args in (["--help"], [args[0], "--help"]) or "--print_config" in args:
        args = [a for a in args if a != "--print_config"]
        if args == ["--help"]:  # python -m src --help: the commands
            entry(args)
            assert "commands:" in capsys.readouterr().out
            return
        if "--help" in args:
            with pytest.raises(SystemExit) as exit_:
                entry(args)
            assert exit_.value.code == 0
            return
    with pytest.raises(SystemExit) as exit_:
        entry([*args, "--print_config"])
    assert exit_.value.code == 0, capsys.readouterr().err
    assert "model" in yaml.safe_load(capsys.readouterr().out)
