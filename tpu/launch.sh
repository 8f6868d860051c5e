#!/usr/bin/env bash
# Run `thicket run` on every worker of the slice at once; process 0 writes OUT on its own disk.
#   bash tpu/launch.sh --task gsm8k --population 512 --top-k 1,5,50 --out runs/pod_gsm8k
#   bash tpu/launch.sh --population 64              # any `thicket run` flags; --out defaults to runs/pod
# jax.distributed starts by itself on a TPU VM (coordinator = worker 0, found from the TPU metadata),
# so no --coordinator-address is needed here. Rerun the same command to resume an interrupted run.
set -euo pipefail
source "$(dirname "$0")/env.sh"
args="$*"
[[ "$args" == *"--out"* ]] || args="$args --out runs/pod"
gcloud compute tpus tpu-vm ssh "$TPU_NAME" --zone="$ZONE" --worker=all --command="
  source ~/thicket-venv/bin/activate && cd ~/thicket_jax && thicket run --no-progress $args 2>&1 | tee -a ~/thicket_run.log
"
