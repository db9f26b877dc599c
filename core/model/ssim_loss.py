"""Differentiable local SSIM with Gaussian windows, and the paper's multi-window SSIM loss (eq. 5).

Window: a b×b Gaussian with σ = 1.5 truncated to b taps and normalised, as the reference
``pytorch_ssim`` builds it for every size (also 3×3); C1 = (0.01·L)², C2 = (0.03·L)², population
(co)variances. Unlike the reference, which zero-pads by b//2 and averages over the whole map
(so every border pixel compares against black), the map here covers only the *valid* positions,
where the window lies inside the image. That equals scikit-image's ``structural_similarity``
(``gaussian_weights=True, use_sample_covariance=False``), which filters with reflect padding and
then crops (b−1)/2 pixels — provided its Gaussian has b taps too (it always uses 11; see the tests).

Everything runs in float32 with autocast disabled: SSIM divides small differences of squares
and loses all precision in fp16/bf16.
"""
from __future__ import annotations

import torch

from core.imaging import gaussian_taps, separable_filter

C1 = 0.01 ** 2
C2 = 0.03 ** 2


def ssim_map(a: torch.Tensor, b: torch.Tensor, window: int, sigma: float = 1.5,
             data_range: float = 1.0) -> torch.Tensor:
    """Local SSIM of two (N, C, H, W) images, per channel, at the valid positions:
    shape (N, C, H − window + 1, W − window + 1)."""
    if a.shape != b.shape or a.dim() != 4:
        raise ValueError(f"ssim needs two (N, C, H, W) tensors of one shape, got {tuple(a.shape)} and {tuple(b.shape)}")
    if window % 2 == 0 or window > min(a.shape[-2:]):
        raise ValueError(f"SSIM window must be odd and fit the image, got {window} for {tuple(a.shape[-2:])}")
    with torch.autocast(device_type=a.device.type, enabled=False):
        a, b = a.float(), b.float()
        n, c = a.shape[:2]
        stack = torch.cat([a, b, a * a, b * b, a * b], dim=1)
        stack = separable_filter(stack, gaussian_taps(window, float(sigma)), None)
        mu_a, mu_b, e_aa, e_bb, e_ab = stack.split(c, dim=1)
        var_a = e_aa - mu_a * mu_a
        var_b = e_bb - mu_b * mu_b
        cov = e_ab - mu_a * mu_b
        c1, c2 = C1 * data_range ** 2, C2 * data_range ** 2
        return ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a * mu_a + mu_b * mu_b + c1) * (var_a + var_b + c2))


def ssim(a: torch.Tensor, b: torch.Tensor, window: int, sigma: float = 1.5, data_range: float = 1.0) -> torch.Tensor:
    """Mean local SSIM over channels, positions and the batch (a 0-d float32 tensor)."""
    return ssim_map(a, b, window, sigma, data_range).mean()


def multiwindow_ssim_loss(a: torch.Tensor, b: torch.Tensor, windows: tuple[int, ...] = (3, 5, 7, 9),
                          sigma: float = 1.5, data_range: float = 1.0) -> torch.Tensor:
    """Σ over windows of (1 − mean SSIM), the paper's eq. 5 turned into a loss (0 when a == b)."""
    return torch.stack([1.0 - ssim(a, b, w, sigma, data_range) for w in windows]).sum()
