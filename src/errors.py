"""Errors caused by the user's input: the CLI prints them as one line instead of a traceback."""


class UserError(Exception):
    """Bad input (a path, a column, a model name): the message names the problem and the fix."""


def reason(err: BaseException) -> str:
    """`Type: first line of its message`, cut to 160 characters: what a one-line error quotes of its cause."""
    lines = str(err).splitlines()
    return f"{type(err).__name__}: {lines[0][:160]}" if lines else type(err).__name__


def at_least(option: str, value: float | None, low: float) -> None:
    """A `UserError` when `option` (as the CLI spells it) is set below `low`: a count of 0 or less would otherwise fail
    deep in a library with a traceback, or run and train on nothing."""
    if value is not None and value < low:
        raise UserError(f"{option} is {value}; fix: --{option} {low} or more")
