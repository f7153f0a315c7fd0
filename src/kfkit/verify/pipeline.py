"""Compile, run locally, or submit the verification pipeline (pipelines/verify_pipeline.py).

The pipeline's definition lives beside the feature files, where Kubeflow users
look for it, and is loaded from there by path. A local run uses kfp.local with one
of two runners:

- ``subprocess`` (the default): the SubprocessRunner with the current interpreter
  (``use_venv=False``). Every component is a lightweight Python component that
  imports kfkit, so no container runtime and no cluster are needed; the merged
  reports are copied to one directory.
- ``container``: the DockerRunner, every component in the image the compiled IR
  names (the kit image, built by ``make images``), through podman's Docker-compatible
  API (:mod:`kfkit.verify.docker_api`, :mod:`kfkit.verify.pipeline_containers`).
  The reports are written from the merged cucumber JSON with each component's image
  and, for a component that failed, its log tail.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import logging
import os
import re
import shutil
import signal
import sys
import tempfile
import threading
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, TextIO

from rich.text import Text

from kfkit.errors import KfkitError
from kfkit.report import (
    CUCUMBER_JSON,
    HTML_REPORT,
    JUNIT_XML,
    RESULTS_JSON,
    Feature,
    Summary,
    collect_environment,
    load,
    merge,
    summarize,
    write_reports,
)

if TYPE_CHECKING:
    from kfkit.verify.pipeline_containers import ContainerRun

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


RUNNERS = ("subprocess", "container")
# Where, in the kit image, the local backend finds what a cluster would mount into the pod.
IMAGE_HELM = "/opt/kfkit/bin/helm"
IMAGE_MNIST = "/tmp/.cache/kfkit/mnist"
COMPONENTS_RECORD = "components.json"


def summary_markdown(counts: Summary) -> str:
    """The Markdown summary the KFP UI shows (and summary.md in the report directory)."""
    lines = ["| | total | passed | failed | skipped |", "|---|---|---|---|---|"]
    for kind in ("features", "scenarios", "steps"):
        c = getattr(counts, kind)
        lines.append(f"| {kind} | {c.total} | {c.passed} | {c.failed} | {c.skipped} |")
    return "# kfkit verify\n\n" + "\n".join(lines) + "\n"


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


def _run_pipeline(call: Callable[[], None]) -> bool:
    """Run the pipeline function; False when kfp.local reports a failed task."""
    with warnings.catch_warnings():
        # The components name the kit image, which a subprocess run does not use.
        warnings.filterwarnings("ignore", message=".*non-Python base image.*")
        try:
            call()
        except RuntimeError as error:
            # kfp.local reports a failed task (check-verdict when a scenario failed) this way.
            print(f"pipeline failed: {Text.from_ansi(str(error)).plain}", file=sys.stderr)
            return False
    return True


@contextlib.contextmanager
def _kfp_output(log_file: Path | None) -> Iterator[None]:
    """With ``log_file``, kfp.local's output goes there and its progress lines to stderr."""
    if log_file is None:
        yield
        return
    kfp_log_stream = None
    try:
        with log_file.open("w", encoding="utf-8") as log:
            kfp_log_stream = KfpLog(log, sys.stderr)
            with contextlib.redirect_stdout(kfp_log_stream):
                yield
    finally:
        _drop_handlers_writing_to(kfp_log_stream)


def _drop_handlers_writing_to(stream: object) -> None:
    """Remove root-logger handlers left pointing at ``stream``.

    kfp.local swaps the root logger's handlers around each task and restores
    what it saw at the start; tasks running in parallel can restore one another's
    handler, which would outlive the run and write to its closed log file.
    """
    root = logging.getLogger()
    for handler in root.handlers[:]:
        if stream is not None and getattr(handler, "stream", None) is stream:
            root.removeHandler(handler)


