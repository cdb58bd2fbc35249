#!/usr/bin/env bash
# Merge the per-model reports of the KS study into one comparison with τ ratios against the
# MSE-trained U-Net (paired bootstrap over the 128 test trajectories).
#   usage: experiments/ks_pderefiner/merge.sh [report dir ...]
#   default inputs: $ROOT/<experiment>/budget/eval/test for the four experiments
set -euo pipefail
cd "$(dirname "$0")/../.."
PDEKIT=${PDEKIT:-python -m pdekit}
ROOT=${ROOT:-runs/ks_study}
OUT=${STUDY_OUT:-docs/results/ks_pderefiner}
if [ $# -gt 0 ]; then
  list=$(IFS=,; echo "$*")
else
  list=$ROOT/ks_mse_unet/budget/eval/test,$ROOT/ks_pderefiner/budget/eval/test
  list=$list,$ROOT/ks_fno/budget/eval/test,$ROOT/ks_mppde/budget/eval/test
fi
$PDEKIT evaluate "merge=[$list]" comparison_dir=$OUT reference=${REFERENCE:-ks_mse_unet/budget} \
  "title='KS: PDE-Refiner study at a fixed wall-clock budget'"
