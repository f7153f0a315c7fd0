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
