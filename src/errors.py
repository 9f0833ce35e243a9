"""Errors caused by the user's input: `python -m src` prints them as one line instead of a traceback."""

import argparse
import difflib


class UserError(Exception):
    """Bad input (a path, a column, a model name): the message names the problem and the fix. `python -m src` prints
    it as one line and exits with `exit_code`."""

    exit_code = 2


class Stopped(UserError):
    """The run was stopped from outside (SIGTERM) after saving what it needs to continue."""

    exit_code = 143  # 128 + SIGTERM, as if the signal had ended the process


class ArgumentParser(argparse.ArgumentParser):
    """argparse with no abbreviations (`--worker` must not pass for `--workers_per_device`) whose mistakes are a
    one-line `UserError` naming the nearest option, instead of a usage block and an exit."""

    def __init__(self, *args, **kwargs):
        self.options: list[str] = []  # argparse adds --help from its __init__
        super().__init__(*args, **{"allow_abbrev": False, **kwargs})

    def add_argument(self, *args, **kwargs) -> argparse.Action:
        action = super().add_argument(*args, **kwargs)
        self.options += action.option_strings
        return action

    def error(self, message: str):
        unknown = [w for w in message.partition(": ")[2].split() if w.startswith("--")] if message.startswith(
            "unrecognized arguments") else []
        near = difflib.get_close_matches(unknown[0].split("=")[0], self.options, 1) if unknown else []
        fix = f"did you mean {near[0]}? " if near else ""
        raise UserError(f"{message}; fix: {fix}see {self.prog} --help")


def reason(err: BaseException) -> str:
    """`Type: first line of its message`, cut to 160 characters: what a one-line error quotes of its cause."""
    lines = str(err).splitlines()
    return f"{type(err).__name__}: {lines[0][:160]}" if lines else type(err).__name__


def check_ranges(prefix: str, *checks: tuple[str, object, bool, str]) -> None:
    """A `UserError` for the first `(name, value, allowed, fix)` whose value is not allowed, naming the option as the
    command line spells it (`{prefix}.{name}`, or `name` without a prefix) and the range that fixes it. Out of range,
    a setting would otherwise fail deep in a library with a traceback, or run and do something else (train on
    nothing, ignore it)."""
    for name, value, allowed, fix in checks:
        if not allowed:
            option = f"{prefix}.{name}" if prefix else name
            raise UserError(f"{option} is {value}; fix: --{option} {fix}")
