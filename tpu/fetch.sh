#!/usr/bin/env bash
# Copy a finished run's folder from worker 0 (the only writer) to this machine.
#   bash tpu/fetch.sh runs/pod               # -> ./runs/pod
set -euo pipefail
source "$(dirname "$0")/env.sh"
out="${1:-runs/pod}"
mkdir -p "$(dirname "$out")"
gcloud compute tpus tpu-vm scp --recurse --zone="$ZONE" --worker=0 "$TPU_NAME:~/thicket_jax/$out" "$(dirname "$out")/"
