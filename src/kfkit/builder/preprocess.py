"""Preprocessors: turn what the user wrote into the files of a build context.

A notebook becomes one Python script: code cells only, with IPython's shell
escapes (``!pip install ...``) and magics (``%matplotlib``, ``%%bash`` cells)
removed, since plain Python cannot run them. A directory is taken as it is. Both
are checked before anything is written, so a notebook that does not parse or a
script with a syntax error fails here, with the cell that broke it.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from kfkit.errors import KfkitError

# Never copied into a build context from a directory.
IGNORED_NAMES = frozenset(
    {".git", ".ipynb_checkpoints", "__pycache__", ".venv", ".cache", ".mypy_cache"}
)


@dataclass
class BuildFiles:
    """What goes into a build context: file contents by their path inside it."""

    files: dict[str, bytes] = field(default_factory=dict)
    entrypoint: str | None = None  # the script the image runs, relative to the context

    @property
    def has_requirements(self) -> bool:
        return "requirements.txt" in self.files


def strip_magics(source: str) -> str:
    """The cell without IPython-only lines; a whole ``%%`` cell magic becomes empty."""
    if source.lstrip().startswith("%%"):
        return ""
    kept = [line for line in source.splitlines() if not line.lstrip().startswith(("!", "%"))]
    return "\n".join(kept)


def notebook_to_script(path: Path) -> str:
    """Convert a notebook to a Python script with nbconvert, dropping magics.

    Raises KfkitError when the notebook cannot be read, has no code, or a cell is
    not valid Python once its magics are gone.
    """
    import nbformat
    from nbconvert import PythonExporter

    try:
        notebook = nbformat.read(str(path), as_version=4)
    except FileNotFoundError:
        raise KfkitError(f"{path}: no such notebook") from None
    except Exception as error:  # nbformat raises many kinds for a damaged file
        raise KfkitError(f"{path}: not a readable notebook ({type(error).__name__})") from None
    code_cells = 0
    for index, cell in enumerate(notebook.cells):
        if cell.cell_type != "code":
            continue
        cell.source = strip_magics(cell.source)
        cell.outputs = []
        if not cell.source.strip():
            continue
        code_cells += 1
        try:
            compile(cell.source, f"{path.name} cell {index + 1}", "exec")
        except SyntaxError as error:
            raise KfkitError(
                f"{path}: cells[{index}]: not valid Python once magics are removed "
                f"(line {error.lineno}: {error.msg})"
            ) from None
    if code_cells == 0:
        raise KfkitError(f"{path}: the notebook has no code to run; nothing to build")
    exporter = PythonExporter()
    exporter.exclude_markdown = True
    exporter.exclude_raw = True
    exporter.exclude_input_prompt = True
    with warnings.catch_warnings():
        # nbconvert warns that IPython is needed for magics; they are already gone.
        warnings.simplefilter("ignore", UserWarning)
        script, _ = exporter.from_notebook_node(notebook)
    return str(script)


def _directory_files(source: Path) -> list[Path]:
    """The regular files under ``source`` that go into the context, sorted.

    A symbolic link whose target lies outside ``source`` is refused, as Docker
    refuses a path outside its build context: copying it would put a file the
    user never meant to publish (``~/.ssh/id_rsa``, say) into an image. Links
    inside the directory are copied as the files they point to; links to
    directories are not followed, so a loop cannot hang the walk.
    """
    root = Path(os.path.realpath(source))
    files: list[Path] = []
    for directory, subdirectories, names in os.walk(source):
        subdirectories[:] = sorted(d for d in subdirectories if d not in IGNORED_NAMES)
        for name in [*names, *subdirectories]:
            path = Path(directory, name)
            if path.is_symlink() and not Path(os.path.realpath(path)).is_relative_to(root):
                raise KfkitError(
                    f"{path}: a symbolic link to {os.readlink(path)}, outside {source}; "
                    "copy the file into the directory to build it in"
                )
        files += [Path(directory, name) for name in names if name not in IGNORED_NAMES]
    return sorted(path for path in files if path.is_file())


def preprocess(
    source: Path, requirements: Path | None = None, entrypoint: str | None = None
) -> BuildFiles:
    """The build context's files for a notebook or a directory, checked."""
    result = BuildFiles()
    if source.is_dir():
        for path in _directory_files(source):
            result.files[path.relative_to(source).as_posix()] = path.read_bytes()
        if not result.files:
            raise KfkitError(f"{source}: the directory is empty; nothing to build")
        if entrypoint is not None and entrypoint not in result.files:
            raise KfkitError(f"{source}: entrypoint {entrypoint!r} is not in the directory")
        result.entrypoint = entrypoint
    elif source.suffix == ".ipynb":
        script_name = f"{source.stem}.py"
        result.files[script_name] = notebook_to_script(source).encode("utf-8")
        result.entrypoint = script_name
    elif source.is_file() and source.suffix == ".py":
        result.files[source.name] = source.read_bytes()
        result.entrypoint = source.name
    elif not source.exists():
        raise KfkitError(f"{source}: no such notebook, script or directory")
    else:
        raise KfkitError(f"{source}: expected a notebook (.ipynb), a .py script or a directory")
    if requirements is not None:
        if not requirements.is_file():
            raise KfkitError(f"{requirements}: no such requirements file")
        result.files["requirements.txt"] = requirements.read_bytes()
    if "Dockerfile" in result.files:
        raise KfkitError(f"{source}: has its own Dockerfile; kfkit writes the Dockerfile itself")
    return result
