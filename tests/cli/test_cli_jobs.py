"""The kfkit command driven as a script drives it: pipes, exit codes, parsable output."""

from __future__ import annotations

import json
import os
import signal
import subprocess

import pytest
import yaml

pytestmark = pytest.mark.integration

LONG_NAME = "a-job-name-long-enough-that-an-80-column-table-would-cut-it-off"
# The first run exits 1, every later one prints "second run" and exits 0.
FLAKY = """
import os, sys
marker = os.path.join(os.environ["KFKIT_TEST_DIR"], "ran-once")
if not os.path.exists(marker):
    open(marker, "w").close()
    print("first run", flush=True)
    sys.exit(1)
print("second run")
print("Done: final_accuracy=0.99 final_loss=0.01")
"""


def test_results_go_to_stdout_diagnostics_to_stderr_and_nothing_is_cut(
    kfkit, manifest, free_port, script_job
) -> None:
    path = manifest(
        script_job(LONG_NAME, "print('trained'); print('accuracy=0.9900')", free_port())
    )
    run = kfkit("run", "-f", str(path))
    assert run.returncode == 0, run.stderr
    out = run.stdout.splitlines()
    assert out[0] == f"pytorchjob.kubeflow.org/{LONG_NAME} created"
    assert out[1].startswith(f"pytorchjob.kubeflow.org/{LONG_NAME} Succeeded: ")
    assert out[2] == "  master-0: accuracy=0.9900"  # the final metric line
    # Progress in a pipe: whole lines, each naming the job, none glued to the next.
    progress = [line for line in run.stderr.splitlines() if "pytorchjob.kubeflow.org/" in line]
    assert progress and all(line.startswith("pytorchjob.kubeflow.org/") for line in progress)
    assert any(" Succeeded " in line for line in progress)
    assert "\x1b[" not in run.stdout + run.stderr

    listing = kfkit("get", "jobs", "-A")
    assert listing.returncode == 0 and "\x1b[" not in listing.stdout
    header, row = listing.stdout.splitlines()
    assert header.split() == ["NAMESPACE", "NAME", "KIND", "STATE", "REPLICAS", "RESTARTS", "AGE"]
    assert row.split()[:6] == ["default", LONG_NAME, "PyTorchJob", "Succeeded", "0/1", "0"]
    described = kfkit("describe", "job", LONG_NAME)
    assert "successfully completed." in described.stdout
    assert all(len(line) > 0 for line in described.stdout.splitlines()[:5])


def test_output_formats_match_kubectl_for_jq_scripts(
    kfkit, manifest, free_port, script_job
) -> None:
    path = manifest(script_job("formats", "print('ok')", free_port()))
    assert kfkit("run", "-f", str(path)).returncode == 0
    one = json.loads(kfkit("get", "pytorchjob", "formats", "-o", "json").stdout)
    assert one["kind"] == "PyTorchJob" and one["metadata"]["name"] == "formats"
    succeeded = [c for c in one["status"]["conditions"] if c["type"] == "Succeeded"]
    assert succeeded[0]["status"] == "True"
    assert one["status"]["replicaStatuses"]["Master"]["succeeded"] == 1
    listed = json.loads(kfkit("get", "pytorchjobs", "-o", "json").stdout)
    assert listed["kind"] == "List" and [i["metadata"]["name"] for i in listed["items"]] == [
        "formats"
    ]
    as_yaml = yaml.safe_load(kfkit("get", "job/formats", "-o", "yaml").stdout)
    assert as_yaml["status"] == one["status"]
    assert kfkit("get", "jobs", "-o", "name").stdout == "pytorchjob.kubeflow.org/formats\n"
    assert kfkit("get", "tfjobs", "-o", "name").stdout == ""
    wide = kfkit("get", "job", "formats", "-o", "wide").stdout
    assert "Master:0/1 (1 succeeded)" in wide
    missing = kfkit("get", "job", "nope")
    assert missing.returncode == 2 and missing.stderr == "job default/nope not found\n"
    unknown = kfkit("get", "notebooks")
    assert unknown.returncode == 2 and "unknown resource type 'notebooks'" in unknown.stderr


