"""Pictures of a run, drawn with PIL (no plotting library needed): sample grids
(MRI | ĉ | c' | cryosection | labels [| truth]) and small-multiple loss curves.

A grid shows at a glance whether the model has learnt tissue-dependent colours; the curves show
whether each term falls. Each loss term gets its own panel and y-range because the terms differ by
orders of magnitude (a weighted cycle term next to a BCE near 0.7).
"""
from __future__ import annotations

import math
import os
from typing import Sequence

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from core.atomic import atomic_path

MIN_PANEL = 128
HEADER = 18
BACKGROUND = (255, 255, 255)
INK = (30, 30, 30)


def _rgb_uint8(x: torch.Tensor | np.ndarray) -> np.ndarray:
    """(N, C, H, W) in [0, 1] with C 1 or 3 → uint8 (N, H, W, 3)."""
    a = x.detach().float().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x, dtype=np.float32)
    a = np.clip(a, 0.0, 1.0)
    if a.shape[1] == 1:
        a = np.repeat(a, 3, axis=1)
    return (a.transpose(0, 2, 3, 1) * 255.0 + 0.5).astype(np.uint8)


def label_colors(labels: torch.Tensor | np.ndarray, lut: np.ndarray | None = None) -> np.ndarray:
    """Integer label maps (N, H, W) → uint8 (N, H, W, 3) with the label table's display colours
    (``lut``: (K, 3) uint8), or a fixed pseudo-random palette without one."""
    ids = labels.detach().cpu().numpy() if isinstance(labels, torch.Tensor) else np.asarray(labels)
    ids = ids.astype(np.int64)
    top = int(ids.max()) + 1 if ids.size else 1
    if lut is None or len(lut) < top:
        palette = np.random.default_rng(7).integers(40, 256, size=(max(top, 1), 3)).astype(np.uint8)
        palette[0] = 0
        if lut is not None:
            palette[: len(lut)] = lut
        lut = palette
    return lut[np.clip(ids, 0, len(lut) - 1)]


def sample_grid(columns: dict[str, torch.Tensor | np.ndarray]) -> Image.Image:
    """One row per sample, one titled column per entry of ``columns`` (name → (N, C, H, W) in
    [0, 1], or uint8 (N, H, W, 3) already coloured). Small planes are enlarged (nearest) so the
    grid stays readable."""
    panels = {name: (v if isinstance(v, np.ndarray) and v.dtype == np.uint8 and v.ndim == 4 and v.shape[-1] == 3
                     else _rgb_uint8(v)) for name, v in columns.items()}
    n, h, w = next(iter(panels.values())).shape[:3]
    scale = max(1, math.ceil(MIN_PANEL / max(h, w)))
    ph, pw = h * scale, w * scale
    grid = Image.new("RGB", (pw * len(panels) + 2 * (len(panels) - 1), HEADER + n * (ph + 2)), BACKGROUND)
    draw = ImageDraw.Draw(grid)
    font = ImageFont.load_default()
    for j, (name, images) in enumerate(panels.items()):
        x = j * (pw + 2)
        draw.text((x + 3, 3), name, fill=INK, font=font)
        for i in range(n):
            tile = Image.fromarray(images[i]).resize((pw, ph), Image.NEAREST)
            grid.paste(tile, (x, HEADER + i * (ph + 2)))
    return grid


def save_png(image: Image.Image, path: str | os.PathLike) -> None:
    with atomic_path(path) as tmp:
        image.save(tmp, format="PNG")


def _smooth(values: np.ndarray, span: int) -> np.ndarray:
    """Exponential moving average with a window of about ``span`` points."""
    alpha = 2.0 / (span + 1.0)
    out = np.empty_like(values)
    acc = values[0]
    for i, v in enumerate(values):
        acc = alpha * v + (1 - alpha) * acc
        out[i] = acc
    return out


def loss_curves(steps: Sequence[float], series: dict[str, Sequence[float]], panel: tuple[int, int] = (300, 170),
                columns: int = 3) -> Image.Image:
    """Small multiples: one panel per series with its own y-range, raw values in grey and an
    exponential moving average in blue, with the first and last smoothed values printed."""
    names = list(series)
    rows = max(1, math.ceil(len(names) / columns))
    pw, ph = panel
    image = Image.new("RGB", (pw * min(columns, max(1, len(names))), ph * rows), BACKGROUND)
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default()
    x_steps = np.asarray(steps, dtype=np.float64)
    for k, name in enumerate(names):
        ox, oy = (k % columns) * pw, (k // columns) * ph
        left, top, right, bottom = ox + 44, oy + 18, ox + pw - 8, oy + ph - 18
        draw.rectangle((left, top, right, bottom), outline=(170, 170, 170))
        y = np.asarray(series[name], dtype=np.float64)
        finite = np.isfinite(y)
        if finite.sum() == 0 or len(x_steps) == 0:
            draw.text((ox + 4, oy + 3), f"{name}: no data", fill=INK, font=font)
            continue
        xs, ys = x_steps[finite], y[finite]
        smooth = _smooth(ys, max(2, len(ys) // 20))
        lo, hi = float(ys.min()), float(ys.max())
        if hi - lo < 1e-12:
            lo, hi = lo - 0.5, hi + 0.5
        x0, x1 = float(xs[0]), float(xs[-1]) if xs[-1] > xs[0] else float(xs[0]) + 1.0

        def to_px(xv: np.ndarray, yv: np.ndarray) -> list[tuple[float, float]]:
            px = left + (xv - x0) / (x1 - x0) * (right - left)
            py = bottom - (yv - lo) / (hi - lo) * (bottom - top)
            return list(zip(px.tolist(), py.tolist()))

        if len(xs) > 1:
            draw.line(to_px(xs, ys), fill=(190, 190, 190), width=1)
            draw.line(to_px(xs, smooth), fill=(31, 90, 200), width=2)
        else:
            (px, py), = to_px(xs, smooth)
            draw.ellipse((px - 2, py - 2, px + 2, py + 2), fill=(31, 90, 200))
        draw.text((ox + 4, oy + 3), f"{name}: {smooth[0]:.3g} -> {smooth[-1]:.3g}", fill=INK, font=font)
        draw.text((ox + 2, top - 2), f"{hi:.3g}", fill=INK, font=font)
        draw.text((ox + 2, bottom - 10), f"{lo:.3g}", fill=INK, font=font)
        draw.text((left, bottom + 3), f"{int(x0)}", fill=INK, font=font)
        end = f"step {int(x1)}"
        draw.text((right - 6 * len(end), bottom + 3), end, fill=INK, font=font)
    return image
