#!/usr/bin/env bash
# Run several points of the step-counted KS study at once on one GPU (each its own process;
# the GPU is shared) and pack what they wrote. A point is <experiment>:<steps>:<seed>.
# Points cut off by LIMIT (seconds, default 540) resume when the same wave is run again
# (finished runs skip training; an existing report skips evaluation).
#   usage: LIMIT=540 OUTDIR=$OUT experiments/ks_pderefiner/wave.sh ks_mse_unet:1000:0 ks_pderefiner:1000:0 ...
#   env:   ROOT (runs/ks_steps), DATA (datasets/ks), PDEKIT, TRAIN_ARGS (extra train overrides),
#          BASELINE_POINT (a point that also evaluates the numerical baseline)
set -uo pipefail
cd "$(dirname "$0")/../.."
PDEKIT=${PDEKIT:-python -m pdekit}
ROOT=${ROOT:-runs/ks_steps}
DATA=${DATA:-datasets/ks}
LIMIT=${LIMIT:-540}
OUTDIR=${OUTDIR:-$ROOT/logs}
mkdir -p "$OUTDIR" "$DATA"
export XLA_PYTHON_CLIENT_PREALLOCATE=false
start=$(date +%s)  # LIMIT counts from here, data generation included
for split in train valid test; do
  [ -f "$DATA/$split.h5" ] || $PDEKIT generate pde=ks split=$split output=$DATA/$split.h5 \
    progress=false >> "$OUTDIR/generate.log" 2>&1
done
pids=()
for point in "$@"; do
  IFS=: read -r exp steps seed <<< "$point"
  name=steps${steps}_seed${seed}
  if ls "$ROOT/$exp/$name"/eval/test-*/report.json >/dev/null 2>&1; then
    echo "$point: report exists" >> "$OUTDIR/wave.log"; continue
  fi
  baseline=0; [ "${BASELINE_POINT:-}" = "$point" ] && baseline=1
  BASELINE=$baseline ROOT=$ROOT DATA=$DATA PDEKIT=$PDEKIT DEADLINE=$(( start + LIMIT )) \
    bash experiments/ks_pderefiner/run_steps.sh "$exp" "$steps" "$seed" ${TRAIN_ARGS:-} \
    >> "$OUTDIR/${exp}_${name}.log" 2>&1 &
  pids+=($!)
done
for p in "${pids[@]}"; do wait "$p"; done
echo "wave wall (s): $(( $(date +%s) - start ))" >> "$OUTDIR/wave.log"
# what comes back: logs, configs, metrics and reports (no checkpoints)
tar czf "$OUTDIR/results.tar.gz" --exclude='checkpoints' --exclude='*.png' -C "$ROOT" . 2>/dev/null
for point in "$@"; do
  IFS=: read -r exp steps seed <<< "$point"
  d=$ROOT/$exp/steps${steps}_seed${seed}
  last=$(tail -n 1 "$d/metrics.jsonl" 2>/dev/null | cut -c1-160)
  echo "$point | $(ls "$d"/eval/test-*/report.json 2>/dev/null | head -1) | $last"
done
