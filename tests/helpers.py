"""Helpers the test modules share (imported as ``helpers``; pytest puts tests/ on sys.path)."""
from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from core.inference import Colorizer
from core.model.config import load_preset


class FakeGenerator(nn.Module):
    """A stand-in G_m→ĉ: ``rgb(planes)`` maps (N, 1, H, W) → (N, 3, H, W); it records every
    input shape that reaches the network (after the Colorizer's padding to a multiple of 4)."""

    def __init__(self, rgb: Callable[[torch.Tensor], torch.Tensor]):
        super().__init__()
        self.rgb = rgb
        self.shapes: list[tuple[int, ...]] = []

    def forward(self, x: torch.Tensor, outputs: tuple[str, ...] | None = None) -> dict[str, torch.Tensor]:
        self.shapes.append(tuple(x.shape))
        return {"c_hat": self.rgb(x)}


def fake_colorizer(rgb: Callable[[torch.Tensor], torch.Tensor] | None = None, *, pixel_mm: float | None = None,
                   max_batch: int = 1024) -> Colorizer:
    """A real `Colorizer` around a `FakeGenerator` (default: grey in every channel), serving ĉ."""
    generator = FakeGenerator(rgb or (lambda x: x.repeat(1, 3, 1, 1)))
    return Colorizer(generator, load_preset("tiny").model, device="cpu", max_batch=max_batch, pixel_mm=pixel_mm,
                     source="fake")
