"""Dense peak FLOP rates used for model FLOPs utilisation (MFU) in the benchmarks.

MFU = (FLOPs of one training step, from the compiled program's shapes) / (step time x peak).
The peak is the device's dense tensor-core rate for the dtype the convolutions and matrix
products actually run in: float32 rows count against the TF32 rate, since both XLA (JAX's
default precision) and cuDNN (PyTorch's ``cudnn.allow_tf32`` default) run float32
convolutions as TF32 on Hopper. Sources: NVIDIA H200 SXM datasheet (dense, i.e. half the
"with sparsity" figures): TF32 494.7, BF16 989.5 TFLOP/s; H100 SXM the same rates.
A device not listed gets no MFU (None), never a guessed one.
"""

from __future__ import annotations

#: device-kind substring -> dtype -> dense peak FLOP/s
PEAKS = {
    "H200": {"fp32": 494.7e12, "bf16": 989.5e12},
    "H100": {"fp32": 494.7e12, "bf16": 989.5e12},
}


def peak_flops(device_kind: str, dtype: str) -> float | None:
    """The dense peak for ``dtype`` ("fp32" or "bf16") on a device whose kind names a listed
    GPU ("NVIDIA H200" matches "H200"), else None."""
    for name, rates in PEAKS.items():
        if name.lower() in (device_kind or "").lower():
            return rates.get(dtype)
    return None


def mfu(flops_per_step: float | None, step_s: float | None, device_kind: str,
        dtype: str) -> float | None:
    """Model FLOPs utilisation in [0, 1], or None when anything is unknown."""
    peak = peak_flops(device_kind, dtype)
    if not flops_per_step or not step_s or peak is None:
        return None
    return flops_per_step / step_s / peak
