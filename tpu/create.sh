#!/usr/bin/env bash
# Create a TPU VM slice (all its workers).
#   bash tpu/create.sh                       # uses tpu/env.sh: TPU_NAME, ZONE, ACCELERATOR, RUNTIME
#   ACCELERATOR=v5litepod-16 ZONE=us-west4-a bash tpu/create.sh
set -euo pipefail
source "$(dirname "$0")/env.sh"
gcloud compute tpus tpu-vm create "$TPU_NAME" --zone="$ZONE" \
  --accelerator-type="$ACCELERATOR" --version="$RUNTIME"
gcloud compute tpus tpu-vm describe "$TPU_NAME" --zone="$ZONE" --format="value(state,networkEndpoints)"
