#!/usr/bin/env bash
# The 2D study on one GPU: several points at once (each its own process; the GPU is shared),
# then everything they wrote packed into one results.tar.gz. A point is
# <experiment>:<steps>:<seed>; without arguments the study's points at STEPS (default 2000):
#   ns2d_sinenet (SineNet-8) seeds 0, 1; ns2d_unet35m seeds 0, 1; ns2d_sinenet2; ns2d_fno35m;
#   ns2d_sinenet_zeros (SineNet-8 with zero padding: the padding ablation).
# Points cut off by LIMIT (seconds from the start of this script, data generation included,
# default 520) resume when the same command is run again: finished runs skip training, an
# existing report skips evaluation, existing data files skip generation.
#
#   usage: LIMIT=520 OUTDIR=$OUT experiments/ns2d_study/run.sh [points ...]
#   env:   ROOT (runs/ns2d_study), DATA (datasets/ns2d_kolmogorov), PYTHON (python), PDEKIT,
#          STEPS (2000, for the default points), GEN_ARGS / EVAL_ARGS (as run_point.sh),
#          GEN_BATCH (trajectories per compiled solve, default 32: a cut-off split resumes
#          after its last finished batch),
#          TRAIN_ARGS (train overrides for every point), ARGS_<experiment> (train overrides for
#          that experiment's points only, e.g. ARGS_ns2d_fno35m="model.modes=8"),
#          BASELINE_POINT (the point whose evaluation adds the numerical baseline; default
#          the first ns2d_unet35m point), MEM_FRACTION (optional cap per process,
#          XLA_PYTHON_CLIENT_MEM_FRACTION; none by default, memory grows as needed),
#          JAX_COMPILATION_CACHE_DIR (default $ROOT/.jax_cache: a resumed point skips compiling),
#          MAX_PARALLEL (points running at once; default 0: all).
#   out:   $OUTDIR/results.tar.gz ($ROOT without checkpoints and the compilation cache; the
#          logs are in its logs/), $OUTDIR/wave.log, one status line per point on stdout. Two
#          files only: a GPU job's $OUT returns at most 8.
set -uo pipefail
cd "$(dirname "$0")/../.."
PYTHON=${PYTHON:-python}
PDEKIT=${PDEKIT:-$PYTHON -m pdekit}
ROOT=${ROOT:-runs/ns2d_study}
DATA=${DATA:-datasets/ns2d_kolmogorov}
LIMIT=${LIMIT:-520}
STEPS=${STEPS:-2000}
OUTDIR=${OUTDIR:-$ROOT}
LOGS=$ROOT/logs
mkdir -p "$OUTDIR" "$DATA" "$LOGS"
export XLA_PYTHON_CLIENT_PREALLOCATE=false
export JAX_COMPILATION_CACHE_DIR=${JAX_COMPILATION_CACHE_DIR:-$ROOT/.jax_cache}
[ -n "${MEM_FRACTION:-}" ] && export XLA_PYTHON_CLIENT_MEM_FRACTION=$MEM_FRACTION
start=$(date +%s)  # LIMIT counts from here, data generation included
points=("$@")
if [ ${#points[@]} -eq 0 ]; then
  points=(ns2d_sinenet:$STEPS:0 ns2d_sinenet:$STEPS:1 ns2d_unet35m:$STEPS:0 ns2d_unet35m:$STEPS:1
          ns2d_sinenet2:$STEPS:0 ns2d_fno35m:$STEPS:0 ns2d_sinenet_zeros:$STEPS:0)
fi
if [ -z "${BASELINE_POINT:-}" ]; then
  for p in "${points[@]}"; do [ "${p%%:*}" = ns2d_unet35m ] && { BASELINE_POINT=$p; break; }; done
  BASELINE_POINT=${BASELINE_POINT:-${points[0]}}
fi

# data: the three splits at once, each timed (data.json describes them for the write-up)
gen=()
for split in train valid test; do
  [ -f "$DATA/$split.h5" ] && continue
  ( t0=$(date +%s)  # each attempt's seconds, one line each (a cut-off split resumes)
    timeout -s TERM -k 30 $(( LIMIT > 10 ? LIMIT - 10 : 1 )) $PDEKIT generate pde=ns2d_kolmogorov \
      split=$split output=$DATA/$split.h5 progress=false batch_size=${GEN_BATCH:-32} ${GEN_ARGS:-}
    rc=$?; echo "$(( $(date +%s) - t0 )) $rc" >> "$LOGS/generate_$split.walls"
  ) >> "$LOGS/generate_$split.log" 2>&1 &
  gen+=($!)
done
for p in "${gen[@]}"; do wait "$p"; done
if [ -f "$DATA/train.h5" ] && [ -f "$DATA/valid.h5" ] && [ -f "$DATA/test.h5" ]; then
  $PYTHON experiments/ns2d_study/data_info.py "$DATA" "$LOGS" > "$ROOT/data.json" \
    2>> "$LOGS/wave.log" || true
else
  echo "data incomplete after $(( $(date +%s) - start )) s: run the same command again" \
    | tee -a "$LOGS/wave.log"
fi

pids=()
for point in "${points[@]}"; do
  IFS=: read -r exp steps seed <<< "$point"
  name=steps${steps}_seed${seed}
  if ls "$ROOT/$exp/$name"/eval/test-*/report.json >/dev/null 2>&1; then
    echo "$point: report exists" >> "$LOGS/wave.log"; continue
  fi
  [ -f "$DATA/train.h5" ] && [ -f "$DATA/valid.h5" ] && [ -f "$DATA/test.h5" ] || continue
  baseline=0; [ "$BASELINE_POINT" = "$point" ] && baseline=1
  var="ARGS_$exp"
  while [ "${MAX_PARALLEL:-0}" -gt 0 ] && [ "$(jobs -rp | wc -l)" -ge "${MAX_PARALLEL}" ]; do
    wait -n
  done
  # shellcheck disable=SC2086  # overrides are split on spaces on purpose
  BASELINE=$baseline ROOT=$ROOT DATA=$DATA PYTHON=$PYTHON PDEKIT=$PDEKIT \
    DEADLINE=$(( start + LIMIT )) \
    bash experiments/ns2d_study/run_point.sh "$exp" "$steps" "$seed" ${TRAIN_ARGS:-} ${!var:-} \
    >> "$LOGS/${exp}_${name}.log" 2>&1 &
  pids+=($!)
  echo "$point: started (pid $!, baseline $baseline)" >> "$LOGS/wave.log"
done
for p in "${pids[@]}"; do wait "$p"; done
echo "wave wall (s): $(( $(date +%s) - start ))" >> "$LOGS/wave.log"
# what comes back: logs, configs, metrics, memory, reports and their figures (no checkpoints)
[ "$(cd "$OUTDIR" && pwd)" = "$(cd "$LOGS" && pwd)" ] || cp "$LOGS/wave.log" "$OUTDIR/wave.log"
pack=$(mktemp "${TMPDIR:-/tmp}/ns2d_results.XXXXXX")  # outside $ROOT: tar reads a still tree
tar czf "$pack" --exclude='checkpoints' --exclude='.jax_cache' --exclude='results.tar.gz' \
  --exclude=".lock" -C "$ROOT" . && chmod 644 "$pack" && mv "$pack" "$OUTDIR/results.tar.gz"
for point in "${points[@]}"; do
  IFS=: read -r exp steps seed <<< "$point"
  d=$ROOT/$exp/steps${steps}_seed${seed}
  last=$(tail -n 1 "$d/metrics.jsonl" 2>/dev/null | cut -c1-160)
  echo "$point | $(ls "$d"/eval/test-*/report.json 2>/dev/null | head -1) | $last"
done
