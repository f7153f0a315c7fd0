"""``kfkit build``: turn a notebook or a directory into an image, with Kaniko, no Docker daemon.

Inside a notebook pod (or with a kubeconfig) the image is built and pushed by a
Kaniko Job reading its context from the shared PVC. With ``--dry-run``, or with
no cluster to talk to, the context and the Job manifest are written to the PVC
path and the image is built locally with podman or buildah when possible.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from kfkit.builder.kaniko import DEFAULT_SERVICE_ACCOUNT


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "build", help="build an image from a notebook or directory with Kaniko (no Docker daemon)"
    )
    parser.add_argument("source", type=Path, help="notebook (.ipynb), script (.py) or directory")
    parser.add_argument("--image", required=True, help="image repository, without the tag")
    parser.add_argument("--tag", required=True, help="image tag")
    parser.add_argument(
        "--base-image", required=True, help="base image, e.g. a TensorFlow image running non-root"
    )
    parser.add_argument("--pvc-name", required=True, help="ReadWriteMany PVC shared with Kaniko")
    parser.add_argument(
        "--pvc-mount-path", required=True, type=Path, help="where this process sees that PVC"
    )
    parser.add_argument("--registry-secret", help="dockerconfigjson Secret for the registry")
    parser.add_argument(
        "--service-account",
        default=DEFAULT_SERVICE_ACCOUNT,
        help=f"account the Kaniko pod runs as (default: {DEFAULT_SERVICE_ACCOUNT})",
    )
    parser.add_argument("-n", "--namespace", help="namespace of the build (default: current)")
    parser.add_argument("--requirements", type=Path, help="requirements.txt to install first")
    parser.add_argument("--entrypoint", help="for a directory: the script the image runs")
    parser.add_argument(
        "--kaniko-image", help="Kaniko executor image (default: $KFKIT_KANIKO_IMAGE)"
    )
    parser.add_argument("--no-cache", action="store_true", help="disable Kaniko's layer cache")
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds (default: 1800)")
    parser.add_argument(
        "--dry-run", action="store_true", help="write the context and Job manifest only"
    )
    parser.add_argument(
        "--kubeconfig", help="kubeconfig file (default: in-cluster, ~/.kube/config)"
    )
    parser.add_argument("--context", dest="kube_context", help="kubeconfig context")
    parser.set_defaults(func=cmd_build)


def cmd_build(args: argparse.Namespace) -> int:
    from kfkit.builder import BuildConfig, build_image

    config = BuildConfig(
        source=args.source,
        image=args.image,
        tag=args.tag,
        base_image=args.base_image,
        pvc_name=args.pvc_name,
        pvc_mount_path=args.pvc_mount_path,
        registry_secret=args.registry_secret,
        service_account=args.service_account,
        namespace=args.namespace,
        requirements=args.requirements,
        entrypoint=args.entrypoint,
        cache=not args.no_cache,
        timeout=args.timeout,
        dry_run=args.dry_run,
        kubeconfig=args.kubeconfig,
        kube_context=args.kube_context,
    )
    if args.kaniko_image:
        config.kaniko_image = args.kaniko_image
    result = build_image(config)
    if result.mode == "cluster":
        print(f"{result.destination}@{result.digest}")
        return 0
    # Without a cluster nothing was pushed; a local build is still a useful result, and
    # no image at all is a failure the caller must see (--dry-run asked for none).
    return 0 if result.succeeded or args.dry_run else 1
