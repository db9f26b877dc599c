"""The T1-weighted MRI simulated from labels (docs/phantom.md).

Order: tissue signal (table value × per-subject factor) with within-tissue variation, in the
anatomy's own space; partial volume as a blur with the MRI's point-spread function, then
sampling at the MRI voxel centres through the transform (`core.phantom.sampling`); then, in
scanner space, a multiplicative bias field and Rician noise; finally a scale putting the
99.5th percentile inside the body at 1.

Blurring on the cryosection grid before the transform stands in for blurring in MRI space: the
transform is locally a rotation of a few degrees, which barely tilts the point-spread function.
"""
from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from core.labels import LabelTable
from core.phantom.body import FOV_HI, FOV_LO
from core.phantom.fields import LatticeField, stream
from core.phantom.grid import Grid
from core.phantom.relaxation import sequence_signal

# Relative spin-echo T1w signal at 3 T (TR 500 ms, TE 15 ms, fat = 1), from the relaxation times
# of docs/phantom.md; skin, bowel and bone as estimated there.
T1_SIGNAL = {
    "background": 0.0, "skin": 0.40, "fat": 1.0, "muscle": 0.34, "cortical_bone": 0.02, "marrow": 0.72,
    "grey_matter": 0.34, "white_matter": 0.43, "csf": 0.21, "lung": 0.06, "myocardium": 0.32, "blood": 0.37,
    "liver": 0.46, "kidney": 0.43, "spleen": 0.40, "bowel_wall": 0.36, "bowel_content": 0.30, "bladder": 0.22,
    "spinal_cord": 0.50, "cartilage": 0.27,
}
SYSTEM_SPREAD, TISSUE_SPREAD = 0.10, 0.05  # together ±15 %, mostly shared within a body system
WITHIN_TISSUE = 0.03
PSF_FRACTION = 0.55  # Gaussian σ of the point-spread function, as a fraction of the MRI spacing
BIAS = (0.10, 0.20)
NOISE = (0.02, 0.05)  # Rician σ as a fraction of the muscle signal
SLAB = 24


def tissue_signal(table: LabelTable, seed: int, sequence: str | None = None, field_t: float = 3.0) -> np.ndarray:
    """Mean signal of every label id for this subject (cadaver tissue varies: ±15 %).

    ``sequence`` None uses the whole body's spin-echo table `T1_SIGNAL`; otherwise the signal
    equation of `core.phantom.relaxation`. Tissues of one system share most of the factor, which
    keeps contrasts within a system (grey versus white matter) the right way round while whole
    systems drift.
    """
    if sequence is None:
        base = np.array([T1_SIGNAL[lab.name] for lab in table])
    else:
        base = sequence_signal(table, sequence, field_t)[[lab.id for lab in table]]
    rng = stream(seed, "mri.tissue_signal")
    systems = sorted({lab.system for lab in table})
    system_factor = dict(zip(systems, rng.uniform(1 - SYSTEM_SPREAD, 1 + SYSTEM_SPREAD, len(systems))))
    out = np.zeros(table.num_classes, dtype=np.float32)
    for lab, value in zip(table, base):
        out[lab.id] = value * system_factor[lab.system] * rng.uniform(1 - TISSUE_SPREAD, 1 + TISSUE_SPREAD)
    return out


def signal_volume(labels: np.ndarray, grid: Grid, means: np.ndarray, table: LabelTable, seed: int,
                  mri_spacing) -> np.ndarray:
    """Noise-free signal on the anatomy's grid, blurred by the MRI's point-spread function (float32);
    ``means`` from `tissue_signal`."""
    content_id = next(lab.id for lab in table if lab.name == "bowel_content")
    texture = LatticeField.gaussian(stream(seed, "mri.texture"), FOV_LO, FOV_HI, 15.0)
    content = LatticeField.gaussian(stream(seed, "mri.bowel_content"), FOV_LO, FOV_HI, 12.0)
    zc, yc, xc = grid.axes()
    out = np.empty(labels.shape, dtype=np.float32)
    for zs in grid.slabs(SLAB):
        lab = labels[zs]
        s = np.take(means, lab)
        s *= 1 + np.float32(WITHIN_TISSUE) * texture.on_grid(zc[zs], yc, xc)
        in_bowel = lab == content_id
        if in_bowel.any():
            mix = content.on_grid(zc[zs], yc, xc)[in_bowel]
            # gas pockets (no signal), fluid (dark) and faeces (brighter) inside the lumen
            s[in_bowel] = np.where(mix < -1.3, np.float32(0.02), s[in_bowel] * np.clip(1 + 0.45 * mix, 0.4, 1.8))
        out[zs] = s
    sigma = PSF_FRACTION * np.asarray(mri_spacing, dtype=np.float64) / np.asarray(grid.spacing)
    ndi.gaussian_filter(out, sigma[::-1], output=out, mode="nearest", truncate=3.0)
    return out


def acquire(clean: np.ndarray, grid: Grid, body: np.ndarray, means: np.ndarray, table: LabelTable, seed: int,
            bias: float | None = None, noise: float | None = None) -> np.ndarray:
    """Bias field, Rician noise and intensity scaling of a noise-free MRI on its own grid (in place).

    ``bias`` (field strength) and ``noise`` (σ as a fraction of the muscle signal) replace the
    subject's draws from `BIAS` and `NOISE` when given; the draws are made either way, so other
    random streams do not shift.
    """
    rng = stream(seed, "mri.scanner")
    lo = np.array(grid.origin)
    hi = lo + (np.array(grid.size_xyz) - 1) * np.array(grid.spacing)
    shading = LatticeField.gaussian(stream(seed, "mri.bias"), lo, hi, (hi - lo).min() / 3)
    strength, noise_fraction = rng.uniform(*BIAS), rng.uniform(*NOISE)
    strength = np.float32(strength if bias is None else bias)
    muscle = means[next(lab.id for lab in table if lab.name == "muscle")]
    sigma = np.float32((noise_fraction if noise is None else noise) * muscle)
    zc, yc, xc = grid.axes()
    for zs in grid.slabs(SLAB):
        s = clean[zs]
        s *= np.exp(strength * shading.on_grid(zc[zs], yc, xc))
        draw = stream(seed, f"mri.noise.{zs.start}").standard_normal((2,) + s.shape, dtype=np.float32)
        draw *= sigma
        s += draw[0]
        clean[zs] = np.sqrt(s * s + draw[1] * draw[1])
    scale = np.percentile(clean[body], 99.5) if body.any() else 1.0
    clean /= np.float32(scale)
    return clean
