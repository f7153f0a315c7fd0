"""Run the verification suite: radish in a child process, then the three reports.

radish keeps its steps and configuration in module globals, so a fresh
interpreter per run is the only clean way to run it twice in one process (the
pipeline's components and the tests do). On the local target every job of a
run lives under ``<report dir>/work/kfkit-home``, so verification never mixes
its jobs into the user's ``kfkit get``, and its manifests, logs and metrics
stay next to the report for a post-mortem.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from kfkit.errors import KfkitError
from kfkit.report import Reports, collect_environment, load, write_reports
from kfkit.report.environment import cluster_context

TARGETS = ("local", "kubernetes")
RADISH_MAIN = "import sys; from radish.main import main; sys.exit(main())"

# --- running the suite ----------------------------------------------------------------------


class NoScenariosError(KfkitError):
    """No scenario of the given feature files matches the tags (radish refuses to run)."""


def find_suite_dir(start: str | Path | None = None) -> Path:
    """The nearest directory at or above ``start`` with ``features/`` and ``stepfile.py``."""
    here = Path(start or os.getcwd()).resolve()
    for directory in (here, *here.parents):
        if (directory / "features").is_dir() and (directory / "stepfile.py").is_file():
            return directory
    raise KfkitError(
        f"{here}: no verification suite here or above (a directory with features/ and "
        "stepfile.py); run from the kfkit checkout or pass --suite-dir"
    )


def tag_expression(tags: str | None, target: str) -> str | None:
    """The radish tag expression for ``tags`` on ``target``.

    On the local target scenarios tagged ``@cluster`` cannot run, so they are
    left out rather than failed.
    """
    parts = [f"({tags})"] if tags else []
    if target == "local":
        parts.append("not cluster")
    return " and ".join(parts) or None


def _basedir_with_stepfile(suite_dir: Path, work_dir: Path) -> Path:
    """A directory holding only (a link to) stepfile.py: radish imports every .py in ``-b``."""
    basedir = work_dir / "steps"
    basedir.mkdir(parents=True, exist_ok=True)
    link = basedir / "stepfile.py"
    if link.is_symlink() or link.exists():
        link.unlink()
    link.symlink_to(suite_dir / "stepfile.py")
    return basedir


def radish_command(
    features: Sequence[str | Path],
    basedir: Path,
    cucumber_json: Path,
    tags: str | None,
    user_data: dict[str, str],
) -> list[str]:
    command = [sys.executable, "-c", RADISH_MAIN, *map(str, features)]
    command += ["-b", str(basedir), "--cucumber-json", str(cucumber_json)]
    if not sys.stdout.isatty():
        # Without ANSI radish cannot overwrite a step's line once it has run, so it
        # would print every step twice: before and after running it.
        command += ["--no-ansi", "--write-steps-once"]
    if tags:
        command += ["--tags", tags]
    for key, value in user_data.items():
        command += ["-u", f"{key}={value}"]
    return command


# How long radish gets, after Ctrl-C, to stop the running step, remove its jobs and write
# its report (stopping a replica may take its whole termination grace period).
INTERRUPT_GRACE_SECONDS = 120.0


@dataclass
class RadishExit:
    code: int
    interrupted: bool = False


def _run_radish(command: list[str], env: dict[str, str], timeout: float) -> RadishExit:
    """Run radish in its own process group so a timeout stops its jobs' helpers too.

    Ctrl-C reaches kfkit only (radish has a session of its own): it is passed on
    to radish as one SIGINT, which stops the running step and lets radish write
    its report (:mod:`kfkit.verify.interrupt`); a second Ctrl-C stops radish at once.
    """
    process = subprocess.Popen(command, env=env, start_new_session=True)
    try:
        return RadishExit(process.wait(timeout=timeout))
    except subprocess.TimeoutExpired:
        _stop_group(process)
        raise KfkitError(f"verification timed out after {timeout:.0f}s") from None
    except KeyboardInterrupt:
        print("kfkit verify: interrupted: stopping the running step", file=sys.stderr)
        process.send_signal(signal.SIGINT)
        try:
            return RadishExit(process.wait(timeout=INTERRUPT_GRACE_SECONDS), interrupted=True)
        except (KeyboardInterrupt, subprocess.TimeoutExpired):
            _stop_group(process)
            return RadishExit(process.returncode, interrupted=True)


def _stop_group(process: subprocess.Popen[bytes]) -> None:
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def _stop_local_jobs(home: Path) -> None:
    """After an interrupted run: no job of the run is left running (radish's hooks
    remove them; this catches one whose step was stopped mid-way)."""
    from kfkit.backends.local import LocalBackend

    backend = LocalBackend(home=home)
    for record in backend.list():
        if not record.status.finished:
            backend.stop(record.job.name, record.job.namespace)


def _any_scenario(feature_paths: Sequence[Path], expression: str | None) -> bool:
    """Whether radish would find a scenario to run (it exits 1 without a report otherwise)."""
    from radish.core import Core
    from radish.exceptions import RadishError
    from tagexpressions import parse

    files = [
        found
        for path in feature_paths
        for found in (sorted(path.rglob("*.feature")) if path.is_dir() else [path])
    ]
    core = Core()
    try:
        core.parse_features([str(f) for f in files], parse(expression) if expression else None)
    except RadishError as error:
        raise KfkitError(f"{' '.join(str(error).split())}") from None
    return any(feature.scenarios for feature in core.features)


def preflight(target: str, user_data: dict[str, str]) -> None:
    """On a cluster, one request before any scenario: without a reachable API server
    every scenario would fail alike, so that is one error instead (exit status 2)."""
    if target != "kubernetes":
        return
    from kfkit.backends.kubernetes.connection import connect
    from kfkit.backends.kubernetes.preflight import Preflight
    from kfkit.backends.kubernetes.resources import PYTORCHJOBS

    try:
        connection = connect(user_data.get("kubeconfig") or None, user_data.get("context") or None)
        Preflight(connection).served(PYTORCHJOBS)  # reachable and allowed to discover
    except KfkitError as error:
        raise KfkitError(f"--target kubernetes: {error.message}") from None


@dataclass
class Verification:
    """What ``kfkit verify`` did: the reports and radish's own exit status."""

    reports: Reports
    radish_exit_code: int
    interrupted: bool = False  # by Ctrl-C: the report holds what ran until then

    @property
    def ok(self) -> bool:
        return not self.interrupted and self.radish_exit_code == 0 and self.reports.summary.ok


