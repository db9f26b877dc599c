"""Image-quality metrics of the paper's Table I, and truth metrics for the phantom.

Inputs: numpy images in [0, 1], H×W (grey) or H×W×3 (RGB), giving Python floats; or torch batches
(N, C, H, W) with C = 1 or 3, on any device, giving tensors (N,). An RGB side compared with a grey
side is reduced to BT.601 luma. float64 input is computed in float64 (reference precision, about
3× slower on a CPU), everything else in float32, the viewer's and training's path. Bad input (mismatched shapes, NaN/Inf, values outside [0, 1],
planes too small for a metric, wrong channel counts) raises ``core.errors.InputError``.

Conventions, the image pairs of Table I, the independent references each metric is tested
against and the golden values are in docs/metrics.md; every module's docstring states its own.
"""
from core.metrics.color import colorfulness, delta_colorfulness, luma
from core.metrics.fsim import fsim
from core.metrics.ssim import ms_ssim, ms_ssim_scales, ssim
from core.metrics.stsim import steerable_pyramid, stsim
from core.metrics.table import PAPER_COLUMNS, aggregate, table_row
from core.metrics.truth import delta_e, psnr

__all__ = [
    "colorfulness", "delta_colorfulness", "luma", "ssim", "ms_ssim", "ms_ssim_scales", "fsim", "stsim",
    "steerable_pyramid", "delta_e", "psnr", "table_row", "aggregate", "PAPER_COLUMNS",
]
