"""Errors caused by the user's input: the CLI prints them as one line instead of a traceback."""


class UserError(Exception):
    """Bad input (a path, a column, a model name): the message names the problem and the fix."""
