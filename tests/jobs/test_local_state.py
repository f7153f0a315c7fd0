"""The local backend's state and processes under faults: names that try to climb out of
$KFKIT_HOME, concurrent runs, killed supervisors, reused pids, corrupt state files."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from kfkit.backends.base import FAILED, SUCCEEDED
from kfkit.backends.local import LocalBackend, processes
from kfkit.backends.local.config import load_config
from kfkit.backends.local.launch import plan_job
from kfkit.backends.local.lock import JobLock, is_held
from kfkit.backends.local.state import JobDir, StateError, all_job_dirs, contained
from kfkit.backends.local.supervisor import set_condition, supervise
from kfkit.errors import ValidationError
from kfkit.jobs.defaults import apply_defaults
from kfkit.jobs.load import load_jobs
from kfkit.jobs.model import Job

KFKIT = [sys.executable, "-m", "kfkit.cli.main"]


def job_doc(name: str, code: str, policy: str = "Never", **container: Any) -> dict[str, Any]:
    """A one-replica PyTorchJob whose master runs ``code`` with kfkit's interpreter."""
    pod_fields = container.pop("pod", {})
    spec = {
        "name": "pytorch",
        "image": "kfkit/test:1",
        "command": ["python", "-c", textwrap.dedent(code)],
        **container,
    }
    master = {"replicas": 1, "restartPolicy": policy, "template": {"spec": {"containers": [spec]}}}
    master["template"]["spec"].update(pod_fields)
    return {
        "apiVersion": "kubeflow.org/v1",
        "kind": "PyTorchJob",
        "metadata": {"name": name},
        "spec": {"pytorchReplicaSpecs": {"Master": master}},
    }


