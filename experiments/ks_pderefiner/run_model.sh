#!/usr/bin/env bash
# One model of the KS PDE-Refiner study (docs/results.md), in one command on one GPU:
#   1. the KS protocol data (2048 train / 128 valid / 128 test), generated unless present;
#   2. training of <experiment> for a wall-clock budget (train.time_budget_s, fp32);
#   3. evaluation on the 128 test trajectories over the full horizon.
# Every model of the study gets the same budget and its own call; the per-model reports are
# merged afterwards with experiments/ks_pderefiner/merge.sh.
#
#   usage: experiments/ks_pderefiner/run_model.sh <experiment> [train overrides ...]
#   env:   BUDGET (s, default 360), ROOT (default runs/ks_study), DATA (default datasets/ks),
#          BASELINE=1 adds the numerical baseline, SAMPLES (refiner samples, default 4),
#          GEN_ARGS / EVAL_ARGS extra overrides (tiny sizes for a CPU dry run),
#          PDEKIT (default "python -m pdekit").
set -euo pipefail
cd "$(dirname "$0")/../.."
[ $# -ge 1 ] || { echo "usage: $0 <experiment> [train overrides ...]" >&2; exit 2; }
EXP=$1; shift
PDEKIT=${PDEKIT:-python -m pdekit}
BUDGET=${BUDGET:-360}
ROOT=${ROOT:-runs/ks_study}
DATA=${DATA:-datasets/ks}
GEN_ARGS=${GEN_ARGS:-}
EVAL_ARGS=${EVAL_ARGS:-}

for split in train valid test; do
  [ -f "$DATA/$split.h5" ] || $PDEKIT generate pde=ks split=$split output=$DATA/$split.h5 \
    progress=false $GEN_ARGS
done

start=$(date +%s)
$PDEKIT train experiment=$EXP run.root=$ROOT run.name=budget train.time_budget_s=$BUDGET \
  train.progress=false data.train_path=$DATA/train.h5 data.valid_path=$DATA/valid.h5 "$@"
echo "train wall (s): $(( $(date +%s) - start ))"

baseline=false
[ "${BASELINE:-0}" = 1 ] && baseline=true
$PDEKIT evaluate run=$ROOT/$EXP/budget data_path=$DATA/test.h5 \
  num_samples=${SAMPLES:-4} baseline.enabled=$baseline baseline.inner_steps=4 $EVAL_ARGS
