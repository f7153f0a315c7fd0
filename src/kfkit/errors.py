"""Errors a user can cause.

Every error a user can fix (a bad manifest, a missing file, a wrong flag) is a
``KfkitError`` carrying one line per problem, in the form
``FILE: field.path: what is wrong``. The CLI prints the lines to stderr and
exits with status 2; anything that is not a ``KfkitError`` is a bug in kfkit and
keeps its traceback.
"""

from __future__ import annotations

from collections.abc import Iterable


class KfkitError(Exception):
    """A problem the user can fix; ``str(error)`` is safe to show as-is."""

    exit_code = 2

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def lines(self) -> list[str]:
        """The lines to print, one per problem."""
        return [self.message]


class ValidationError(KfkitError):
    """One or more problems found while validating input; nothing was started."""

    def __init__(self, problems: Iterable[str]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))

    def lines(self) -> list[str]:
        return list(self.problems)


class NotFoundError(KfkitError):
    """A named object (job, replica, file) does not exist."""


class AlreadyExistsError(KfkitError):
    """A job of that name exists (finished or not); it is never replaced silently."""


class WaitTimeoutError(KfkitError, TimeoutError):
    """A wait ran out of time while the job was still going: it keeps running.

    Exit status 3, apart from bad input (2) and a failed job (1), so a script can
    tell "still running" from "wrong" and "failed".
    """

    exit_code = 3
