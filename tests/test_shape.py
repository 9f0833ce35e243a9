"""The shape of the code, checkable from the tree: modules use each other's public names only, the study runner
never branches on an approach kind, benchmarks take data selection from src/data/, one entry table lists every
command."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import entry

MODULES = sorted([*Path("src").rglob("*.py"), *Path("benchmarks").glob("*.py")])


def imported_private_names(path: Path) -> list[str]:
    """`from src.x import _name`, and `alias._name` where `alias` is an imported module of this project."""
    tree = ast.parse(path.read_text())
    found, aliases = [], set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(("src", "benchmarks")):
            found += [f"{node.module}.{a.name}" for a in node.names if a.name.startswith("_")]
            aliases |= {a.asname or a.name for a in node.names}  # `from src import study as st` binds a module
        if isinstance(node, ast.Import):
            aliases |= {a.asname or a.name for a in node.names if a.name.startswith("src")}
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in aliases \
                and node.attr.startswith("_") and not node.attr.startswith("__"):
            found.append(f"{node.value.id}.{node.attr}")
    return found


@pytest.mark.parametrize("path", MODULES, ids=str)
def test_no_module_reaches_into_another_modules_underscore_names(path):
    assert imported_private_names(path) == []


def test_the_check_finds_a_private_import(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("from src.cli import _resume_last\nfrom src import study as st\nst._RunOutput()\n")
    assert imported_private_names(bad) == ["src.cli._resume_last", "st._RunOutput"]


def test_the_runner_never_branches_on_an_approach_kind():
    from src.studies.kinds import KINDS

    for module in ("runner", "run", "report"):
        source = Path(f"src/studies/{module}.py").read_text()
        for name, cls in KINDS.items():
            assert f'"{name}"' not in source and cls.__name__ not in source, (module, name)
        assert ".kind" not in source, module


def test_benchmarks_take_data_selection_from_src_data_not_from_the_study_code():
    for path in Path("benchmarks").glob("*.py"):
        tree = ast.parse(path.read_text())
        modules = [n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
        modules += [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
        assert not [m for m in modules if m and m.startswith("src.stud")], path


def test_python_m_src_help_lists_every_command_and_a_bad_one_is_one_line(capsys):
    from src.commands import COMMANDS
    from tests.conftest import entry

    shown = subprocess.run([sys.executable, "-m", "src", "--help"], capture_output=True, text=True, timeout=120)
    assert shown.returncode == 0  # the module runs as a program (the rest of the test calls its entry in-process)
    for name in ("fit", "validate", "test", "predict", "serve", "study", "prompts", "plot"):
        assert f"\n  {name} " in shown.stdout and name in COMMANDS
    for argv, said in (([], "no command given"), (["studdy"], "unknown command 'studdy'"),
                       (["study", "report", "--config", "nowhere.yaml"],
                        "study file nowhere.yaml does not exist; fix: pass one of configs/studies/*.yaml")):
        with pytest.raises(SystemExit) as exit_:
            entry(argv)
        err = capsys.readouterr().err
        assert exit_.value.code == 2 and err.count("\n") == 1 and err.startswith(f"error: {said}"), (argv, err)
    # serve checks the run in a child process of its own (it keeps torch out of the server): a process here too
    serve = subprocess.run([sys.executable, "-m", "src", "serve", "nowhere"], capture_output=True, text=True,
                           timeout=120)
    assert serve.returncode == 2 and serve.stderr.count("\n") == 1
    assert serve.stderr.startswith("error: nowhere is neither a checkpoint")


@pytest.mark.parametrize("command", ["fit", "validate", "test", "predict", "serve", "study", "prompts"])
def test_every_entry_point_answers_bad_input_with_one_line_and_exit_code_2(command, capsys):
    from src.commands import COMMANDS

    bad = {"serve": ["serve", "no/such/run"], "study": ["study", "run", "--config", "no/such.yaml"],
           "prompts": ["prompts", "run", "--config", "no/such.yaml"]}
    bad = bad.get(command, [command, "--config", "no/such.yaml"])
    assert command in COMMANDS
    with pytest.raises(SystemExit) as exit_:
        entry(bad)
    err = capsys.readouterr().err.strip().splitlines()
    assert exit_.value.code == 2 and err[-1].startswith("error: ") and "no/such" in err[-1]
    assert not any("Traceback" in line for line in err)


def test_only_the_entry_point_turns_errors_into_exits():
    """Library code raises (a `UserError` for bad input); `src/__main__.py` alone exits, and nothing imports it: a
    study calls `src.commands.run` for its in-process runs, so errors come back as objects."""
    for path in Path("src").rglob("*.py"):
        if path == Path("src/__main__.py"):
            continue
        tree = ast.parse(path.read_text())
        modules = [n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
        modules += [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
        assert "src.__main__" not in modules, path
        calls = [ast.unparse(n.func) for n in ast.walk(tree) if isinstance(n, ast.Call)]
        assert not [c for c in calls if c in ("sys.exit", "exit", "SystemExit", "os._exit")], path


def test_a_missing_data_folder_is_refused_alone_before_torch_is_imported():
    """The error comes alone (nothing printed before it) and the process never imports torch or builds the model."""
    probe = ("import sys, runpy; sys.argv = ['src', 'fit', '--config', 'configs/bert_imdb.yaml', '--data.source', "
             "'/no/such/folder']\ntry:\n    runpy.run_module('src', run_name='__main__')\nexcept SystemExit as e:\n"
             "    print('torch' in sys.modules, e.code)")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert done.stdout.split() == ["False", "2"], done.stdout
    assert done.stderr == ("error: data folder '/no/such/folder' not found: fix data.source (a folder, or a hub id "
                           "such as stanfordnlp/imdb)\n")
