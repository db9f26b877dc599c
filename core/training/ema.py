"""Exponential moving average of a network's weights: a cheap way to a steadier generator.

GAN weights wander from step to step; their running average colours more consistently (the
shipped model's runs used decays 0.999 and 0.99: docs/default_model.md, "How it was trained"). The decay ramps up as ``min(decay, (1 + n) / (10 + n))``
after ``n`` updates, so early samples are not dominated by the random initialisation.
"""
from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn

from core.model.checkpoint import _unwrap


class EMA:
    """A frozen copy of ``module`` whose weights follow the trained ones."""

    def __init__(self, module: nn.Module, decay: float):
        if not 0.0 < decay < 1.0:
            raise ValueError(f"EMA decay must be in (0, 1), got {decay!r}")
        self.decay = decay
        self.updates = 0
        self.module = copy.deepcopy(_unwrap(module)).eval().requires_grad_(False)

    @torch.no_grad()
    def update(self, module: nn.Module) -> None:
        """Move the average towards ``module``'s current weights (call after each optimiser step)."""
        self.updates += 1
        decay = min(self.decay, (1.0 + self.updates) / (10.0 + self.updates))
        source = _unwrap(module).state_dict()
        for name, average in self.module.state_dict().items():
            if average.is_floating_point():
                average.lerp_(source[name], 1.0 - decay)
            else:
                average.copy_(source[name])

    def state_dict(self) -> dict[str, Any]:
        return {"weights": self.module.state_dict(), "updates": self.updates}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.module.load_state_dict(state["weights"])
        self.updates = int(state["updates"])
