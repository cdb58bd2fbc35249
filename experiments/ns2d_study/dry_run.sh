#!/usr/bin/env bash
# CPU dry run of the 2D study at tiny sizes: the same run.sh / run_point.sh / summarize.py path
# as on the GPU (generate -> train -> evaluate with the baseline -> pack -> summarise), with a
# 32^2 Kolmogorov solve (2 time units, 0.5 of them burn-in), 4 trajectories per split, 4
# optimizer steps, tiny widths of every preset. It proves the pipeline, not the models.
#   usage: experiments/ns2d_study/dry_run.sh [points ...]    (default: every experiment, 4 steps)
#   env:   ROOT (runs/ns2d_dry), DATA (datasets/ns2d_dry), PYTHON (.venv/bin/python if present),
#          MAX_PARALLEL (2), OUT (summary directory, default $ROOT/summary)
set -euo pipefail
cd "$(dirname "$0")/../.."
export PYTHON=${PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python )}
export ROOT=${ROOT:-runs/ns2d_dry} DATA=${DATA:-datasets/ns2d_dry}
export STEPS=${STEPS:-4} MAX_PARALLEL=${MAX_PARALLEL:-2} LIMIT=${LIMIT:-1800}
export GEN_ARGS="pde.solve_resolution=32 pde.resolution=32 pde.final_time=2.0 pde.warmup=0.5 num_trajectories=4"
export TRAIN_ARGS="train.batch_size=4 train.warmup_steps=1 train.log_every=2 train.valid_every=4 \
train.ckpt_every=2 data.valid_trajectories=2 data.rollout_steps=2 data.valid_batches=1"
export ARGS_ns2d_sinenet="model.hidden_channels=8 model.num_levels=2"
export ARGS_ns2d_sinenet2=$ARGS_ns2d_sinenet ARGS_ns2d_sinenet_zeros=$ARGS_ns2d_sinenet
export ARGS_ns2d_unet35m="model.hidden_channels=8 model.channel_multipliers=[1,2] model.num_blocks=1"
export ARGS_ns2d_fno35m="model.width=8 model.modes=4 model.projection_channels=16"
export EVAL_ARGS="bootstrap_resamples=100" BASELINE_RES="[32]" BASELINE_INNER=8
bash experiments/ns2d_study/run.sh "$@"
$PYTHON experiments/ns2d_study/summarize.py "$ROOT" --out "${OUT:-$ROOT/summary}"
