"""How a pod spec becomes podman arguments (no podman needed)."""

from __future__ import annotations

from kfkit.backends.local import pods


def test_command_and_args_combine_with_the_image_as_the_kubelet_does() -> None:
    image = {"Entrypoint": ["python", "-m", "trainer"], "Cmd": ["--data-dir", "/data"]}
    env = {"RUN": "r1"}
    assert pods._argv({}, image, env) == ["python", "-m", "trainer", "--data-dir", "/data"]
    assert pods._argv({"args": ["--run", "$(RUN)"]}, image, env) == [
        "python",
        "-m",
        "trainer",
        "--run",
        "r1",
    ]
    assert pods._argv({"command": ["sh"]}, image, env) == ["sh"]  # the image's Cmd goes too
    assert pods._argv({"command": ["sh"], "args": ["-c", "$$HOME"]}, image, env) == [
        "sh",
        "-c",
        "$HOME",
    ]


def test_run_as_non_root_follows_the_kubelet() -> None:
    where = "spec.containers[0]"
    assert pods.non_root_problem({"runAsNonRoot": True}, "1000", where) is None
    assert "will run as root" in str(pods.non_root_problem({"runAsNonRoot": True}, "0", where))
    assert "non-numeric user (kfkit)" in str(
        pods.non_root_problem({"runAsNonRoot": True}, "kfkit", where)
    )
    assert pods.non_root_problem({}, "0", where) is None
    # runAsUser overrides the image's USER, runAsGroup its group.
    assert pods.run_as_user({"runAsUser": 1000}, "0:0") == ("1000", "1000:0")
    assert pods.run_as_user({"runAsGroup": 5}, "1000:100") == ("1000", "1000:5")
    assert pods.run_as_user({}, "") == ("0", "0")


def test_security_context_becomes_podman_options() -> None:
    security = {
        "readOnlyRootFilesystem": True,
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    args = pods.security_args(security, {"fsGroup": 2000}, "1000:1000")
    joined = " ".join(args)
    assert "--user 1000:1000" in joined and "--group-add 2000" in joined
    assert "--read-only --read-only-tmpfs=false" in joined
    assert "--security-opt no-new-privileges" in joined
    assert "--cap-drop ALL" in joined and "--cap-add NET_BIND_SERVICE" in joined
    assert "seccomp=unconfined" not in joined
    # Without a profile the kubelet runs containers unconfined.
    assert "seccomp=unconfined" in " ".join(pods.security_args({}, {}, "0"))


def test_pod_level_security_is_the_default_for_its_containers() -> None:
    merged = pods._security(
        {"securityContext": {"runAsUser": 2000}},
        {"runAsUser": 1000, "runAsNonRoot": True, "fsGroup": 3},
    )
    assert merged == {"runAsUser": 2000, "runAsNonRoot": True}
