#!/usr/bin/env bash
# One point of the 2D study (Kolmogorov flow: SineNet, the modern U-Net and FNO at ~35 M
# parameters; docs/evaluation.md "The 2D study"), on one GPU:
#   1. the ns2d_kolmogorov protocol data (128 train / 16 valid / 16 test), generated unless present;
#   2. training of <experiment> for exactly <steps> optimizer steps (the cosine schedule spans
#      them: each point is a complete run); a run cut short (DEADLINE, a GPU job's limit)
#      resumes from its last checkpoint when the same command is given again. The process's
#      peak device memory goes to $ROOT/<experiment>/<name>.memory.json (train_point.py);
#   3. evaluation of the LAST checkpoint's EMA weights on the 16 test trajectories over the
#      full horizon (197 model steps of 0.1 with the protocol's 201 stored frames), with the
#      enstrophy / energy ratios, spectra, snapshots; BASELINE=1 adds the numerical baseline.
# Wall time and steps/s are recorded (metrics.jsonl, the log) but decide nothing.
#
#   usage: experiments/ns2d_study/run_point.sh <experiment> <steps> [seed] [train overrides ...]
#   env:   ROOT (runs/ns2d_study), DATA (datasets/ns2d_kolmogorov), PYTHON (python),
#          PDEKIT (default "$PYTHON -m pdekit"), BASELINE=1 adds the numerical baseline at
#          BASELINE_RES (default [64,128]) with BASELINE_INNER solver sub-steps per model step
#          (default 16: advective CFL 0.47 at speed 7 on 64^2, 0.94 on 128^2; ETDRK4's limit is
#          1.35), GEN_ARGS / EVAL_ARGS extra overrides (tiny sizes for a CPU dry run: dry_run.sh),
#          DEADLINE (epoch seconds: training gets SIGTERM then, checkpoints and stops; the
#          evaluation is not started after it, and is stopped at it).
#   run:   $ROOT/<experiment>/steps<steps>_seed<seed>
set -euo pipefail
cd "$(dirname "$0")/../.."
[ $# -ge 2 ] || { echo "usage: $0 <experiment> <steps> [seed] [train overrides ...]" >&2; exit 2; }
EXP=$1; STEPS=$2; SEED=${3:-0}; shift $(( $# >= 3 ? 3 : 2 ))
PYTHON=${PYTHON:-python}
PDEKIT=${PDEKIT:-$PYTHON -m pdekit}
ROOT=${ROOT:-runs/ns2d_study}
DATA=${DATA:-datasets/ns2d_kolmogorov}
GEN_ARGS=${GEN_ARGS:-}
EVAL_ARGS=${EVAL_ARGS:-}
NAME=steps${STEPS}_seed${SEED}

for split in train valid test; do
  [ -f "$DATA/$split.h5" ] || $PDEKIT generate pde=ns2d_kolmogorov split=$split \
    output=$DATA/$split.h5 progress=false batch_size=${GEN_BATCH:-32} $GEN_ARGS
done

source experiments/lib/deadline.sh  # limit: TO, a `timeout` prefix ending at DEADLINE

start=$(date +%s)
mkdir -p "$ROOT/$EXP"
limit; $TO $PYTHON experiments/ns2d_study/train_point.py "$ROOT/$EXP/$NAME.memory.json" \
  experiment=$EXP run.root=$ROOT run.name=$NAME seed=$SEED train.steps=$STEPS \
  train.progress=false data.train_path=$DATA/train.h5 data.valid_path=$DATA/valid.h5 "$@"
echo "train wall (s): $(( $(date +%s) - start ))"

baseline=false
[ "${BASELINE:-0}" = 1 ] && baseline=true
start=$(date +%s)
limit; $TO $PDEKIT evaluate run=$ROOT/$EXP/$NAME data_path=$DATA/test.h5 which=last \
  baseline.enabled=$baseline baseline.resolutions=${BASELINE_RES:-[64,128]} \
  baseline.inner_steps=${BASELINE_INNER:-16} $EVAL_ARGS
echo "evaluate wall (s): $(( $(date +%s) - start ))"