def verify(
    features: Sequence[str | Path] | None = None,
    tags: str | None = None,
    target: str = "local",
    report_dir: str | Path = "reports",
    suite_dir: str | Path | None = None,
    timeout: float = 3600.0,
    user_data: dict[str, str] | None = None,
) -> Verification:
    """Run the suite (or the given feature files) and write the reports.

    ``user_data`` reaches the steps as radish user data (cluster settings such
    as ``kubeconfig`` or ``build_pvc``); it cannot override the run's own keys.
    """
    if target not in TARGETS:
        raise KfkitError(f"--target: unknown target {target!r}; choose one of {', '.join(TARGETS)}")
    suite = Path(suite_dir).resolve() if suite_dir else find_suite_dir()
    if not (suite / "stepfile.py").is_file():
        raise KfkitError(f"{suite}: no stepfile.py in the suite directory")
    feature_paths = [Path(f).resolve() for f in features] if features else [suite / "features"]
    missing = [str(path) for path in feature_paths if not path.exists()]
    if missing:
        raise KfkitError(f"{', '.join(missing)}: no such feature file or directory")
    preflight(target, user_data or {})
    reports_path = Path(report_dir).resolve()
    work_dir = reports_path / "work"
    work_dir.mkdir(parents=True, exist_ok=True)
    raw_json = work_dir / "radish-cucumber.json"
    raw_json.unlink(missing_ok=True)

    expression = tag_expression(tags, target)
    user_data = {
        **(user_data or {}),
        "target": target,
        "suite_dir": str(suite),
        "work_dir": str(work_dir),
        "run_id": secrets.token_hex(2),
    }
    env = dict(os.environ)
    if target == "local":
        env["KFKIT_HOME"] = str(work_dir / "kfkit-home")
    command = radish_command(
        feature_paths, _basedir_with_stepfile(suite, work_dir), raw_json, expression, user_data
    )
    if not _any_scenario(feature_paths, expression):
        chosen = f" matches tags {expression!r}" if expression else " was found"
        raise NoScenariosError(f"{', '.join(map(str, feature_paths))}: no scenario{chosen}")
    radish = _run_radish(command, env, timeout)
    if radish.interrupted and target == "local":
        _stop_local_jobs(work_dir / "kfkit-home")
    if not raw_json.is_file():
        if radish.interrupted:
            raise KeyboardInterrupt
        raise KfkitError(
            f"radish exited with status {radish.code} before writing a report "
            "(see its output above)"
        )
    context = None
    if target == "kubernetes":
        context = cluster_context(user_data.get("kubeconfig"), user_data.get("context"))
    environment = collect_environment(
        suite,
        target=target,
        tags=expression or "",
        features=" ".join(map(str, feature_paths)),
        **{"cluster context": context or ""},
    )
    reports = write_reports(load(raw_json), reports_path, environment)
    return Verification(
        reports=reports, radish_exit_code=radish.code, interrupted=radish.interrupted
    )
