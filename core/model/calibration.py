"""The ``calibrated`` output's colour calibration: a small map, learnt after the GAN, that corrects
the ``guided`` colours pixel by pixel towards the true colorization.

Why. The network under-fits: on the phantom's training subjects its whole-volume colours score
what they score on unseen ones, and whole tissues come out in a biased colour (CSF yellowish
where the truth is blue-grey, cortical bone as dark as muscle, docs/default_model.md). Those
errors are systematic, so a map fitted on the training subjects' own outputs and true
colorizations undoes much of them on subjects it never saw.

What it sees, per pixel of a plane (everything a plane path has, so the viewer and
``mricolor colorize`` compute the same thing):
- the ``guided`` colour and the network's c′, both in CIE L*a*b* / 100;
- the normalised MRI intensity;
- the MRI's mean over the body's pixels in in-plane windows of ``CONTEXT_MM`` half-widths (mm,
  whatever the pixel size): how bright the surroundings are, which tells a dark CSF space inside
  a brain from dark cortical bone under the skin;
- optionally (v7's calibration uses all three; v6's none):
  - the ``guided`` colour's body-only mean in windows of ``colour_mm``: what the network painted
    around the pixel, which tells a fluid space among bowel loops from one inside the spine;
  - the body's share of windows of ``body_mm``: how deep inside the body the pixel lies (skin and
    the fat under it against the lungs and the belly);
  - the MRI's body-only spread (standard deviation) in windows of ``spread_mm``: how textured
    the surroundings are.

It returns a correction of the ``guided`` colour in L*a*b*: a perceptron of ``LAYERS`` hidden
layers of ``HIDDEN`` units whose last layer starts at zero, so an untrained calibration is the
identity. Pixels outside the body keep the colour they had (the background).

The fit lives in `core.training.calibration`; the network is stored in the checkpoint as the
network ``calib`` with `spec` in the metadata (``extra["calibration"]``).
"""
from __future__ import annotations

from typing import Any, Mapping

import numpy as np
import torch
from torch import nn

from core.imaging import lab_to_rgb, rgb_to_lab, window_mean

#: Half-widths (mm) of the in-plane windows of MRI context.
CONTEXT_MM = (3.0, 6.0, 12.0)
#: Units of each hidden layer.
HIDDEN = 128
#: Hidden layers (v6–v8's calibrations have two; their specs do not name it).
LAYERS = 2
#: Colours enter and leave the perceptron as L*a*b* over this (values of order 1).
LAB_SCALE = 100.0
#: Pixels through the perceptron at a time. Its hidden activations then stay in the CPU's cache:
#: on a 2-core CPU, 588 000 head pixels took 1154 ms at once and 420 ms in chunks of 4096 (8192:
#: 460 ms; 2048: 627 ms), with the same output.
CHUNK = 4096