def run_local(
    suite_dir: Path,
    tags: str = "fast",
    groups: list[str] | None = None,
    pipeline_root: Path = Path("reports/pipeline-root"),
    report_dir: Path = Path("reports/pipeline"),
    runner: str = "subprocess",
    log_file: Path | None = None,
) -> LocalRun:
    """Run the pipeline with kfp.local (``runner``: subprocess or container); write its reports.

    With ``log_file`` kfp.local's output (hundreds of lines, coloured) goes there
    and only its task progress lines to stderr, for CI logs and pipes.
    """
    if runner not in RUNNERS:
        raise KfkitError(f"--runner: {runner!r} is not one of {', '.join(RUNNERS)}")
    module = load_pipeline_module(suite_dir)
    pipeline_root = pipeline_root.resolve()
    pipeline_root.mkdir(parents=True, exist_ok=True)
    before = set(pipeline_root.glob(f"{PIPELINE_NAME}-*"))
    if runner == "container":
        return _run_in_containers(
            module, suite_dir, tags, groups, pipeline_root, before, report_dir, log_file
        )
    from kfp import local

    local.init(
        runner=local.SubprocessRunner(use_venv=False),
        pipeline_root=str(pipeline_root),
        raise_on_error=True,
    )
    with _kfp_output(log_file):
        succeeded = _run_pipeline(
            lambda: module.verify_pipeline(**arguments(tags, "local", suite_dir, groups))
        )
    run_dir = _latest_run_dir(pipeline_root, before)
    merged = run_dir / "merge-reports"
    if not merged.is_dir():
        raise KfkitError(f"{run_dir}: the pipeline failed before merging its reports")
    report_dir.mkdir(parents=True, exist_ok=True)
    for output, name in MERGED_OUTPUTS.items():
        shutil.copyfile(merged / output, report_dir / name)
    summary = summarize(load(report_dir / CUCUMBER_JSON))
    return LocalRun(succeeded and summary.ok, run_dir, report_dir.resolve(), summary)


def compiled_images(module: ModuleType) -> dict[str, str]:
    """Each executor's image, exactly as the compiled IR names it."""
    import yaml

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(module.compile_pipeline(Path(tmp) / "pipeline.yaml"))
        spec = yaml.safe_load(path.read_text(encoding="utf-8"))
    executors = spec["deploymentSpec"]["executors"]
    return {name: str(e["container"]["image"]) for name, e in executors.items()}


def _prepare_images(suite_dir: Path, images: set[str]) -> dict[str, str]:
    """Build the kit image if its context changed; every image must exist and not run as root.

    Returns each image's user (``uid:gid``), which must own the pipeline root.
    """
    from kfkit.containers import images as kit_images
    from kfkit.containers import podman

    users: dict[str, str] = {}
    for image in sorted(images):
        for known in kit_images.IMAGES.values():
            if known.name == image:
                print(kit_images.ensure_image(suite_dir, known), flush=True)
        inspected = podman.podman(
            ["image", "inspect", "--format", "{{.Config.User}}", image], check=False
        )
        if inspected.returncode != 0:
            raise KfkitError(f"{image}: no such image in podman (the compiled IR names it)")
        user = inspected.stdout.strip()
        if user.split(":")[0] in ("", "0", "root"):
            raise KfkitError(f"{image}: runs as root; its Dockerfile must set a non-root USER")
        users[image] = user
    return users


def _give_to(path: Path, user: str) -> None:
    """Let the components' user write the pipeline root, as a cluster's artifact volume is."""
    uid, _, gid = user.partition(":")
    if os.geteuid() == 0 and uid.isdigit():
        os.chown(path, int(uid), int(gid) if gid.isdigit() else int(uid))
    else:
        path.chmod(0o777)