def test_exit_codes_failed_timed_out_and_bad_input(kfkit, manifest, free_port, script_job) -> None:
    failing = manifest(
        script_job("fails", "print('loading'); raise SystemExit('disk full')", free_port()),
        name="fails.yaml",
    )
    run = kfkit("run", "-f", str(failing))
    assert run.returncode == 1
    assert "pytorchjob.kubeflow.org/fails Failed" in run.stdout
    assert "last 2 log lines of master-0:" in run.stderr and "    disk full" in run.stderr

    sleeper = manifest(script_job("sleeps", "import time; time.sleep(60)", free_port()))
    run = kfkit("run", "-f", str(sleeper), "--timeout", "1s")
    assert run.returncode == 3
    assert "pytorchjob.kubeflow.org/sleeps is still running" in run.stderr
    wait = kfkit("wait", "--for=condition=Succeeded", "job/sleeps", "--timeout", "500ms")
    assert wait.returncode == 3 and "is still running" in wait.stderr
    assert kfkit("wait", "--for=condition=Running", "pytorchjob/sleeps").returncode == 0
    assert kfkit("wait", "--for=condition=Succeeded", "job/fails").returncode == 1
    assert kfkit("delete", "job", "sleeps").returncode == 0

    bad = kfkit("run", "-f", str(sleeper), "--timeout", "ten minutes")
    assert bad.returncode == 2 and "invalid duration 'ten minutes'" in bad.stderr
    assert "Traceback" not in bad.stderr


def test_a_finished_job_is_not_replaced_silently(
    kfkit, manifest, free_port, script_job, kfkit_home
) -> None:
    claim = {"name": "ckpt", "persistentVolumeClaim": {"claimName": "team-checkpoints"}}
    job = script_job("again", "print('ran')", free_port())
    job["spec"]["pytorchReplicaSpecs"]["Master"]["template"]["spec"]["volumes"] = [claim]
    path = manifest(job)
    assert kfkit("run", "-f", str(path)).returncode == 0
    again = kfkit("run", "-f", str(path))
    assert again.returncode == 2
    assert again.stderr == (
        f"{path}: metadata.name: PyTorchJob default/again already exists (Succeeded); "
        "`kfkit delete job again` first, or run with --replace\n"
    )
    # With a new job beside it, neither starts: nothing is half-applied.
    other = script_job("beside", "print('ran')", free_port())
    both = manifest(other, job, name="both.yaml")
    refused = kfkit("run", "-f", str(both))
    assert refused.returncode == 2 and "already exists (Succeeded)" in refused.stderr
    assert not (kfkit_home / "jobs" / "default" / "beside").exists()
    assert kfkit("run", "-f", str(path), "--replace").returncode == 0
    deleted = kfkit("delete", "-f", str(path))
    assert deleted.stdout == "pytorchjob.kubeflow.org/again deleted\n"
    assert "team-checkpoints" in deleted.stderr and "resumed" in deleted.stderr
    assert not (kfkit_home / "jobs" / "default" / "again").exists()
    assert kfkit("run", "-f", str(path)).returncode == 0  # gone, so a new one starts


def test_delete_all_and_kind_names(kfkit, manifest, free_port, script_job) -> None:
    for name in ("one", "two"):
        path = manifest(script_job(name, "print(1)", free_port()), name=f"{name}.yaml")
        assert kfkit("run", "-f", str(path)).returncode == 0
    listed = kfkit("get", "pytorchjobs.kubeflow.org", "-o", "name").stdout.split()
    assert listed == ["pytorchjob.kubeflow.org/one", "pytorchjob.kubeflow.org/two"]
    deleted = kfkit("delete", "pytorchjobs", "--all")
    assert deleted.returncode == 0 and deleted.stdout.count(" deleted\n") == 2
    assert kfkit("get", "jobs", "-o", "name").stdout == ""
    assert kfkit("delete", "job").returncode == 2  # no name and no --all


