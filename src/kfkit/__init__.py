"""kfkit: run Kubeflow PyTorchJob/TFJob manifests locally or on a cluster; verify the platform."""

__version__ = "0.1.0"