class ColourCalibration(nn.Module):
    """guided colour + c′ + MRI context → corrected colour, pixel by pixel (see the module's doc)."""

    def __init__(self, context_mm: tuple[float, ...] = CONTEXT_MM, hidden: int = HIDDEN,
                 colour_mm: tuple[float, ...] = (), body_mm: tuple[float, ...] = (),
                 spread_mm: tuple[float, ...] = (), layers: int = LAYERS):
        super().__init__()
        windows = {}
        for name, radii in (("context", context_mm), ("colour", colour_mm), ("body", body_mm), ("spread", spread_mm)):
            windows[name] = tuple(float(r) for r in radii)
            if not all(np.isfinite(r) and r > 0 for r in windows[name]):
                raise ValueError(f"{name} window half-widths must be positive mm, got {windows[name]}")
        if hidden < 1:
            raise ValueError(f"hidden units must be at least 1, got {hidden}")
        if layers < 1:
            raise ValueError(f"hidden layers must be at least 1, got {layers}")
        self.context_mm, self.colour_mm = windows["context"], windows["colour"]
        self.body_mm, self.spread_mm = windows["body"], windows["spread"]
        self.hidden, self.layers = int(hidden), int(layers)
        stack = [nn.Linear(self.n_features, hidden), nn.SiLU()]
        for _ in range(self.layers - 1):
            stack += [nn.Linear(hidden, hidden), nn.SiLU()]
        self.net = nn.Sequential(*stack, nn.Linear(hidden, 3))
        nn.init.zeros_(self.net[-1].weight)
        nn.init.zeros_(self.net[-1].bias)

    @property
    def n_features(self) -> int:
        return 3 + 3 + 1 + len(self.context_mm) + 3 * len(self.colour_mm) + len(self.body_mm) + len(self.spread_mm)

    def spec(self) -> dict[str, Any]:
        """What rebuilds this architecture (stored in a checkpoint's metadata)."""
        return {"context_mm": list(self.context_mm), "hidden": self.hidden, "colour_mm": list(self.colour_mm),
                "body_mm": list(self.body_mm), "spread_mm": list(self.spread_mm), "layers": self.layers}

    @classmethod
    def from_spec(cls, spec: Mapping[str, Any]) -> "ColourCalibration":
        """The architecture `spec` describes (the optional windows absent in v6's: none; the
        layers absent in v6–v8's: two); ``ValueError`` for a malformed one."""
        windows = ("colour_mm", "body_mm", "spread_mm")
        optional = {*windows, "layers"}
        if not isinstance(spec, Mapping) or not {"context_mm", "hidden"} <= set(spec) <= {"context_mm", "hidden"} | optional:
            raise ValueError(f"a calibration spec has the keys context_mm and hidden (and optionally "
                             f"{', '.join(sorted(optional))}), got {spec!r}")
        try:
            return cls(tuple(spec["context_mm"]), int(spec["hidden"]),
                       **{k: tuple(spec[k]) for k in windows if k in spec},
                       layers=int(spec.get("layers", LAYERS)))
        except TypeError as exc:
            raise ValueError(f"malformed calibration spec {spec!r} ({exc})") from None

    def features(self, guided: torch.Tensor, c_prime: torch.Tensor, mri: torch.Tensor,
                 body: torch.Tensor | None, pixel_mm) -> torch.Tensor:
        """(N, F, H, W) features of planes: ``guided`` and ``c_prime`` (N, 3, H, W) RGB in [0, 1],
        ``mri`` (N, 1, H, W) in [0, 1], ``body`` (N, 1, H, W) bool or None (every pixel),
        ``pixel_mm`` the planes' pixel size (one number or (rows, cols) mm). Window means count
        the body's pixels only (normalised windows), so the air never darkens them."""
        mri = mri.float()
        weight = torch.ones_like(mri) if body is None else body.to(mri.dtype)
        pixel = np.broadcast_to(np.asarray(pixel_mm, dtype=np.float64), (2,))
        shares: dict[float, tuple[tuple[int, ...], torch.Tensor]] = {}

        def share(r_mm: float) -> tuple[tuple[int, ...], torch.Tensor]:
            """The window's radii in pixels and the body's share of it (computed once per size)."""
            if r_mm not in shares:
                radii = tuple(max(1, int(round(r_mm / p))) for p in pixel)
                shares[r_mm] = radii, window_mean(weight, radii)
            return shares[r_mm]

        def body_mean(x: torch.Tensor, r_mm: float) -> torch.Tensor:
            radii, mass = share(r_mm)
            return window_mean(x * weight, radii) / mass.clamp_min(1e-6)

        lab = rgb_to_lab(guided) / LAB_SCALE
        columns = [lab, rgb_to_lab(c_prime) / LAB_SCALE, mri]
        columns += [body_mean(mri, r) for r in self.context_mm]
        columns += [body_mean(lab, r) for r in self.colour_mm]
        columns += [share(r)[1] for r in self.body_mm]
        for r in self.spread_mm:
            mean = body_mean(mri, r)
            columns.append((body_mean(mri * mri, r) - mean * mean).clamp_min(0).sqrt())
        return torch.cat(columns, dim=1)

    def correct(self, features: torch.Tensor) -> torch.Tensor:
        """(P, F) pixel features → (P, 3) corrected L*a*b* / ``LAB_SCALE`` (the ``guided`` colour,
        the first three features, plus the learnt correction)."""
        return features[:, :3] + self.net(features)

    def forward(self, guided: torch.Tensor, c_prime: torch.Tensor, mri: torch.Tensor,
                body: torch.Tensor | None, pixel_mm) -> torch.Tensor:
        """The calibrated RGB (N, 3, H, W) of planes (arguments as in `features`); outside ``body``
        the ``guided`` colour is kept."""
        feats = self.features(guided, c_prime, mri, body, pixel_mm)
        n, f, h, w = feats.shape
        flat = feats.permute(0, 2, 3, 1).reshape(-1, f)
        inside = (torch.ones(n * h * w, dtype=torch.bool, device=flat.device) if body is None
                  else body.reshape(-1).to(flat.device, torch.bool))
        out = guided.float().permute(0, 2, 3, 1).reshape(-1, 3).clone()
        if inside.any():
            lab = torch.cat([self.correct(part) for part in flat[inside].split(CHUNK)]) * LAB_SCALE
            out[inside] = lab_to_rgb(lab.T[None, :, :, None])[0, :, :, 0].T
        return out.reshape(n, h, w, 3).permute(0, 3, 1, 2).contiguous()


__all__ = ["CHUNK", "CONTEXT_MM", "HIDDEN", "LAB_SCALE", "ColourCalibration"]
