# MNIST trainers: the time-to-accuracy benchmark (not part of `make test`; docs/benchmarks.md).
# Runs every configuration through the local backend and writes reports/time_to_accuracy.json.

.PHONY: time-to-accuracy
time-to-accuracy: venv
	$(PY) benchmarks/time_to_accuracy.py --out reports/time_to_accuracy.json