def test_logs_tail_previous_and_a_separator_between_restarts(
    kfkit, manifest, free_port, script_job, tmp_path, monkeypatch
) -> None:
    monkeypatch.setenv("KFKIT_TEST_DIR", str(tmp_path))
    path = manifest(script_job("flaky", FLAKY, free_port(), policy="OnFailure"))
    run = kfkit("run", "-f", str(path))
    assert run.returncode == 0, run.stderr
    assert "  master-0: Done: final_accuracy=0.99 final_loss=0.01" in run.stdout
    logs = kfkit("logs", "flaky").stdout.splitlines()
    assert logs == [
        "first run",
        "----- master-0: restart 1 -----",
        "second run",
        "Done: final_accuracy=0.99 final_loss=0.01",
    ]
    assert kfkit("logs", "flaky", "--previous").stdout == "first run\n"
    assert kfkit("logs", "pytorchjob/flaky", "--tail", "1").stdout.splitlines() == [logs[-1]]
    followed = kfkit("logs", "flaky", "-f", "--tail", "2").stdout.splitlines()
    assert followed == logs[-2:]
    refused = kfkit("logs", "flaky", "--timestamps")
    assert refused.returncode == 2 and "no time per log line" in refused.stderr


def test_a_closed_pipe_ends_logs_quietly(
    kfkit, manifest, free_port, script_job, kfkit_argv
) -> None:
    code = "import time\nfor i in range(5000): print(i)\ntime.sleep(30)"
    path = manifest(script_job("chatty", code, free_port()))
    assert kfkit("run", "-f", str(path), "--detach").returncode == 0
    assert kfkit("wait", "--for=condition=Running", "job/chatty").returncode == 0
    pipeline = subprocess.run(
        f"{' '.join(kfkit_argv)} logs chatty -f | head -3",
        shell=True,
        capture_output=True,
        text=True,
        timeout=60,
        executable="/bin/bash",
    )
    assert pipeline.stdout.splitlines() == ["0", "1", "2"]
    assert "Traceback" not in pipeline.stderr and "BrokenPipe" not in pipeline.stderr
    assert kfkit("delete", "job", "chatty").returncode == 0


def test_usage_version_and_completion(kfkit, tmp_path, kfkit_argv) -> None:
    bare = kfkit()
    assert bare.returncode == 0 and bare.stdout.startswith("usage: kfkit")
    version = kfkit("version", "-o", "json")
    assert json.loads(version.stdout)["kfkit"]
    completion = kfkit("completion", "bash")
    assert completion.returncode == 0 and "complete" in completion.stdout
    # What bash asks when TAB is pressed after `kfkit ge` (argcomplete's protocol).
    answer = tmp_path / "completions"
    env = {
        **os.environ,
        "_ARGCOMPLETE": "1",
        "COMP_LINE": "kfkit ge",
        "COMP_POINT": "8",
        "_ARGCOMPLETE_STDOUT_FILENAME": str(answer),
    }
    subprocess.run(kfkit_argv, env=env, capture_output=True, timeout=60, check=True)
    assert answer.read_text().split() == ["get"]


def test_get_watch_prints_a_row_whenever_the_job_changes(
    kfkit, manifest, free_port, script_job, kfkit_argv, tmp_path
) -> None:
    release = tmp_path / "release"  # the job ends once the watch has shown it running
    code = f"import os, time\nwhile not os.path.exists({str(release)!r}): time.sleep(0.1)"
    path = manifest(script_job("watched", code, free_port()))
    assert kfkit("run", "-f", str(path), "--detach").returncode == 0
    assert kfkit("wait", "--for=condition=Running", "job/watched").returncode == 0
    watch = subprocess.Popen(
        [*kfkit_argv, "get", "job", "watched", "-w", "--timeout", "120s"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert watch.stdout is not None
    header, first = watch.stdout.readline(), watch.stdout.readline()
    assert header.split()[:3] == ["NAME", "KIND", "STATE"] and first.split()[2] == "Running"
    release.touch()
    states = []
    while "Succeeded" not in states:
        line = watch.stdout.readline()
        assert line, "the watch ended before the job succeeded"
        states.append(line.split()[2])
    watch.send_signal(signal.SIGINT)  # as a user ends `kubectl get -w`
    _, err = watch.communicate(timeout=60)
    assert watch.returncode == 130 and "Traceback" not in err
    assert "STATE" not in states  # the header only once
