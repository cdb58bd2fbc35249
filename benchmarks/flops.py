"""FLOPs of each ``models.py`` row's batched forward pass, from XLA's cost analysis of the
compiled program; no timing, so it runs on a CPU (FLOPs do not depend on the backend).

It separates arithmetic from implementation when two networks are compared: the ratio of
steps/s measured on a GPU divided by the ratio of FLOPs is the ratio of FLOP throughputs.
Shapes are ``models.py``'s (1D: batch 128, N = 256; 2D: batch 32, 64 x 64). pdequinox rows need
pdequinox importable. A training step is about 3x the forward FLOPs. Programs with a loop
(``lax.scan``: sinenet, the refiner's forward) are not counted, as in ``models.py``.

    python benchmarks/flops.py unetmod1d_64 pdeqx_modernunet1d_h96 --out flops.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import models as M  # noqa: E402  (benchmarks/ is not a package)


def forward_cost(name: str) -> dict:
    import equinox as eqx
    import jax
    import jax.numpy as jnp
    import jax.random as jr

    row = M.ROWS[name]
    batch, spatial = M._shapes(row, False)
    history, _, channels, num_cond = row.io
    params, static = eqx.partition(M._build(row, jr.key(0)), eqx.is_inexact_array)
    u = jnp.zeros((batch, history, channels, *spatial), jnp.float32)
    cond = jnp.full((batch, num_cond), 0.5, jnp.float32)
    def fwd(p, u, c):
        return jax.vmap(eqx.combine(p, static))(u, c)

    loops = M._has_loop(jax.make_jaxpr(fwd)(params, u, cond))
    cost = M._cost(jax.jit(fwd).lower(params, u, cond).compile(), loops)
    return dict(row=name, batch=batch, spatial=list(spatial), forward_flops=cost["xla_flops"],
                forward_xla_bytes=cost["xla_bytes"], backend=jax.default_backend(),
                jax=jax.__version__)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("rows", nargs="+", help=f"rows of models.py: {', '.join(M.ROWS)}")
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    unknown = [r for r in args.rows if r not in M.ROWS]
    if unknown:
        ap.error(f"unknown rows {unknown}; choose from {', '.join(M.ROWS)}")
    rows = []
    for name in args.rows:
        rows.append(forward_cost(name))
        flops = rows[-1]["forward_flops"]
        print(f"{name:<28} forward " + (f"{flops / 1e9:,.1f} GFLOP" if flops else
              "not counted (the program has a loop, whose body XLA counts once)"), flush=True)
    if len(rows) > 1 and rows[0]["forward_flops"] and rows[1]["forward_flops"]:
        print(f"ratio {rows[0]['row']} / {rows[1]['row']}: "
              f"{rows[0]['forward_flops'] / rows[1]['forward_flops']:.3f}")
    if args.out:
        from pdekit._io import write_atomic

        write_atomic(Path(args.out), json.dumps(dict(rows=rows), indent=1))


if __name__ == "__main__":
    main()