def _mounts() -> list[object]:
    """What a cluster would mount into the components: a pinned helm, the MNIST files."""
    from docker.types import Mount

    from kfkit.data.mnist import cache_dir
    from kfkit.platform.tools import tool_path

    mounts: list[object] = []
    helm = tool_path("helm")
    if helm.is_file():
        mounts.append(Mount(IMAGE_HELM, str(helm), type="bind", read_only=True))
    mnist = cache_dir()
    if mnist.is_dir():
        mounts.append(Mount(IMAGE_MNIST, str(mnist), type="bind", read_only=True))
    return mounts


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM cleans up like Ctrl-C does (only the main thread may handle signals)."""

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    if threading.current_thread() is not threading.main_thread():
        yield
        return

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _run_in_containers(
    module: ModuleType,
    suite_dir: Path,
    tags: str,
    groups: list[str] | None,
    pipeline_root: Path,
    before: set[Path],
    report_dir: Path,
    log_file: Path | None,
) -> LocalRun:
    try:
        import docker  # noqa: F401  (kfp's DockerRunner needs it)
    except ImportError:
        raise KfkitError(
            "--runner container: the docker package is not installed (pip install docker==7.2.0)"
        ) from None
    from kfp import local

    from kfkit.verify.docker_api import docker_host
    from kfkit.verify.pipeline_containers import ContainerRun, kfp_runs_containers_with

    images = compiled_images(module)
    users = _prepare_images(suite_dir, set(images.values()))
    for user in set(users.values()):
        _give_to(pipeline_root, user)
    report_dir = report_dir.resolve()
    report_dir.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(report_dir / "logs", ignore_errors=True)  # a previous run's component logs
    run = ContainerRun(pipeline_root, report_dir / "logs", {"KFKIT_RUNTIME": "process"})
    run.mounts = _mounts()
    result = {"succeeded": False}

    def pipeline() -> None:
        # The suite inside the image (the compiled default suite_dir) is the one that runs.
        call = lambda: module.verify_pipeline(**arguments(tags, "local", None, groups))  # noqa: E731
        result["succeeded"] = _run_pipeline(call)

    with docker_host(), _sigterm_as_interrupt(), _kfp_output(log_file):
        local.init(
            runner=local.DockerRunner(),
            pipeline_root=str(pipeline_root),
            raise_on_error=True,
        )
        try:
            with kfp_runs_containers_with(run):
                worker = threading.Thread(target=pipeline, name="kfp-local", daemon=True)
                worker.start()
                try:
                    while worker.is_alive():
                        worker.join(0.5)
                except KeyboardInterrupt:
                    print("interrupted: removing the run's containers", file=sys.stderr, flush=True)
                    run.cancel()
                    worker.join(60)
                    raise
        finally:
            run.remove_all()
    run_dir = _latest_run_dir(pipeline_root, before)
    merged = _merged_features(run_dir)
    features = merged + _failed_components(run, verdict_failed=not summarize(merged).ok)
    environment = collect_environment(
        target="local",
        tags=tags,
        runner="kfp.local DockerRunner (podman), one container a component",
    )
    for record in run.records:
        name = record.task + (f" ({record.feature})" if record.feature else "")
        environment[f"image of {name}"] = (
            f"{record.image} [{record.image_id[:19]}] as user {record.user}, "
            f"exit status {record.exit_code}"
        )
    written = write_reports(features, report_dir, environment)
    (report_dir / MERGED_OUTPUTS["summary"]).write_text(
        summary_markdown(written.summary), encoding="utf-8"
    )
    run.write_record(report_dir / COMPONENTS_RECORD)
    components_ok = bool(run.records) and all(r.succeeded for r in run.records)
    succeeded = result["succeeded"] and components_ok and written.summary.ok
    return LocalRun(succeeded, run_dir, report_dir, written.summary)


def _merged_features(run_dir: Path) -> list[Feature]:
    """merge-reports' cucumber JSON, or, when it did not run, what the groups left."""
    merged = run_dir / "merge-reports" / "cucumber_json"
    if merged.is_file():
        return load(merged)
    reports = []
    for path in sorted(run_dir.glob("for-loop-*/run-feature-group/cucumber_json")):
        try:
            reports.append(load(path))
        except KfkitError:
            continue  # a group that failed mid-write: its component's log says why
    return merge(reports)


def _failed_components(run: ContainerRun, verdict_failed: bool) -> list[Feature]:
    """A failed scenario per component that failed in its container, with its log tail.

    check-verdict failing because a scenario failed (or none ran) is the verdict, already
    counted in the report; it is a component failure only when the scenarios passed.
    """
    records = [
        r
        for r in run.records
        if not r.succeeded and not (verdict_failed and r.task == "check-verdict")
    ]
    if not records:
        return []
    elements = []
    for line, record in enumerate(records, start=1):
        how = "was cancelled" if record.exit_code is None else f"exited {record.exit_code}"
        error = f"{record.task} {how} in {record.image}; last lines of its log:\n" + "\n".join(
            record.tail
        )
        elements.append(
            {
                "keyword": "Scenario",
                "type": "scenario",
                "id": f"pipeline-components;{record.task}",
                "name": f"{record.task} runs in {record.image}",
                "line": line,
                "tags": [],
                "steps": [
                    {
                        "keyword": "Then ",
                        "name": f"the component {record.task} ends with status 0",
                        "line": line,
                        "result": {"status": "failed", "duration": 0, "error_message": error},
                    }
                ],
            }
        )
    return [
        {
            "keyword": "Feature",
            "name": "Pipeline components",
            "id": "pipeline-components",
            "uri": "pipelines/verify_pipeline.py",
            "line": 1,
            "description": "Components of the pipeline that failed inside their container.",
            "tags": [],
            "elements": elements,
        }
    ]


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
