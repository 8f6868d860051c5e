# Settings shared by the tpu/ scripts. Edit, or override any of them in the environment.
#   source tpu/env.sh
: "${TPU_NAME:=thicket-v4-16}"              # the TPU VM slice
: "${ZONE:=us-central2-b}"                  # a zone that offers ACCELERATOR
: "${ACCELERATOR:=v4-16}"                   # v4-16 = 8 chips on 2 workers (hosts)
: "${RUNTIME:=tpu-ubuntu2204-base}"         # TPU VM software version
: "${REPO:=}"                                # git URL the workers clone thicket_jax from (required by install.sh)
: "${BRANCH:=main}"
export TPU_NAME ZONE ACCELERATOR RUNTIME REPO BRANCH
