"""Errors caused by the user's input: the CLI prints them as one line instead of a traceback."""


class UserError(Exception):
    """Bad input (a path, a column, a model name): the message names the problem and the fix."""


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
