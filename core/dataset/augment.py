"""Training augmentation done on the plane itself, plus MRI intensity jitter.

Flips and in-plane rotations change the plane's axes before anything is sampled, so the MRI,
the cryosection, the labels and the truth stay aligned for free, rotated corners show real
anatomy instead of padding, and nothing is interpolated twice. Randomness comes from a generator
seeded by (dataset seed, epoch, plane index): a sample looks the same whichever worker, batch or
rank cuts it.
"""
from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import torch

from core.errors import InputError
from core.model.train_config import AugmentConfig
from core.planes import Plane


class Augment(AugmentConfig):
    """The augmentation of `AugmentConfig`'s settings; ``Augment.none()`` turns everything off."""

    def __post_init__(self) -> None:
        try:
            super().__post_init__()
        except ValueError as exc:
            raise InputError("augmentation", str(exc)) from None

    @classmethod
    def of(cls, settings: AugmentConfig) -> "Augment":
        """The augmentation a preset's ``augment`` section describes."""
        return cls(**settings.to_dict())

    @classmethod
    def none(cls) -> "Augment":
        return cls(0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)

    @classmethod
    def from_dict(cls, values: dict) -> "Augment":
        """From a preset section; unknown keys are refused so typos do not pass silently."""
        unknown = set(values) - set(cls.__dataclass_fields__)
        if unknown:
            raise InputError("augmentation", f"unknown settings {sorted(unknown)}; known: {sorted(cls.__dataclass_fields__)}")
        return cls(**values)

    # --- geometry --------------------------------------------------------------------------------
    def plane(self, plane: Plane, rng: np.random.Generator) -> Plane:
        """The plane flipped and spun about its normal (same centre, pixel grid and normal line)."""
        u, v = plane.u, plane.v
        if self.rotate_deg:
            t = math.radians(rng.uniform(-self.rotate_deg, self.rotate_deg))
            u, v = math.cos(t) * u + math.sin(t) * v, -math.sin(t) * u + math.cos(t) * v
        if rng.random() < self.flip_horizontal:
            u = -u
        if rng.random() < self.flip_vertical:
            v = -v
        return replace(plane, u=u, v=v)

    # --- intensity -------------------------------------------------------------------------------
    def mri_params(self, rng: np.random.Generator) -> tuple[float, float, float, int]:
        """(gain, gamma, offset, noise seed) of one sample."""
        return (1 + rng.uniform(-self.mri_gain, self.mri_gain), math.exp(rng.uniform(-self.mri_gamma, self.mri_gamma)),
                rng.uniform(-self.mri_offset, self.mri_offset), int(rng.integers(0, 2**31 - 1)))

    def mri(self, image: torch.Tensor, params: tuple[float, float, float, int]) -> torch.Tensor:
        """Jitter one MRI slice (1, H, W) in [0, 1]; the background (exactly 0) stays 0."""
        gain, gamma, offset, noise_seed = params
        body = image > 0
        out = image.clamp(0, 1).pow(gamma) * gain + offset
        if self.mri_noise:
            g = torch.Generator().manual_seed(noise_seed)
            out = out + self.mri_noise * torch.randn(image.shape, generator=g).to(image.device)
        return torch.where(body, out.clamp(0, 1), torch.zeros_like(out))

    @property
    def changes_mri(self) -> bool:
        return any((self.mri_gain, self.mri_gamma, self.mri_offset, self.mri_noise))
