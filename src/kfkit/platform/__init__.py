"""The Kubeflow training platform: its Helm chart, the pinned tools, and a local API server.

- ``tools``: where the pinned helm/kubectl/kube-apiserver/etcd/scanners are, or why not.
- ``apiserver``: ``LocalApiServer``, a real kube-apiserver + etcd on loopback for tests.
- ``helm``: running helm on the chart (render, lint, install, upgrade, rollback).
- ``podsecurity``: the Pod Security Standards "restricted" check for every pod template.
"""
