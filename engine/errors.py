"""Errors the engine raises for bad user input.

Every validation failure raises :class:`InputError` with a one-line message that names the
problem (which file, which field, what was expected). Callers (CLI, studio) show the message
as it is; nothing is written or changed when it is raised.
"""


class InputError(ValueError):
    """A user-supplied file or value is unusable; the message says why in one line."""


class WeightsMissingError(FileNotFoundError):
    """Model weights are not where we looked; the message says what to download and where."""


class Cancelled(RuntimeError):
    """Long work was cancelled by the caller between steps."""


class OutputError(InputError):
    """An output cannot be written whole (a full disk, a read-only folder, a failed encoder); the one-line
    message names the file ("disk full while writing <file>") and nothing partial is left under its name.

    A subclass of InputError so that every caller which shows input errors in one line (the CLI's ``error:``,
    the studio's toast) shows these too.
    """
