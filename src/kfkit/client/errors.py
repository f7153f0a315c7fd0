"""The client's errors: kfkit's one-line errors that are also the SDK's exception types.

The training SDK raises ``ValueError`` for bad arguments, ``RuntimeError`` when
a request fails or a job fails, ``TimeoutError`` when a deadline passes and
documents nothing else; code written for it catches those. Each error here is
both a :class:`~kfkit.errors.KfkitError` (one line, what to fix; the CLI exit
code 2) and the built-in exception the SDK raises in the same place, so either
kind of ``except`` catches it.
"""

from __future__ import annotations

from kfkit.backends.base import FAILED, JobRecord
from kfkit.errors import KfkitError, NotFoundError, ValidationError


class ClientValueError(KfkitError, ValueError):
    """An argument the SDK rejects with ``ValueError`` (or kfkit cannot honour)."""


class ClientRuntimeError(KfkitError, RuntimeError):
    """A request failed (the SDK's ``RuntimeError("Failed to <verb> <kind>: ...")``)."""


class ClientTimeoutError(KfkitError, TimeoutError):
    """A request or a wait ran past its deadline."""


class JobNotFoundError(NotFoundError, RuntimeError):
    """The job does not exist (the SDK reports the API server's 404 as ``RuntimeError``)."""


class JobRejectedError(ValidationError, RuntimeError):
    """The job was refused before anything was created, one line per problem.

    On a cluster the operator's webhook (or the API server's schema) refuses
    it and the SDK raises ``RuntimeError``; kfkit checks the same rules first.
    """


class JobFailedError(KfkitError, RuntimeError):
    """The job reached Failed while something else was awaited; ``record`` is its state."""

    def __init__(self, record: JobRecord) -> None:
        condition = record.status.condition(FAILED) or {}
        reason = condition.get("reason") or "Failed"
        message = condition.get("message") or ""
        super().__init__(f"{record.job.describe()} failed: {reason}: {message}".rstrip(": "))
        self.record = record

    def lines(self) -> list[str]:
        """The one-line summary, then the job's warning events (why it failed)."""
        events = [e for e in self.record.events if e.get("type") == "Warning"]
        return [self.message] + [
            f"  {e.get('time', '')} {e.get('object', '')} {e.get('reason', '')}: "
            f"{e.get('message', '')}"
            for e in events
        ]


class TrainNotSupportedError(KfkitError, NotImplementedError):
    """``train`` (LLM fine-tuning) is outside what kfkit runs."""
