"""Ctrl-C during a radish run: stop the step in progress, skip the rest, keep the report.

radish aborts on ``KeyboardInterrupt`` without writing its cucumber JSON, so a
run stopped by the user would leave no report and, worse, the job of the
running step alive. Inside radish, the first SIGINT (which ``kfkit verify``
forwards) instead raises :class:`Interrupted` in the running step: the step
fails with that message, the scenario's ``after`` hook removes its jobs, every
later step is skipped, and radish writes its report as after any run. A second
SIGINT is a plain ``KeyboardInterrupt``.
"""

from __future__ import annotations

import signal
from typing import Any

MESSAGE = "interrupted by the user (Ctrl-C)"


class Interrupted(Exception):
    """The user interrupted the verification run."""


_interrupted = False


def interrupted() -> bool:
    return _interrupted


def _on_sigint(signum: int, frame: object) -> None:
    global _interrupted
    if _interrupted:
        raise KeyboardInterrupt
    _interrupted = True
    raise Interrupted(MESSAGE)


def install() -> None:
    """Handle SIGINT as above (in radish's process, from the stepfile)."""
    signal.signal(signal.SIGINT, _on_sigint)


def _skipped(step: Any, *args: Any, **kwargs: Any) -> None:
    step.skip()


def skip_if_interrupted(step: Any) -> None:
    """A ``before.each_step`` hook: once interrupted, a step is skipped, not run."""
    if _interrupted:
        step.definition_func = _skipped
