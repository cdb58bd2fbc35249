#!/usr/bin/env bash
# The main job (`make demo`): a small KS set by the real protocol, a small MSE U-Net and a small
# PDE-Refiner on the same backbone, both evaluated against each other and against the coarse
# numerical baseline. Ends with runs/demo/comparison/report.md and plots.
# Sizes are for a 2-core CPU (under 10 minutes with the install); the GPU is used automatically
# when present. On a 2-core CPU the refiner's stochastic rollout (4 network calls per step)
# dominates the evaluation, hence data stored at N = 64, 10 test trajectories x 40 steps and
# one refiner sample by default (DEMO_SAMPLES=2 adds the spread-error section, about +60 s).
set -euo pipefail
cd "$(dirname "$0")/../.."
PDEKIT=${PDEKIT:-.venv/bin/pdekit}
DATA=datasets/ks_demo
RES=${DEMO_RES:-64}            # stored N: the solve runs at the protocol's N = 256, the file
                               # keeps modes |k| < 32 (4x cheaper networks on a CPU)
STEPS=${DEMO_STEPS:-3000}      # upper bound; the wall-clock budget below ends each run
BUDGET=${DEMO_BUDGET:-80}      # seconds of training per model (compilation included)
mkdir -p "$DATA"

for split in train valid test; do
  case $split in train) n=${DEMO_TRAIN:-256};; *) n=${DEMO_EVAL:-16};; esac
  if [ ! -f "$DATA/$split.h5" ]; then
    "$PDEKIT" generate pde=ks split=$split num_trajectories=$n pde.resolution=$RES \
      output=$DATA/$split.h5
  fi
done

# Validation during training: on an accelerator, yes; on a CPU it is off by default, because
# compiling the refiner's validation (one-step loss and rollout) takes about 50 s of an 80 s
# budget on 2 cores. The evaluation below is the measurement either way.
BACKEND=$("${DEMO_PYTHON:-.venv/bin/python}" -c "import jax; print(jax.default_backend())" 2>/dev/null || echo cpu)
case ${DEMO_VALIDATE:-$BACKEND} in
  cpu|0|false) VALID=null;;
  *) VALID=$DATA/valid.h5;;
esac

for exp in demo_ks_unet demo_ks_refiner; do
  "$PDEKIT" train experiment=$exp run.root=runs/demo run.name=default train.steps=$STEPS \
    train.time_budget_s=$BUDGET train.log_every=10 \
    data.train_path=$DATA/train.h5 data.valid_path=$VALID
done

"$PDEKIT" evaluate "run=[runs/demo/demo_ks_unet/default,runs/demo/demo_ks_refiner/default]" \
  data_path=$DATA/test.h5 comparison_dir=runs/demo/comparison reference=demo_ks_unet/default \
  baseline.enabled=true baseline.inner_steps=4 num_samples=${DEMO_SAMPLES:-1} time_rollout=false \
  max_trajectories=${DEMO_EVAL_TRAJ:-10} rollout_steps=${DEMO_ROLLOUT:-40}
echo "report: runs/demo/comparison/report.md"
