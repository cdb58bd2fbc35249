"""The PyTorch peer of the U-Net rows: PDEArena's ``Unetmod-1d-64`` training step, eager and
``torch.compile``, fp32 and bf16 autocast, on the same device as ``benchmarks/models.py``.

The network is PDEArena's own module, imported from a PDEArena source tree given with
``--pdearena-src`` (a checkout of github.com/pdearena/pdearena; nothing of it is copied into
pdekit). It is built as the PDE-Refiner KS model builds it: ``Unetmod-1d-64`` (hidden 64,
GroupNorm, multipliers 1, 2, 2, 4, two blocks), 2 input frames (history + estimate), 1 output
frame, ``param_conditioning="scalar_2"`` plus the refinement-step embedding, GELU, and
circular padding (set the way PDEArena sets it: ``nn.Conv1d`` with ``padding_mode``). Its
parameter count is printed and must be 53,924,225, the count of pdekit's
``unetmod1d_64`` refiner backbone.

One training step: Adam (lr 1e-4), MSE against a random target, ``zero_grad(set_to_none)``.
bf16 rows run the forward and loss under ``torch.autocast(dtype=torch.bfloat16)`` with fp32
master weights (PyTorch's standard mixed precision). Timing: warm-up steps (compilation
included; ``--compile-warmup`` of them for compiled rows, so compilation finishes before
timing), then the median of ``--repeats`` repeats of R back-to-back steps, each lasting at
least ``--min-time`` s, with ``torch.cuda.synchronize()`` around each repeat. FLOPs per step
come from ``torch.utils.flop_counter.FlopCounterMode`` on one eager forward + backward; MFU
uses the dense peak of ``benchmarks/_peaks.py``.

    python benchmarks/torch_peer.py --pdearena-src /path/to/pdearena --out torch_peer.json
    python benchmarks/torch_peer.py --pdearena-src ... --small      # CPU smoke run, eager only
"""

from __future__ import annotations

import argparse
import functools
import json
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _peaks import mfu  # noqa: E402  (benchmarks/ is not a package)

PDEKIT_PARAMS = 53_924_225  # pdekit's unetmod1d_64 as the refiner backbone (2 frames, 3 scalars)


def build(torch, src: Path, hidden: int):
    """PDEArena's conditioned 1D U-Net with circular padding, as its PDE-Refiner builds it."""
    if not (src / "pdearena" / "modules" / "conditioned" / "oned_unet.py").is_file():
        raise SystemExit(f"torch_peer: {src} is not a PDEArena source tree (no "
                         "pdearena/modules/conditioned/oned_unet.py); pass --pdearena-src")
    sys.path.insert(0, str(src))
    conv1d = torch.nn.Conv1d
    torch.nn.Conv1d = functools.partial(conv1d, padding_mode="circular")
    try:
        from pdearena.modules.conditioned.oned_unet import Unet
        net = Unet(n_input_scalar_components=1, n_input_vector_components=0,
                   n_output_scalar_components=1, n_output_vector_components=0,
                   time_history=2, time_future=1, hidden_channels=hidden, activation="gelu",
                   norm=True, param_conditioning="scalar_2", n_dims=1)
    finally:
        torch.nn.Conv1d = conv1d
    return net


def run(args) -> list[dict]:
    import torch

    dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    batch, n, hidden = (8, 64, 16) if args.small else (args.batch, args.n, 64)
    net = build(torch, args.pdearena_src, hidden).to(dev)
    params = sum(p.numel() for p in net.parameters())
    g = torch.Generator(device="cpu").manual_seed(0)
    x = torch.randn(batch, 2, 1, n, generator=g).to(dev)
    y = torch.randn(batch, 1, 1, n, generator=g).to(dev)
    t = torch.rand(batch, generator=g).mul(1000.0).to(dev)
    z = torch.rand(batch, 2, generator=g).mul(5.0).to(dev)
    kind = torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu"

    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as fc:
        torch.nn.functional.mse_loss(net(x, time=t, z=z), y).backward()
    flops = float(fc.get_total_flops())
    net.zero_grad(set_to_none=True)

    modes = [m for m in args.modes.split(",") if m]
    if args.small:
        modes = [m for m in modes if m.startswith("eager")]
    rows = []
    for mode in modes:
        compiled, dtype = mode.split("-")
        model = build(torch, args.pdearena_src, hidden).to(dev)
        model.load_state_dict(net.state_dict())
        fwd = torch.compile(model) if compiled == "compile" else model
        opt = torch.optim.Adam(model.parameters(), lr=1e-4)
        autocast = (torch.autocast(dev.type, dtype=torch.bfloat16) if dtype == "bf16"
                    else torch.autocast(dev.type, enabled=False))

        def step(opt=opt, fwd=fwd, autocast=autocast):
            opt.zero_grad(set_to_none=True)
            with autocast:
                loss = torch.nn.functional.mse_loss(fwd(x, time=t, z=z).float(), y)
            loss.backward()
            opt.step()
            return loss

        def sync():
            if dev.type == "cuda":
                torch.cuda.synchronize()

        t0 = time.perf_counter()
        for _ in range(args.compile_warmup if compiled == "compile" else 3):
            loss = step()
        sync()
        warm_s = time.perf_counter() - t0
        t0, reps = time.perf_counter(), 0
        while time.perf_counter() - t0 < args.min_time or reps < 3:
            step()
            reps += 1
            if reps % 5 == 0:
                sync()
        sync()
        per = (time.perf_counter() - t0) / reps
        reps = max(3, int(args.min_time / per))
        times = []
        for _ in range(args.repeats):
            sync()
            t0 = time.perf_counter()
            for _ in range(reps):
                loss = step()
            sync()
            times.append((time.perf_counter() - t0) / reps)
        s = statistics.median(times)
        rows.append(dict(row=f"pdearena_unetmod1d_64_{mode}", mode=mode, dtype=dtype,
                         params=params, params_match=params == PDEKIT_PARAMS, batch=batch,
                         n=n, train_s=s, train_steps_per_s=1.0 / s,
                         train_samples_per_s=batch / s, flops_per_step=flops,
                         train_tflops=flops / s / 1e12, train_mfu=mfu(flops, s, kind, dtype),
                         warmup_s=warm_s, loss=float(loss), device_kind=kind,
                         torch=torch.__version__))
        print(f"{rows[-1]['row']:<36} {1.0 / s:8.2f} steps/s  {flops / s / 1e12:7.2f} TFLOP/s"
              f"  warm-up {warm_s:6.1f} s", flush=True)
    return rows


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pdearena-src", type=Path, required=True,
                    help="a PDEArena source tree (the directory holding pdearena/)")
    ap.add_argument("--modes", default="eager-fp32,eager-bf16,compile-fp32,compile-bf16")
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--n", type=int, default=256)
    ap.add_argument("--min-time", type=float, default=1.0)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--compile-warmup", type=int, default=10,
                    help="steps before timing a compiled row (compilation happens here)")
    ap.add_argument("--small", action="store_true", help="CPU smoke run: batch 8, N 64, hidden 16")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(argv)
    if args.small:
        args.min_time = min(args.min_time, 0.05)
    rows = run(args)
    if args.out is not None:
        tmp = args.out.with_name(args.out.name + ".tmp")
        tmp.write_text(json.dumps({"date": datetime.now(UTC).isoformat(timespec="seconds"),
                                   "rows": rows}, indent=1))
        tmp.replace(args.out)
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
