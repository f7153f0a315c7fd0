# MNIST trainers: the benchmarks (not part of `make test`; docs/benchmarks.md).
# Each runs its configurations through the local backend and writes one JSON under reports/.

.PHONY: time-to-accuracy bench-device
time-to-accuracy: venv
	$(PY) benchmarks/time_to_accuracy.py --out reports/time_to_accuracy.json

# The NCCL PyTorchJob on the GPU (skipped, and said so, without one) and CPU scaling of
# the fast recipe at 1, 2, 4 and 8 replicas; sized for one GPU and 16 cores (< 8 minutes).
bench-device: venv
	$(PY) benchmarks/device.py --out reports/device.json
