"""Compile, run locally, or submit the verification pipeline (pipelines/verify_pipeline.py).

The pipeline's definition lives beside the feature files, where Kubeflow users
look for it, and is loaded from there by path. A local run uses kfp.local's
SubprocessRunner with the current interpreter (``use_venv=False``): every
component is a lightweight Python component that imports kfkit, so no Docker
and no cluster are needed, and the run's reports are copied to one directory.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import re
import shutil
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, TextIO

from rich.text import Text

from kfkit.errors import KfkitError
from kfkit.report import (
    CUCUMBER_JSON,
    HTML_REPORT,
    JUNIT_XML,
    RESULTS_JSON,
    Summary,
    load,
    summarize,
)

PIPELINE_FILE = Path("pipelines") / "verify_pipeline.py"
COMPILED_NAME = PIPELINE_FILE.with_suffix(".yaml")
PIPELINE_NAME = "kfkit-verify"
# merge-reports' output artifacts and the file names they get in the report directory.
MERGED_OUTPUTS = {
    "html_report": HTML_REPORT,
    "junit_xml": JUNIT_XML,
    "cucumber_json": CUCUMBER_JSON,
    "results_json": RESULTS_JSON,
    "summary": "summary.md",
}


def load_pipeline_module(suite_dir: Path) -> ModuleType:
    """Import pipelines/verify_pipeline.py of the suite as a module."""
    path = suite_dir / PIPELINE_FILE
    if not path.is_file():
        raise KfkitError(f"{path}: no such file (is {suite_dir} a kfkit checkout?)")
    spec = importlib.util.spec_from_file_location("kfkit_verify_pipeline", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def compile_pipeline(suite_dir: Path, output: Path | None = None) -> Path:
    module = load_pipeline_module(suite_dir)
    return Path(module.compile_pipeline(output or module.COMPILED))


def arguments(
    tags: str, target: str, suite_dir: Path | str | None, groups: list[str] | None
) -> dict[str, Any]:
    """The pipeline's parameters; the ones left out keep their compiled defaults."""
    values: dict[str, Any] = {"tags": tags, "target": target}
    if suite_dir is not None:
        values["suite_dir"] = str(suite_dir)
    if groups:
        values["groups"] = list(groups)
    return values


@dataclass
class LocalRun:
    """A finished local pipeline run: whether it succeeded, and its merged reports."""

    succeeded: bool
    run_dir: Path
    report_dir: Path
    summary: Summary


# kfp.local's lines that say how the run goes; the rest (INFO, streamed task logs) is detail.
_PROGRESS_LINE = re.compile(r"Executing task|finished with status|Running pipeline")


class KfpLog(io.TextIOBase):
    """Where kfp.local's output goes off a terminal: all of it, uncoloured, to a log
    file, and only its one-line task progress to ``echo``."""

    def __init__(self, log: TextIO, echo: TextIO) -> None:
        self.log, self.echo, self._partial = log, echo, ""

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        *lines, self._partial = (self._partial + text).split("\n")
        for line in lines:
            plain = Text.from_ansi(line).plain  # kfp.local colours names and statuses
            self.log.write(plain + "\n")
            if _PROGRESS_LINE.search(plain):
                self.echo.write(plain.split(" - INFO - ")[-1].strip() + "\n")
                self.echo.flush()
        return len(text)

    def flush(self) -> None:
        self.log.flush()


def _latest_run_dir(pipeline_root: Path, before: set[Path]) -> Path:
    runs = [p for p in pipeline_root.glob(f"{PIPELINE_NAME}-*") if p not in before]
    if not runs:
        raise KfkitError(f"{pipeline_root}: the pipeline run left no outputs")
    return max(runs, key=lambda p: p.stat().st_mtime)


def run_local(
    suite_dir: Path,
    tags: str = "fast",
    groups: list[str] | None = None,
    pipeline_root: Path = Path("reports/pipeline-root"),
    report_dir: Path = Path("reports/pipeline"),
    log_file: Path | None = None,
) -> LocalRun:
    """Run the pipeline with kfp.local (SubprocessRunner, this interpreter); copy its reports.

    With ``log_file`` kfp.local's output (hundreds of lines, coloured) goes there
    and only its task progress lines to stderr, for CI logs and pipes.
    """
    from kfp import local

    module = load_pipeline_module(suite_dir)
    pipeline_root = pipeline_root.resolve()
    pipeline_root.mkdir(parents=True, exist_ok=True)
    before = set(pipeline_root.glob(f"{PIPELINE_NAME}-*"))
    local.init(
        runner=local.SubprocessRunner(use_venv=False),
        pipeline_root=str(pipeline_root),
        raise_on_error=True,
    )
    succeeded = True
    with warnings.catch_warnings(), contextlib.ExitStack() as stack:
        # The components name the kit image, which a subprocess run does not use.
        warnings.filterwarnings("ignore", message=".*non-Python base image.*")
        if log_file is not None:
            log = stack.enter_context(log_file.open("w", encoding="utf-8"))
            stack.enter_context(contextlib.redirect_stdout(KfpLog(log, sys.stderr)))
        try:
            module.verify_pipeline(**arguments(tags, "local", suite_dir, groups))
        except RuntimeError as error:
            # kfp.local reports a failed task (check-verdict when a scenario failed) this way.
            print(f"pipeline failed: {Text.from_ansi(str(error)).plain}", file=sys.stderr)
            succeeded = False
    run_dir = _latest_run_dir(pipeline_root, before)
    merged = run_dir / "merge-reports"
    if not merged.is_dir():
        raise KfkitError(f"{run_dir}: the pipeline failed before merging its reports")
    report_dir.mkdir(parents=True, exist_ok=True)
    for output, name in MERGED_OUTPUTS.items():
        shutil.copyfile(merged / output, report_dir / name)
    summary = summarize(load(report_dir / CUCUMBER_JSON))
    return LocalRun(succeeded and summary.ok, run_dir, report_dir.resolve(), summary)


def submit(
    host: str,
    tags: str,
    target: str,
    suite_dir: str | None,
    groups: list[str] | None,
    experiment: str | None,
    namespace: str | None,
    package: Path,
) -> str:
    """Submit the compiled pipeline to Kubeflow Pipelines at ``host``; return the run id."""
    import kfp

    if not package.is_file():
        raise KfkitError(f"{package}: no compiled pipeline (run `kfkit pipeline compile`)")
    try:
        with warnings.catch_warnings():
            # "This client only works with Kubeflow Pipeline v2.0.0-beta.2 and later": noted
            # in docs/verification.md, not worth a warning on every submit.
            warnings.simplefilter("ignore", FutureWarning)
            client = kfp.Client(host=host, namespace=namespace)
        run = client.create_run_from_pipeline_package(
            str(package),
            arguments=arguments(tags, target, suite_dir, groups),
            experiment_name=experiment,
            namespace=namespace,
        )
    except Exception as error:  # the client raises many kinds; each is one line for the user
        message = " ".join(str(error).split())[:300]
        raise KfkitError(f"--host {host}: cannot submit the pipeline: {message}") from None
    return str(run.run_id)
