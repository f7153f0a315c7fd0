"""Local ports: a port is busy only if something listens, and reserved ports are never shared."""

from __future__ import annotations

import json
import multiprocessing
import socket
import time
from pathlib import Path

from kfkit.backends.local.config import load_config
from kfkit.backends.local.launch import plan_job
from kfkit.backends.local.ports import PortReservations, free_port, port_is_free
from kfkit.backends.local.state import JobDir
from kfkit.jobs.load import load_jobs


def _time_wait_port() -> int:
    """A port whose only socket is a connection in TIME_WAIT (the server closed first).

    The server sets SO_REUSEADDR, as torch's TCPStore and gRPC do, so the next
    replica can bind the port; a plain bind still fails, which used to make kfkit
    call the port busy.
    """
    with socket.socket() as server:
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = int(server.getsockname()[1])
        client = socket.create_connection(("127.0.0.1", port))
        accepted, _ = server.accept()
        accepted.close()  # the active close leaves the server side in TIME_WAIT
        client.recv(1)
        client.close()
    return port


def test_time_wait_is_not_in_use() -> None:
    port = _time_wait_port()
    with socket.socket() as plain:
        try:
            plain.bind(("", port))
            plain_bind_failed = False
        except OSError:
            plain_bind_failed = True
    assert plain_bind_failed  # the connection really is in TIME_WAIT
    assert port_is_free(port)


def test_a_listener_is_in_use() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        assert not port_is_free(int(listener.getsockname()[1]))


def test_a_reserved_port_is_not_given_twice(tmp_path: Path) -> None:
    reservations = PortReservations(tmp_path)
    first, second = JobDir("default", "one", tmp_path), JobDir("default", "two", tmp_path)
    port = free_port()
    assert reservations.reserve(first, preferred=port) == port
    other = reservations.reserve(second, preferred=port)
    assert other != port
    assert reservations.holder(port) == "default/one"
    # Another process (a new PortReservations on the same home) sees the same.
    assert PortReservations(tmp_path).reserve(second, preferred=port) not in (port, other)


def test_stale_reservations_are_taken_over(tmp_path: Path) -> None:
    reservations = PortReservations(tmp_path)
    port = free_port()
    gone = JobDir("default", "gone", tmp_path)  # old, and its job never started
    (tmp_path / "ports").mkdir()
    record = {"namespace": "default", "name": "gone", "time": time.time() - 3600, "pid": 1}
    (tmp_path / "ports" / str(port)).write_text(json.dumps(record))
    assert reservations.holder(port) is None
    assert reservations.reserve(JobDir("default", "new", tmp_path), preferred=port) == port
    (tmp_path / "ports" / "99999").write_text("{corrupt")
    assert reservations.holder(99999) is None
    reservations.release(gone)  # nothing of it left; must not fail on the corrupt file


def test_release_gives_ports_back(tmp_path: Path) -> None:
    reservations = PortReservations(tmp_path)
    owner = JobDir("default", "one", tmp_path)
    port = reservations.reserve(owner)
    reservations.release(owner)
    assert reservations.holder(port) is None


def _reserve_many(home: str, name: str, count: int, queue: multiprocessing.Queue) -> None:
    reservations = PortReservations(Path(home))
    owner = JobDir("default", name, Path(home))
    queue.put([reservations.reserve(owner, preferred=23456) for _ in range(count)])


def test_concurrent_processes_never_share_a_port(tmp_path: Path) -> None:
    context = multiprocessing.get_context("fork")
    queue: multiprocessing.Queue = context.Queue()
    workers = [
        context.Process(target=_reserve_many, args=(str(tmp_path), f"job{i}", 10, queue))
        for i in range(4)
    ]
    for worker in workers:
        worker.start()
    got = [port for _ in workers for port in queue.get(timeout=60)]
    for worker in workers:
        worker.join(timeout=60)
    assert len(got) == 40 and len(set(got)) == 40


