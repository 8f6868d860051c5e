#!/usr/bin/env bash
# Delete the slice (stops the billing).
#   bash tpu/delete.sh
set -euo pipefail
source "$(dirname "$0")/env.sh"
gcloud compute tpus tpu-vm delete "$TPU_NAME" --zone="$ZONE" --quiet
