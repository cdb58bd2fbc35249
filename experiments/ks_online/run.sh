#!/usr/bin/env bash
# Issue 17's study: the MSE U-Net (ks_mse_unet) trained for the same number of optimizer steps
# on three data sources, evaluated on the same 128 test trajectories (docs/results.md,
# "Online data"):
#   file        the fixed 2048-trajectory train split (datasets/ks/train.h5)
#   online      data.source=online with the data preset's defaults: a 2048-trajectory buffer,
#               5.12 new trajectories per step (1,024 every 200 steps; the 2026-12-01 run had
#               512 every 100), no limit on the total (22,016 distinct in 4k steps = 11x the file)
#   online2048  the same stream cut at data.online.total=2048: the file's trajectories (the
#               online stream is `pdekit generate split=train seed=0`'s) in another order
# Each arm is one experiments/ks_pderefiner/wave.sh point (its own ROOT and overrides), all
# three side by side on one GPU (their steps/s are shares of it; benchmarks/online.py measures
# the overhead alone). A cut-off arm resumes when the same command is given again; finished
# arms are skipped (wave.sh's rule: an existing report).
#   usage: STEPS=4000 SEED=0 LIMIT=520 OUTDIR=$OUT experiments/ks_online/run.sh [arm ...]
#   env:   ROOT (runs/ks_online), FILE_ROOT (runs/ks_steps: the file arm is the step study's
#          point of the same steps and seed), DATA (datasets/ks), PDEKIT, EXTRA (overrides
#          for every arm, e.g. tiny sizes for a CPU dry run)
set -uo pipefail
cd "$(dirname "$0")/../.."
PDEKIT=${PDEKIT:-python -m pdekit}
ROOT=${ROOT:-runs/ks_online}
FILE_ROOT=${FILE_ROOT:-runs/ks_steps}
DATA=${DATA:-datasets/ks}
STEPS=${STEPS:-4000}
SEED=${SEED:-0}
LIMIT=${LIMIT:-540}
OUTDIR=${OUTDIR:-$ROOT/logs}
EXTRA=${EXTRA:-}
mkdir -p "$OUTDIR" "$DATA"
start=$(date +%s)
# the data first, once: the arms' waves would otherwise race to generate the same files
for split in train valid test; do
  [ -f "$DATA/$split.h5" ] || $PDEKIT generate pde=ks split=$split output=$DATA/$split.h5 \
    progress=false ${GEN_ARGS:-} >> "$OUTDIR/generate.log" 2>&1
done
left=$(( LIMIT - ($(date +%s) - start) ))
arms=("$@"); [ ${#arms[@]} -gt 0 ] || arms=(file online online2048)
pids=()
for arm in "${arms[@]}"; do
  case $arm in
    file) root=$FILE_ROOT; args="" ;;
    online) root=$ROOT/online; args="pde=ks data.source=online" ;;
    online2048) root=$ROOT/online2048; args="pde=ks data.source=online data.online.total=2048" ;;
    *) echo "unknown arm '$arm' (file, online, online2048)" >&2; exit 2 ;;
  esac
  ROOT=$root DATA=$DATA PDEKIT=$PDEKIT LIMIT=$left OUTDIR=$OUTDIR/$arm TRAIN_ARGS="$args $EXTRA" \
    bash experiments/ks_pderefiner/wave.sh "ks_mse_unet:$STEPS:$SEED" \
    > "$OUTDIR/online_${arm}.log" 2>&1 &
  pids+=($!)
done
for p in "${pids[@]}"; do wait "$p"; done
echo "online study wall (s): $(( $(date +%s) - start ))" >> "$OUTDIR/online.log"
