#!/usr/bin/env bash
# The GPU benchmark groups of issues 15 and 17, each sized for one 10-minute device call on one
# H200 (nothing else running). Every script writes its JSON under $DEST; each piece has
# its own time limit so one slow piece cannot take the others with it.
#   usage: DEST=$OUT/bench benchmarks/h200_session.sh A|B|C
#   A: online-data overhead (issue 17); the replaced SineNet / MP-PDE implementations beside
#      the new defaults; U-Net and PDE-Refiner fp32 / bf16 beside pdequinox ModernUNet h96
#   B: U-Net block layouts; the PyTorch peer (eager and torch.compile); solvers against
#      exponax; FNO beside pdequinox ClassicFNO; micro-steps
#   C: what A left unmeasured on 2026-12-02: the online overhead at the ks preset's refresh
#      (1024:200), PDE-Refiner fp32 / bf16, SineNet's upsampling pairs and MP-PDE's rolled
#      messages (now rematerialised) beside gather
#   env: PY (python3), PDEARENA_SRC (B: a PDEArena tree, default .whl/pdearena)
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-python3}
DEST=${DEST:-benchmarks/results/h200}
mkdir -p "$DEST"
LOGS=${LOGS:-$DEST.logs}  # one log per piece, packed into $DEST/logs.tar.gz after each piece
mkdir -p "$LOGS"          # (a device call returns at most 8 files: JSONs, logs.tar.gz, 2 texts)
piece() {  # piece <name> <seconds> <command ...>
  local name=$1 secs=$2; shift 2
  local t0=$(date +%s)
  timeout -s TERM -k 20 "$secs" "$@" > "$LOGS/$name.log" 2>&1
  echo "$name: rc=$? $(( $(date +%s) - t0 )) s" | tee -a "$DEST/pieces.txt"
  tar czf "$DEST/logs.tar.gz" -C "$LOGS" .
}
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv \
  > "$DEST/gpu.txt" 2>&1
date -u +%FT%TZ >> "$DEST/gpu.txt"
case ${1:-} in
  A)
    piece online 140 $PY benchmarks/online.py --refresh 512:100,128:25 --buffer 2048 \
      --periods 3 --out "$DEST/online.json"
    piece models_mp_sine 180 $PY benchmarks/models.py --dtypes fp32 --timeout 60 \
      --presets sinenet8,sinenet8_cubic,sinenet8_resize,mppde2d,mppde2d_roll,mppde1d,mppde1d_roll \
      --out "$DEST/models_mp_sine.json"
    piece models_unet 260 $PY benchmarks/models.py --dtypes fp32,bf16 --timeout 70 \
      --presets unetmod1d_64,pdeqx_modernunet1d_h96,pderefiner --out "$DEST/models_unet.json"
    ;;
  B)
    piece unet_layout 130 $PY benchmarks/unet_layout.py --out "$DEST/unet_layout.json"
    piece torch_peer 170 $PY benchmarks/torch_peer.py --pdearena-src "${PDEARENA_SRC:-.whl/pdearena}" \
      --out "$DEST/torch_peer.json"
    piece solvers 120 $PY benchmarks/solvers.py --out "$DEST/solvers.json"
    piece models_fno 50 $PY benchmarks/models.py --dtypes fp32 --timeout 40 \
      --presets fno1d_m32,fno1d,pdeqx_classicfno1d --out "$DEST/models_fno.json"
    piece microsteps 60 $PY benchmarks/training.py --scaling --presets fno1d --devices 1 \
      --micro-steps 1,4 --out "$DEST/microsteps.json"
    ;;
  C)
    piece online_1024 110 $PY benchmarks/online.py --refresh 1024:200 --buffer 2048 \
      --periods 3 --out "$DEST/online_1024.json"
    piece models_refiner 120 $PY benchmarks/models.py --dtypes fp32,bf16 --timeout 70 \
      --skip-peers --presets pderefiner --out "$DEST/models_refiner.json"
    piece models_sine 120 $PY benchmarks/models.py --dtypes fp32 --timeout 50 --skip-peers \
      --presets sinenet8,sinenet8_cubic,sinenet8_resize --out "$DEST/models_sine.json"
    piece models_mp 120 $PY benchmarks/models.py --dtypes fp32 --timeout 40 --skip-peers \
      --presets mppde1d,mppde1d_roll,mppde2d,mppde2d_roll --out "$DEST/models_mp.json"
    ;;
  *) echo "usage: $0 A|B|C" >&2; exit 2 ;;
esac
