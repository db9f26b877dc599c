"""SSIM (Wang et al. 2004) and MS-SSIM (Wang, Simoncelli & Bovik 2003), batched in torch.

Wang's settings throughout: 11×11 Gaussian window, σ 1.5, K1 0.01, K2 0.03, data range 1,
population moments, mean over the 'valid' map only. This is what scikit-image gives with
``gaussian_weights=True, sigma=1.5, use_sample_covariance=False`` and what pytorch_msssim,
piq and pyiqa give; torchmetrics reflect-pads, averages the whole map and differs (docs/metrics.md).

MS-SSIM at 128 and 64 px cannot use five scales with an 11-px window, so it uses as many as fit,
L = max{L : 10·2^(L−1) + 1 ≤ min(H, W)} (5 at 256, 4 at 128, 3 at 64), with the standard weights
w[:L] renormalised to sum 1: piq's ``multi_scale_ssim(scale_weights=w[:L])``. With all five scales
the standard weights are used as published (they sum to 1.0001), as every library does. Between
scales the planes are 2×2-averaged after piq's replicate padding of odd sizes (pytorch_msssim
zero-pads instead, which darkens the border). RGB–RGB pairs average the channel scores; RGB–grey
pairs use luma.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from core.metrics._filters import gaussian_valid
from core.metrics._validate import as_result, image_pair, require_size

WINDOW, SIGMA, K1, K2 = 11, 1.5, 0.01, 0.03
C1, C2 = K1 ** 2, K2 ** 2
MS_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)


def ssim(a: np.ndarray | torch.Tensor, b: np.ndarray | torch.Tensor) -> float | torch.Tensor:
    """Mean SSIM of two images in [0, 1]: a float for numpy planes, a tensor (N,) for (N, C, H, W) batches.

    Differentiable for tensors, so training can use it as a loss.
    """
    x, y, batched = image_pair(a, b)
    require_size(x, WINDOW, "ssim", f"the {WINDOW}×{WINDOW} Gaussian window")
    s, _ = _ssim_cs(x, y)
    return as_result(s.mean(dim=1), batched)


def ms_ssim(a: np.ndarray | torch.Tensor, b: np.ndarray | torch.Tensor) -> float | torch.Tensor:
    """MS-SSIM over ``ms_ssim_scales(H, W)`` scales (5 at 256 px); float or tensor (N,) like ``ssim``."""
    x, y, batched = image_pair(a, b)
    require_size(x, WINDOW, "ms_ssim", f"the {WINDOW}×{WINDOW} Gaussian window at the finest scale")
    _, ms = ssim_and_ms_ssim(x, y)
    return as_result(ms, batched)


def ms_ssim_scales(height: int, width: int) -> int:
    """Number of MS-SSIM scales used for an image: the most whose coarsest plane still holds the window."""
    side, levels = min(height, width), 0
    while levels < len(MS_WEIGHTS) and (WINDOW - 1) * 2 ** levels + 1 <= side:
        levels += 1
    return levels


def ssim_and_ms_ssim(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(SSIM, MS-SSIM), each (N,), of validated batches; the finest scale is computed once for both."""
    levels = ms_ssim_scales(*x.shape[-2:])
    weights = torch.tensor(MS_WEIGHTS[:levels], dtype=x.dtype, device=x.device)
    if levels < len(MS_WEIGHTS):
        weights = weights / weights.sum()
    terms = []
    for level in range(levels):
        s, cs = _ssim_cs(x, y)
        if level == 0:
            first = s.mean(dim=1)
        terms.append(torch.relu(cs if level < levels - 1 else s))
        if level < levels - 1:
            x, y = _halve(x), _halve(y)
    ms = torch.prod(torch.stack(terms) ** weights.view(-1, 1, 1), dim=0)
    return first, ms.mean(dim=1)


def _ssim_cs(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel means of the SSIM map and of the contrast-structure map, each (N, C)."""
    n, c = x.shape[:2]
    stats = gaussian_valid(torch.stack([x, y, x * x, y * y, x * y]), WINDOW, SIGMA)
    mu_x, mu_y, xx, yy, xy = stats
    mu_xx, mu_yy, mu_xy = mu_x * mu_x, mu_y * mu_y, mu_x * mu_y
    cs_map = (2 * (xy - mu_xy) + C2) / ((xx - mu_xx) + (yy - mu_yy) + C2)
    ssim_map = (2 * mu_xy + C1) / (mu_xx + mu_yy + C1) * cs_map
    return ssim_map.reshape(n, c, -1).mean(-1), cs_map.reshape(n, c, -1).mean(-1)


def _halve(x: torch.Tensor) -> torch.Tensor:
    """2×2 average as piq does it: if either side is odd, replicate one row and one column at the
    top and left first (a remaining odd side then loses its last sample)."""
    pad = max(x.shape[-2] % 2, x.shape[-1] % 2)
    if pad:
        x = F.pad(x, (pad, 0, pad, 0), mode="replicate")
    return F.avg_pool2d(x, 2)
