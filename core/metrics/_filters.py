"""'Valid' separable window filters on (…, H, W) tensors, real or complex, on any device.

SSIM and STSIM need many local means over small windows. Shifted-slice accumulation keeps
every pass a plain fused multiply-add over contiguous memory, works on complex subbands
(``conv2d`` does not) and beats ``conv2d`` with 1-D kernels on the CPU.
"""
from __future__ import annotations

import torch

from core.imaging import gaussian_taps


def correlate_1d(x: torch.Tensor, taps: tuple[float, ...], dim: int) -> torch.Tensor:
    """'Valid' correlation of ``x`` with ``taps`` along ``dim`` (-1 or -2): the output is len(taps) − 1 shorter."""
    n = x.shape[dim] - len(taps) + 1
    out = x.narrow(dim, 0, n) * taps[0]
    for k, w in enumerate(taps[1:], start=1):
        out.add_(x.narrow(dim, k, n), alpha=w)
    return out


def gaussian_valid(x: torch.Tensor, size: int, sigma: float) -> torch.Tensor:
    """Weighted local means over size × size Gaussian windows, 'valid' region only."""
    taps = gaussian_taps(size, sigma)
    return correlate_1d(correlate_1d(x, taps, -2), taps, -1)


def window_sums_6_7(x: torch.Tensor, dim: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Sums over 6 and over 7 consecutive samples along ``dim`` ('valid'), sharing partial sums.

    STSIM's lag-correlation windows are 7×6 and 6×7 beside 7×7 ones; doubling (2, 4, 6, 7) costs
    four additions per axis instead of eleven.
    """
    n = x.shape[dim]
    s2 = x.narrow(dim, 0, n - 1) + x.narrow(dim, 1, n - 1)
    s4 = s2.narrow(dim, 0, n - 3) + s2.narrow(dim, 2, n - 3)
    s6 = s4.narrow(dim, 0, n - 5) + s2.narrow(dim, 4, n - 5)
    s7 = s6.narrow(dim, 0, n - 6) + x.narrow(dim, 6, n - 6)
    return s6, s7
