#!/bin/sh
# Start JupyterLab the way Kubeflow's notebook controller expects: served under $NB_PREFIX
# (the controller sets it to /notebook/<namespace>/<name>), on port 8888, with the notebook
# files in $HOME. Kubeflow authenticates users before requests reach the pod, so the server
# runs without a token there; outside Kubeflow, set JUPYTER_TOKEN.
set -eu

: "${NB_PREFIX:=/}"
: "${NB_PORT:=8888}"
: "${HOME:=/home/jovyan}"

# The home directory may be a brand-new, empty volume: everything Jupyter writes at start
# (runtime files, settings, workspaces) goes under it and is created on demand.
mkdir -p "${HOME}"
cd "${HOME}"

exec jupyter lab \
    --ServerApp.ip=0.0.0.0 \
    --ServerApp.port="${NB_PORT}" \
    --ServerApp.port_retries=0 \
    --ServerApp.base_url="${NB_PREFIX}" \
    --ServerApp.root_dir="${HOME}" \
    --ServerApp.open_browser=False \
    --IdentityProvider.token="${JUPYTER_TOKEN:-}" \
    --ServerApp.password='' \
    "$@"