def kfkit(*args: str, **options: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*KFKIT, *args], capture_output=True, text=True, timeout=120, **options)


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """Run the CLI in this process (an uncaught exception fails the test: no traceback)."""
    from kfkit.cli.main import main

    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def wait_for(predicate: Any, timeout: float = 60, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


@pytest.fixture
def reaper() -> Iterator[list[int]]:
    """Pids a test started; any still alive at the end is killed (and fails the test)."""
    pids: list[int] = []
    yield pids
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


# --- every state path stays under $KFKIT_HOME --------------------------------------------


@pytest.mark.parametrize(
    ("namespace", "name"),
    [("..", "volumes"), ("../../x", "job"), ("default", ".."), ("a/b", "c"), ("", "x")],
)
def test_a_job_directory_never_leaves_kfkit_home(kfkit_home, namespace, name) -> None:
    with pytest.raises(StateError, match="cannot name a directory"):
        JobDir(namespace, name)


def test_a_symlinked_namespace_is_refused(kfkit_home, tmp_path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (kfkit_home / "jobs").mkdir(parents=True)
    (kfkit_home / "jobs" / "team").symlink_to(outside)
    with pytest.raises(StateError, match="resolves outside"):
        JobDir("team", "job")
    assert all_job_dirs() == []  # kfkit never made that entry: it is not a job
    with pytest.raises(StateError):
        contained(kfkit_home, "jobs", "team", "job")


def test_cli_delete_and_get_with_a_climbing_namespace_touch_nothing(
    kfkit_home, tmp_path, capsys
) -> None:
    victim = kfkit_home / "volumes"
    (victim / "default" / "data").mkdir(parents=True)
    outside = tmp_path / "x"
    outside.mkdir()
    for namespace, name in (("..", "volumes"), ("../../x", "job"), ("../..", "x")):
        code, _, err = cli(capsys, "delete", "job", name, "-n", namespace)
        assert code == 2 and err.count("\n") == 1, err
        assert "cannot name a directory" in err
        assert cli(capsys, "get", "jobs", "-n", namespace)[0] == 2
    assert (victim / "default" / "data").is_dir() and outside.is_dir()


def unvalidated(doc: dict[str, Any]) -> Job:
    """A job as it would be if name validation had let it through."""
    return Job(manifest=apply_defaults(doc), source="job.yaml")


@pytest.mark.parametrize(
    ("volume", "mount"),
    [
        ({"persistentVolumeClaim": {"claimName": "../../escape"}}, {}),
        ({"secret": {"secretName": "../../../etc"}}, {}),
        ({"configMap": {"name": ".."}}, {}),
        ({"emptyDir": {}}, {"subPath": "../../../../outside"}),
        ({"emptyDir": {}}, {"subPath": "/etc"}),
    ],
)
def test_volume_names_and_subpaths_cannot_climb_out(kfkit_home, volume, mount) -> None:
    doc = job_doc("climb", "print(1)", volumeMounts=[{"name": "v", "mountPath": "/v", **mount}])
    doc["spec"]["pytorchReplicaSpecs"]["Master"]["template"]["spec"]["volumes"] = [
        {"name": "v", **volume}
    ]
    job = unvalidated(doc)
    with pytest.raises(ValidationError) as raised:
        plan_job(job, load_config(), JobDir(job.namespace, job.name), os.getcwd())
    lines = raised.value.lines()
    assert all(line.startswith("job.yaml: spec.pytorchReplicaSpecs") for line in lines)
    assert not (kfkit_home / "jobs").exists()


def test_a_secret_key_cannot_climb_out(kfkit_home) -> None:
    env = [{"name": "S", "valueFrom": {"secretKeyRef": {"name": "s", "key": "../../../x"}}}]
    job = unvalidated(job_doc("key", "print(1)", env=env))
    with pytest.raises(ValidationError):  # by name validation, or else by the state layer
        plan_job(job, load_config(), JobDir(job.namespace, job.name), os.getcwd())
    # The state layer on its own, whatever reaches it:
    with pytest.raises(StateError, match="cannot name a directory"):
        contained(kfkit_home / "secrets", "default", "s", "../../../x")


@pytest.mark.integration
def test_delete_never_follows_a_symlink_out_of_the_job(kfkit_home, write_manifest, tmp_path):
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "data.txt").write_text("keep me")
    code = f"""
        import os
        os.symlink({str(precious)!r}, os.environ["SCRATCH"] + "/link")
        os.symlink({str(precious / "data.txt")!r}, os.environ["SCRATCH"] + "/file-link")
        """
    doc = job_doc(
        "links",
        code,
        env=[{"name": "SCRATCH", "value": "/scratch"}],
        volumeMounts=[{"name": "scratch", "mountPath": "/scratch"}],
    )
    doc["spec"]["pytorchReplicaSpecs"]["Master"]["template"]["spec"]["volumes"] = [
        {"name": "scratch", "emptyDir": {}}
    ]
    doc["spec"]["runPolicy"] = {"ttlSecondsAfterFinished": 3}
    backend = LocalBackend()
    job = load_jobs([write_manifest(doc)])[0]
    backend.submit(job)
    job_dir = backend._dir("links", "default")
    assert backend.wait("links", timeout=60).status.succeeded  # the links were made
    wait_for(lambda: not job_dir.path.exists(), what="ttl to remove the job")
    assert (precious / "data.txt").read_text() == "keep me"
    # A job directory replaced by a symlink is unlinked, never followed.
    job_dir.path.parent.mkdir(parents=True, exist_ok=True)
    job_dir.path.symlink_to(precious)
    job_dir.remove()
    assert not job_dir.path.is_symlink() and (precious / "data.txt").exists()


# --- one supervisor per job -----------------------------------------------------------------


def guardians(job_path: Path) -> list[psutil.Process]:
    """The guardians of one job directory (each forks one supervisor with its cmdline)."""
    found = {}
    for process in psutil.process_iter(["cmdline", "ppid"]):
        cmdline = process.info["cmdline"] or []
        if "kfkit.backends.local.supervisor" in cmdline and str(job_path) in cmdline:
            found[process.pid] = process
    return [p for p in found.values() if p.info["ppid"] not in found]


@pytest.mark.integration
def test_two_concurrent_runs_start_one_supervisor(kfkit_home, write_manifest, reaper) -> None:
    path = write_manifest(job_doc("twice", "import time; time.sleep(600)"))
    runs = [
        subprocess.Popen(
            [*KFKIT, "run", "-f", str(path), "--detach"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    results = [(run.wait(timeout=120), run.stderr.read() if run.stderr else "") for run in runs]
    codes = sorted(code for code, _ in results)
    assert codes == [0, 2, 2], results
    for code, stderr in results:
        assert "Traceback" not in stderr
        if code == 2:
            assert stderr.strip().endswith("first"), stderr
            assert "already exists" in stderr and len(stderr.strip().splitlines()) == 1
    job_dir = LocalBackend()._dir("twice", "default")
    assert len(guardians(job_dir.path)) == 1
    replica = wait_for(lambda: LocalBackend().get("twice").replicas.get("master-0", {}).get("pid"))
    reaper.append(replica)
    deleted = kfkit("delete", "job", "twice")
    assert deleted.returncode == 0, deleted.stderr
    assert not guardians(job_dir.path) and not alive(replica)
    assert not job_dir.path.exists()


def test_the_lock_is_taken_again_when_its_file_was_replaced(tmp_path) -> None:
    first = JobLock(tmp_path / "job" / "supervisor.lock")
    assert first.acquire()
    assert is_held(first.path) and not JobLock(first.path).acquire(timeout=0.2)
    first.path.unlink()  # `kfkit delete` removed the directory while it was held
    second = JobLock(first.path)
    assert second.acquire()  # a new file, a new lock: not fooled by the old one
    first.release()
    second.release()
    assert not is_held(first.path)


# --- pids are trusted only with their start time; a replica's whole tree dies with it ------

GRANDCHILDREN = """
    import subprocess, sys, time
    sleeper = [sys.executable, "-c", "import time; time.sleep(600)"]
    child = subprocess.Popen(sleeper)
    escaped = subprocess.Popen(sleeper, start_new_session=True)
    print(child.pid, escaped.pid, flush=True)
    time.sleep(600)
    """


def start_grandchildren(write_manifest, name: str) -> tuple[LocalBackend, list[int]]:
    backend = LocalBackend()
    backend.submit(load_jobs([write_manifest(job_doc(name, GRANDCHILDREN))])[0])

    def pids() -> list[int]:
        lines = [line for _, line in backend.logs(name)]
        return [int(pid) for pid in lines[0].split()] if lines else []

    grandchildren = wait_for(pids, what="the replica's children")
    replica = backend.get(name).replicas["master-0"]["pid"]
    return backend, [replica, *grandchildren]


def test_a_pid_is_trusted_only_with_its_exact_start(tmp_path, reaper) -> None:
    # A command name with spaces and parentheses must not shift the fields of /proc/<pid>/stat.
    odd_name = tmp_path / "a) b (c"
    odd_name.symlink_to(sys.executable)
    process = subprocess.Popen([str(odd_name), "-c", "import time; time.sleep(60)"])
    reaper.append(process.pid)
    ref = processes.identity(process.pid)
    assert ref is not None and isinstance(ref["startTicks"], int)
    assert processes.find(ref).pid == process.pid
    assert ref["startTicks"] == processes.start_ticks(process.pid)
    # One clock tick off is another process, however close its create_time looks to psutil.
    assert processes.find({**ref, "startTicks": ref["startTicks"] + 1}) is None
    assert processes.find({"pid": process.pid, "createTime": ref["createTime"]}) is None
    for broken in (None, [], {"pid": "1"}, {"pid": process.pid, "startTicks": True}):
        assert processes.find(broken) is None
    process.kill()
    process.wait()
    assert processes.find(ref) is None and processes.identity(process.pid) is None


@pytest.mark.integration
@pytest.mark.parametrize("role", ["supervisor", "guardian"])
def test_kill_9_of_the_supervisor_leaves_no_replica_process(
    kfkit_home, write_manifest, reaper, role
) -> None:
    backend, pids = start_grandchildren(write_manifest, f"orphans-{role}")
    reaper += pids
    job_dir = backend._dir(f"orphans-{role}", "default")
    info = json.loads(job_dir.supervisor_file.read_text())
    os.kill(info[role]["pid"], signal.SIGKILL)
    wait_for(lambda: not any(alive(pid) for pid in pids), timeout=30, what="the replica tree")
    record = wait_for(lambda: (r := backend.get(f"orphans-{role}")).status.finished and r)
    assert record.status.is_true(FAILED) and not record.status.is_true(SUCCEEDED)
    assert record.replicas["master-0"]["pid"] is None


@pytest.mark.integration
def test_a_reused_pid_is_neither_running_nor_signalled(kfkit_home, write_manifest, reaper) -> None:
    backend, pids = start_grandchildren(write_manifest, "reused")
    reaper += pids
    job_dir = backend._dir("reused", "default")
    info = json.loads(job_dir.supervisor_file.read_text())
    # Both supervisor processes vanish at once (a reboot), and their pids go to strangers.
    for role in ("guardian", "supervisor"):
        os.kill(info[role]["pid"], signal.SIGKILL)
    stranger = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    reaper.append(stranger.pid)
    replicas = json.loads(job_dir.replicas_file.read_text())
    replicas["master-0"]["pid"] = stranger.pid  # same number, another process
    for role in ("guardian", "supervisor"):
        info[role]["pid"] = stranger.pid
    job_dir.write_json(job_dir.replicas_file, replicas)
    job_dir.write_json(job_dir.supervisor_file, info)
    wait_for(lambda: not is_held(job_dir.lock_file), what="the lock to be released")
    record = backend.get("reused")
    assert record.status.is_true(FAILED)
    assert "the local supervisor is gone" in record.status.condition(FAILED)["message"]
    assert not any(alive(pid) for pid in pids)  # the reader cleaned up the replica's tree
    with pytest.raises(Exception, match="not running"):
        backend.kill_replica("reused", "master-0")
    backend.delete("reused")
    assert stranger.poll() is None, "delete signalled an unrelated process"
    stranger.kill()


# --- state survives faults -------------------------------------------------------------------

CORRUPTIONS = {
    "truncated": lambda text: text[: len(text) // 2],
    "garbage": lambda text: "\x00\x01{[not json",
    "wrong type": lambda text: "[1, 2, 3]" if text.lstrip().startswith("{") else '{"a": 1}',
    "empty": lambda text: "",
}


@pytest.mark.integration
@pytest.mark.parametrize("file", ["status.json", "replicas.json", "job.yaml", "events.json"])
def test_a_corrupt_state_file_is_one_line_and_never_breaks_the_others(
    kfkit_home, write_manifest, file, capsys
) -> None:
    for name in ("good", "bad"):
        path = write_manifest(job_doc(name, "print('hi')"), name=f"{name}.yaml")
        assert cli(capsys, "run", "-f", str(path))[0] == 0
    state = kfkit_home / "jobs" / "default" / "bad" / file
    pristine = state.read_text()
    for corruption, corrupt in CORRUPTIONS.items():
        state.write_text(corrupt(pristine))
        for verb in (["describe", "job", "bad"], ["logs", "bad"]):
            code, _, err = cli(capsys, *verb)
            assert code == 2, (corruption, verb)
            assert err.count("\n") == 1 and str(state) in err, err
        code, out, err = cli(capsys, "get", "jobs")
        assert code == 0 and "good" in out, (corruption, out, err)
        assert str(state) in err and "good" not in err
    assert cli(capsys, "delete", "job", "bad")[0] == 0
    assert not state.parent.exists()
    rerun = cli(capsys, "run", "-f", str(write_manifest(job_doc("bad", "print('again')"))))
    assert rerun[0] == 0, rerun
    assert cli(capsys, "logs", "bad")[1] == "again\n"


def test_failed_and_succeeded_are_never_both_true() -> None:
    status: dict[str, Any] = {}
    assert set_condition(status, "PyTorchJob", "Running", "running")
    assert set_condition(status, "PyTorchJob", SUCCEEDED, "done")
    assert not set_condition(status, "PyTorchJob", FAILED, "the local supervisor is gone")
    true = [c["type"] for c in status["conditions"] if c["status"] == "True"]
    assert true == [SUCCEEDED]


@pytest.mark.integration
def test_a_reader_looking_while_the_job_starts_never_fails_it(kfkit_home, write_manifest):
    backend = LocalBackend()
    for attempt in range(5):
        job = load_jobs([write_manifest(job_doc("eager", "print('ok')"))])[0]
        backend.submit(job, replace=True)
        phases = set()
        while not (record := backend.get("eager")).status.finished:
            phases.add(record.status.phase)
            for other in backend.list():
                phases.add(other.status.phase)
        assert record.status.succeeded, (attempt, record.status.conditions, phases)
        assert not record.status.is_true(FAILED)
        wait_for(lambda: not is_held(backend._dir("eager", "default").lock_file))


def test_a_supervisor_that_cannot_start_records_why(kfkit_home, write_manifest) -> None:
    job = load_jobs([write_manifest(job_doc("broken", "print(1)"))])[0]
    job_dir = JobDir(job.namespace, job.name)
    job_dir.path.mkdir(parents=True)
    job_dir.write_manifest(job.manifest)
    job_dir.write_json(job_dir.launch_file, {"replicas": {}})  # no uid: cannot be run
    assert supervise(job_dir) == 1
    record = LocalBackend().get("broken")
    failed = record.status.condition(FAILED)
    assert failed is not None and failed["reason"] == "LocalSupervisorFailed"
    assert "the local supervisor failed: KeyError" in failed["message"]


@pytest.mark.integration
def test_a_bad_host_path_type_is_refused_before_and_recorded_after(
    kfkit_home, write_manifest, tmp_path, capsys
) -> None:
    a_directory = tmp_path / "dir"
    a_directory.mkdir()
    doc = job_doc("hostfile", "print(1)", volumeMounts=[{"name": "h", "mountPath": "/h"}])
    volumes = doc["spec"]["pytorchReplicaSpecs"]["Master"]["template"]["spec"]
    volumes["volumes"] = [{"name": "h", "hostPath": {"path": str(a_directory), "type": "File"}}]
    code, _, err = cli(capsys, "run", "-f", str(write_manifest(doc)))
    assert code == 2
    assert f"hostPath {a_directory}: is not a file (type File)" in err
    assert not (kfkit_home / "jobs").exists()
    # DirectoryOrCreate under a file: only found when the kubelet (here, the supervisor)
    # tries to create it; the job fails with the reason.
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    volumes["volumes"][0]["hostPath"] = {"path": str(blocker / "sub"), "type": "DirectoryOrCreate"}
    failed = cli(capsys, "run", "-f", str(write_manifest(doc)))
    assert failed[0] == 1, failed
    record = LocalBackend().get("hostfile")
    assert record.replicas["master-0"]["reason"] == "FailedMount"
    assert "hostPath type check failed: cannot create" in record.status.condition(FAILED)["message"]


@pytest.fixture
def small_disk(tmp_path) -> Iterator[Path]:
    """A 2 MiB tmpfs, where a replica can fill the disk under the job's state."""
    mount_point = tmp_path / "small"
    mount_point.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount_point)], capture_output=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


@pytest.mark.integration
def test_a_full_disk_is_recorded_as_the_reason(small_disk, write_manifest, monkeypatch) -> None:
    monkeypatch.setenv("KFKIT_HOME", str(small_disk / "home"))
    fill = """
        import os
        for index, size in enumerate((65536, 4096, 1)):
            try:
                path = os.path.join(os.environ["SCRATCH"], f"fill-{index}")
                with open(path, "wb", buffering=0) as out:
                    while True:
                        out.write(b"x" * size)
            except OSError:
                pass
        """
    doc = job_doc(
        "full",
        fill,
        env=[{"name": "SCRATCH", "value": "/scratch"}],
        volumeMounts=[{"name": "scratch", "mountPath": "/scratch"}],
    )
    doc["spec"]["pytorchReplicaSpecs"]["Master"]["template"]["spec"]["volumes"] = [
        {"name": "scratch", "emptyDir": {}}
    ]
    backend = LocalBackend()
    backend.submit(load_jobs([write_manifest(doc)])[0])
    record = backend.wait("full", timeout=60)
    failed = record.status.condition(FAILED)
    assert failed is not None, record.status.conditions
    assert failed["reason"] == "LocalSupervisorFailed"
    assert "No space left on device" in failed["message"]
    backend.delete("full")


def fill(directory: Path) -> None:
    """Write into ``directory`` until its filesystem has not one byte left."""
    for index, size in enumerate((65536, 4096, 1)):
        try:
            with open(directory / f"filler-{index}", "wb", buffering=0) as out:
                while True:
                    out.write(b"x" * size)
        except OSError:
            pass


def test_a_full_disk_at_submit_is_one_line_and_leaves_nothing(
    small_disk, write_manifest, monkeypatch, capsys
) -> None:
    home = small_disk / "home"
    home.mkdir()
    monkeypatch.setenv("KFKIT_HOME", str(home))
    manifest = write_manifest(job_doc("nospace", "print(1)"))
    fill(small_disk)
    code, _, err = cli(capsys, "run", "-f", str(manifest))
    assert code == 2 and err.count("\n") == 1, err
    assert "not created: cannot write" in err and "No space left on device" in err
    assert not (home / "jobs").exists()