def test_two_pytorch_jobs_planned_together_get_different_master_ports(
    tmp_path: Path, build, write_manifest, monkeypatch
) -> None:
    monkeypatch.setenv("KFKIT_HOME", str(tmp_path / "home"))
    config = load_config(tmp_path / "home")
    command = ["python", "-c", "pass"]
    first, second = (build.pytorch_job(name) for name in ("first", "second"))
    for doc in (first, second):
        for spec in doc["spec"]["pytorchReplicaSpecs"].values():
            spec["template"]["spec"]["containers"][0]["command"] = command
    jobs = load_jobs([write_manifest(first, second)])
    ports = []
    notes_of_second: list[str] = []
    for job in jobs:
        job_dir = JobDir(job.namespace, job.name, config.home)
        launches, notes = plan_job(job, config, job_dir, str(tmp_path))
        ports.append(launches["master-0"].env["MASTER_PORT"])
        assert launches["worker-0"].env["MASTER_PORT"] == ports[-1]
        notes_of_second = notes
    assert ports[0] != ports[1]
    if ports[0] == "23456":  # nothing else on this machine listened on it
        assert notes_of_second == [
            "port 23456 is reserved by job default/first; master-0 listens on "
            f"{ports[1]} instead (MASTER_PORT says so)"
        ]


def test_two_jobs_run_together_from_one_directory_each_use_their_own_master(
    kfkit_home: Path, tmp_path: Path, build, write_manifest
) -> None:
    """``kfkit run -f dir/`` with two PyTorchJobs declaring the same port: both succeed."""
    import subprocess
    import sys

    from kfkit.backends.local import LocalBackend

    smoke = (
        "import sys; from kfkit.training.smoke import main; "
        "sys.exit(main(['--expect-world-size', '2']))"
    )
    port = free_port()
    directory = tmp_path / "jobs"
    directory.mkdir()
    for name in ("left", "right"):
        doc = build.pytorch_job(name)
        for spec in doc["spec"]["pytorchReplicaSpecs"].values():
            container = spec["template"]["spec"]["containers"][0]
            container["command"] = ["python", "-c", smoke]
            container["ports"] = [{"name": "pytorchjob-port", "containerPort": port}]
            spec["restartPolicy"] = "Never"
        (directory / f"{name}.yaml").write_text(write_manifest(doc).read_text())
    result = subprocess.run(
        [sys.executable, "-m", "kfkit.cli.main", "run", "-f", str(directory), "--timeout", "240"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    backend = LocalBackend()
    masters = set()
    for name in ("left", "right"):
        record = backend.get(name)
        assert record.status.succeeded
        launch = json.loads((kfkit_home / "jobs" / "default" / name / "launch.json").read_text())
        masters.add(launch["replicas"]["master-0"]["env"]["MASTER_PORT"])
        passed = {r for r, line in backend.logs(name) if line == "smoke test passed"}
        assert passed == {"master-0", "worker-0"}
    assert len(masters) == 2 and str(port) in masters


def test_elastic_rendezvous_keeps_worker0s_declared_port_when_free(
    tmp_path: Path, build, write_manifest
) -> None:
    config = load_config(tmp_path / "home")
    declared = free_port()
    doc = build.pytorch_job("elastic", workers=2, elasticPolicy={"minReplicas": 1})
    del doc["spec"]["pytorchReplicaSpecs"]["Master"]
    container = doc["spec"]["pytorchReplicaSpecs"]["Worker"]["template"]["spec"]["containers"][0]
    container["command"] = ["python", "-c", "pass"]
    container["ports"] = [{"name": "pytorchjob-port", "containerPort": declared}]
    job = load_jobs([write_manifest(doc)])[0]
    job_dir = JobDir(job.namespace, job.name, config.home)
    launches, notes = plan_job(job, config, job_dir, str(tmp_path))
    assert launches["worker-1"].env["PET_RDZV_ENDPOINT"] == f"127.0.0.1:{declared}"
    assert notes == []
    with socket.socket() as busy:  # now something listens there: another port, and a note
        busy.bind(("127.0.0.1", declared))
        busy.listen()
        launches, notes = plan_job(job, config, job_dir, str(tmp_path))
    endpoint = launches["worker-0"].env["PET_RDZV_ENDPOINT"]
    assert endpoint != f"127.0.0.1:{declared}"
    assert notes == [
        f"port {declared} is in use on this machine; worker-0 listens on "
        f"{endpoint.rsplit(':', 1)[1]} instead (PET_RDZV_ENDPOINT says so)"
    ]
