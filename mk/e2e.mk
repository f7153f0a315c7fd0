# End-to-end run on a real cluster (kind, minikube, ...) with the training operator installed by
# our chart (`kfkit platform upgrade`). Not part of `make test`: it needs a cluster, so it first
# checks that one answers and serves the PyTorchJob/TFJob CRDs, and stops at once with one line
# saying what is missing when not. Settings (KUBECONFIG, KFKIT_E2E_CONTEXT, KFKIT_E2E_NAMESPACE,
# KFKIT_E2E_IMAGE, KFKIT_E2E_TIMEOUT) are described in docs/kubernetes.md.

.PHONY: e2e-cluster
e2e-cluster: venv
	@$(PY) tests/kubernetes/e2e_cluster.py --check
	$(PY) tests/kubernetes/e2e_cluster.py
