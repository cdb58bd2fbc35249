#!/usr/bin/env bash
# One point of the step-counted KS PDE-Refiner study (docs/results.md), on one GPU:
#   1. the KS protocol data (2048 train / 128 valid / 128 test), generated unless present;
#   2. training of <experiment> for exactly <steps> optimizer steps (the cosine schedule spans
#      them: each point is a complete run); a run cut short (a GPU job's time limit) resumes
#      where its last checkpoint left it when the same command is given again;
#   3. evaluation of the LAST checkpoint's EMA weights (as the reference code evaluates) on the
#      128 test trajectories over the full horizon.
# Wall time and steps/s are recorded (metrics.jsonl, the log) but decide nothing.
#
#   usage: experiments/ks_pderefiner/run_steps.sh <experiment> <steps> [seed] [train overrides ...]
#   env:   ROOT (default runs/ks_steps), DATA (default datasets/ks), BASELINE=1 adds the
#          numerical baseline, SAMPLES (refiner samples, default 1), GEN_ARGS / EVAL_ARGS extra
#          overrides (tiny sizes for a CPU dry run), PDEKIT (default "python -m pdekit"),
#          DEADLINE (epoch seconds: training gets SIGTERM then, checkpoints and stops; the
#          evaluation is not started after it).
#   run:   $ROOT/<experiment>/steps<steps>_seed<seed>
set -euo pipefail
cd "$(dirname "$0")/../.."
[ $# -ge 2 ] || { echo "usage: $0 <experiment> <steps> [seed] [train overrides ...]" >&2; exit 2; }
EXP=$1; STEPS=$2; SEED=${3:-0}; shift $(( $# >= 3 ? 3 : 2 ))
PDEKIT=${PDEKIT:-python -m pdekit}
ROOT=${ROOT:-runs/ks_steps}
DATA=${DATA:-datasets/ks}
GEN_ARGS=${GEN_ARGS:-}
EVAL_ARGS=${EVAL_ARGS:-}
NAME=steps${STEPS}_seed${SEED}

for split in train valid test; do
  [ -f "$DATA/$split.h5" ] || $PDEKIT generate pde=ks split=$split output=$DATA/$split.h5 \
    progress=false $GEN_ARGS
done

source experiments/lib/deadline.sh  # limit: TO, a `timeout` prefix ending at DEADLINE

start=$(date +%s)
limit; $TO $PDEKIT train experiment=$EXP run.root=$ROOT run.name=$NAME seed=$SEED train.steps=$STEPS \
  train.progress=false data.train_path=$DATA/train.h5 data.valid_path=$DATA/valid.h5 "$@"
echo "train wall (s): $(( $(date +%s) - start ))"

baseline=false
[ "${BASELINE:-0}" = 1 ] && baseline=true
limit; $TO $PDEKIT evaluate run=$ROOT/$EXP/$NAME data_path=$DATA/test.h5 which=last \
  num_samples=${SAMPLES:-1} baseline.enabled=$baseline baseline.inner_steps=4 $EVAL_ARGS
