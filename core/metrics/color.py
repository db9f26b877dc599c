"""Colourfulness (Hasler & Süsstrunk 2003), its difference ΔCF, and BT.601 luma.

CF = σ_rgyb + 0.3·μ_rgyb with rg = R − G and yb = (R + G)/2 − B, population moments over all
pixels. It is linear in intensity, so on the [0, 1] scale of every metric here it is the 0–255
value / 255; ``scale`` multiplies it for comparisons with papers that report the 255 scale. DDColor's metric
takes absolute values of rg and yb first (``variant="abs"``); both are offered because the paper's
CF ≈ 0.9 cannot be reproduced from public code (docs/metrics.md: what that value implies).
"""
from __future__ import annotations

import numpy as np
import torch

from core import imaging
from core.errors import InputError
from core.metrics._validate import as_result, image_batch, image_pair

VARIANTS = ("hasler", "abs")


def luma(rgb: np.ndarray | torch.Tensor) -> np.ndarray | torch.Tensor:
    """BT.601 luma Y = 0.299 R + 0.587 G + 0.114 B of an H×W×3 array or an (N, 3, H, W) batch.

    The convention every metric here uses when an RGB image meets a grey one (docs/metrics.md).
    """
    if isinstance(rgb, torch.Tensor):
        if rgb.ndim != 4 or rgb.shape[1] != 3:
            raise InputError("rgb", f"expected an (N, 3, H, W) batch, got shape {tuple(rgb.shape)}")
        return imaging.luma(rgb)
    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[-1] != 3:
        raise InputError("rgb", f"expected an H×W×3 array, got shape {rgb.shape}")
    return imaging.luma(rgb)


def colorfulness(rgb: np.ndarray | torch.Tensor, variant: str = "hasler", scale: float = 1.0) -> float | torch.Tensor:
    """Colourfulness of an RGB image in [0, 1] (float), or of each image of an (N, 3, H, W) batch (tensor (N,)).

    ``variant``: "hasler" (the original formula, the default) or "abs" (DDColor's |rg|, |yb|).
    ``scale``: 255 gives values on the 8-bit scale. A grey image has CF 0.
    """
    if variant not in VARIANTS:
        raise InputError("variant", f"must be one of {VARIANTS}, got {variant!r}")
    x, batched = image_batch(rgb, "rgb")
    if x.shape[1] != 3:
        raise InputError("rgb", f"colourfulness needs an RGB image, got {x.shape[1]} channel(s)")
    return as_result(batch_colorfulness(x, variant) * scale, batched)


def delta_colorfulness(a: np.ndarray | torch.Tensor, b: np.ndarray | torch.Tensor,
                       variant: str = "hasler", scale: float = 1.0) -> float | torch.Tensor:
    """Signed ΔCF = CF(a) − CF(b); pass (cryosection, colorized) so that positive means too pale.

    Signed because the paper's Table II reports a negative ΔCF; take ``abs`` for the per-image
    magnitude. The dataset-level form |mean CF(a) − mean CF(b)| is computed by ``aggregate``.
    """
    x, y, batched = image_pair(a, b, ("a", "b"))
    if x.shape[1] != 3:
        raise InputError("a, b", "ΔCF needs two RGB images")
    if variant not in VARIANTS:
        raise InputError("variant", f"must be one of {VARIANTS}, got {variant!r}")
    return as_result((batch_colorfulness(x, variant) - batch_colorfulness(y, variant)) * scale, batched)


def batch_colorfulness(x: torch.Tensor, variant: str = "hasler") -> torch.Tensor:
    """CF per image of a validated (N, 3, H, W) batch, in float64 (the moments of 65k pixels)."""
    x = x.to(torch.float64)
    r, g, b = x[:, 0], x[:, 1], x[:, 2]
    rg, yb = r - g, 0.5 * (r + g) - b
    if variant == "abs":
        rg, yb = rg.abs(), yb.abs()
    rg, yb = rg.flatten(1), yb.flatten(1)
    sigma = torch.sqrt(rg.var(dim=1, unbiased=False) + yb.var(dim=1, unbiased=False))
    mu = torch.sqrt(rg.mean(dim=1) ** 2 + yb.mean(dim=1) ** 2)
    return sigma + 0.3 * mu
