"""Where the ``kfkit`` command writes, and in which form.

Results (tables, objects, names, "created") go to stdout so a script can read
them; diagnostics (progress, warnings, errors) go to stderr. Whether stdout is a
terminal is rich's decision (``Console.is_terminal``, which also honours
``FORCE_COLOR``/``TTY_COMPATIBLE``): on a terminal tables are rich tables;
anywhere else they are plain columns, never truncated nor wrapped, and with no
colour, as ``kubectl get`` prints them into a pipe.
"""

from __future__ import annotations

import io
import json
import sys
from collections.abc import Iterable, Sequence
from typing import Any

import yaml
from rich import box
from rich.console import Console, RenderableType
from rich.table import Table
from rich.text import Text

from kfkit.backends.base import JobRecord

# kubectl's spelling of each kind's resource, used by ``-o name`` and messages.
RESOURCE_NAMES = {"PyTorchJob": "pytorchjob.kubeflow.org", "TFJob": "tfjob.kubeflow.org"}

PHASE_STYLES = {
    "Succeeded": "green",
    "Failed": "red",
    "Running": "cyan",
    "Restarting": "yellow",
    "Created": "blue",
    "Pending": "dim",
}

# Wide enough that rich never wraps or cuts a cell when it renders for a pipe.
_UNLIMITED_WIDTH = 1_000_000


def stdout_console() -> Console:
    """A console on the current ``sys.stdout`` (made per call: tests swap the stream)."""
    return Console(file=sys.stdout, soft_wrap=True, highlight=False)


def stderr_console() -> Console:
    return Console(file=sys.stderr, soft_wrap=True, highlight=False)


def stdout_is_terminal() -> bool:
    return stdout_console().is_terminal


def stderr_is_terminal() -> bool:
    return stderr_console().is_terminal


def result(line: str) -> None:
    """One line of a command's result, on stdout, exactly as given."""
    print(line, file=sys.stdout, flush=True)


def note(line: str) -> None:
    """One diagnostic line on stderr, exactly as given (no markup, no wrapping)."""
    print(line, file=sys.stderr, flush=True)


def phase_text(phase: str) -> Text:
    return Text(phase, style=PHASE_STYLES.get(phase, ""))


def resource_name(record: JobRecord) -> str:
    """``pytorchjob.kubeflow.org/NAME``, as ``kubectl ... -o name`` prints it."""
    return f"{RESOURCE_NAMES.get(record.job.kind, record.job.kind.lower())}/{record.job.name}"


def plain(renderable: RenderableType) -> str:
    """``renderable`` as uncoloured text of any width, without trailing blanks."""
    buffer = io.StringIO()
    Console(file=buffer, width=_UNLIMITED_WIDTH, color_system=None, force_terminal=False).print(
        renderable
    )
    return "\n".join(line.rstrip() for line in buffer.getvalue().splitlines())


def table(
    columns: Sequence[str],
    rows: Iterable[Sequence[str | Text]],
    title: str | Text | None = None,
    boxed: bool = False,
    header: bool = True,
) -> None:
    """Print rows under ``columns`` on stdout: a rich table on a terminal, plain columns
    (three spaces apart, like kubectl) anywhere else."""
    console = stdout_console()
    terminal = console.is_terminal
    grid = Table(
        title=title if terminal else None,
        title_justify="left",
        box=box.HEAVY_HEAD if boxed and terminal else None,
        pad_edge=boxed and terminal,
        padding=(0, 1) if terminal else (0, 3, 0, 0),
        show_edge=boxed and terminal,
        show_header=header,
    )
    for column in columns:
        grid.add_column(column, no_wrap=not terminal, overflow="fold")
    for row in rows:
        grid.add_row(*row)
    if terminal:
        console.print(grid)
        return
    if title is not None:
        result(str(title))
    result(plain(grid))


def job_object(record: JobRecord) -> dict[str, Any]:
    """The job as ``kubectl get <kind> NAME -o json`` shows it: manifest plus ``.status``."""
    obj = dict(record.job.manifest)
    obj["status"] = record.status.raw
    return obj


def print_objects(records: list[JobRecord], fmt: str, single: bool) -> None:
    """``-o json|yaml``: one object for ``get KIND NAME``, else a ``v1 List`` of them."""
    data: dict[str, Any]
    if single and len(records) == 1:
        data = job_object(records[0])
    else:
        data = {
            "apiVersion": "v1",
            "kind": "List",
            "items": [job_object(r) for r in records],
            "metadata": {"resourceVersion": ""},
        }
    if fmt == "json":
        sys.stdout.write(json.dumps(data, indent=4) + "\n")
    else:
        sys.stdout.write(yaml.safe_dump(data, sort_keys=False))
    sys.stdout.flush()
