"""The cryosection photograph: tissue colours with the textures of a ground, frozen surface.

Layers (docs/phantom.md), all multiplicative on the table colour of each voxel:
large-scale staining drift; fine grain (per photograph, so per axial slice); per-tissue
structure — muscle fibres (noise stretched along the body axis, which is also the limb axis
with the arms at the sides), fat lobules (a cellular pattern of septa), red/yellow marrow
speckle, mottling of parenchyma; and a white-balance/exposure jitter per axial slice, because
every slice of a real cryosection volume is a separate photograph.

Rendering goes slab by slab with noise seeded per slab, so re-rendering some slabs from other
labels (the cryosection after the MRI's bowel) reproduces every untouched voxel exactly.
"""
from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from core.labels import LabelTable
from core.phantom.body import FOV_HI, FOV_LO
from core.phantom.fields import LatticeField, stream
from core.phantom.grid import Grid

SLAB = 16
STAIN, GRAIN, SLICE_JITTER = 0.08, 0.06, 0.02
# per tissue: mottle, fibre, marrow speckle, fat lobule septa (relative amplitudes)
TEXTURE = {
    "skin": (0.04, 0.0, 0.0, 0.0),
    "fat": (0.03, 0.0, 0.0, 1.0),
    "muscle": (0.05, 0.16, 0.0, 0.0),
    "myocardium": (0.04, 0.10, 0.0, 0.0),
    "marrow": (0.03, 0.0, 1.0, 0.0),
    "cortical_bone": (0.03, 0.0, 0.0, 0.0),
    "grey_matter": (0.03, 0.0, 0.0, 0.0),
    "white_matter": (0.02, 0.0, 0.0, 0.0),
    "deep_grey_matter": (0.04, 0.0, 0.0, 0.0),
    "air": (0.10, 0.0, 0.0, 0.0),
    "vitreous": (0.05, 0.0, 0.0, 0.0),
    "lung": (0.12, 0.0, 0.0, 0.0),
    "liver": (0.07, 0.0, 0.0, 0.0),
    "kidney": (0.07, 0.0, 0.0, 0.0),
    "spleen": (0.07, 0.0, 0.0, 0.0),
    "blood": (0.08, 0.0, 0.0, 0.0),
    "bowel_wall": (0.06, 0.0, 0.0, 0.0),
    "bowel_content": (0.15, 0.0, 0.0, 0.0),
    "bladder": (0.03, 0.0, 0.0, 0.0),
    "cartilage": (0.03, 0.0, 0.0, 0.0),
}
MARROW_TINT = np.array([0.10, 0.28, 0.26], dtype=np.float32)   # speckle +1: yellow marrow, −1: red
SEPTUM_TINT = np.array([-0.06, -0.16, 0.02], dtype=np.float32)  # fibrous septa: paler, pinker than fat
FIBRE_MM = (2.0, 2.0, 14.0)
LOBULE_MM = 7.0


class CryoRenderer:
    """Renders RGB uint8 cryosection volumes from labels on one grid, for one subject."""

    def __init__(self, grid: Grid, table: LabelTable, seed: int):
        self.grid, self.seed = grid, seed
        self.lut = table.color_lut().astype(np.float32)
        amp = np.zeros((len(self.lut), 4), dtype=np.float32)
        for lab in table:
            amp[lab.id] = TEXTURE.get(lab.name, (0.0,) * 4)
        self.mottle_amp, self.fibre_amp, self.speckle_amp, self.lobule_amp = amp.T.copy()
        self.stain = LatticeField.gaussian(stream(seed, "cryo.stain"), FOV_LO, FOV_HI, 60.0)
        self.mottle = LatticeField.gaussian(stream(seed, "cryo.mottle"), FOV_LO, FOV_HI, 6.0, nodes_per_correlation=1.5)
        self.fibre = LatticeField.gaussian(stream(seed, "cryo.fibre"), FOV_LO, FOV_HI, FIBRE_MM, nodes_per_correlation=1.0)
        self.lobules = [LatticeField.gaussian(stream(seed, f"cryo.lobule{i}"), FOV_LO, FOV_HI, LOBULE_MM,
                                              nodes_per_correlation=1.5) for i in (0, 1)]
        # exposure × white balance of each slice's photograph
        self.slice_gain = stream(seed, "cryo.slice_jitter").normal(1.0, SLICE_JITTER, (grid.shape[0], 3)).astype(np.float32)
        self.septum = np.float32(max(0.6, 0.5 * min(grid.spacing)) * np.sqrt(2.0) / LOBULE_MM)

    def render(self, labels: np.ndarray, out: np.ndarray | None = None, z_range: slice | None = None) -> np.ndarray:
        """RGB (z, y, x, 3) uint8 of ``labels``; with ``out`` and ``z_range``, redo only the slabs that
        meet ``z_range`` in ``out``."""
        if out is None:
            out = np.empty(labels.shape + (3,), dtype=np.uint8)
        for zs in self.grid.slabs(SLAB):
            if z_range is not None and (zs.stop <= z_range.start or zs.start >= z_range.stop):
                continue
            out[zs] = self._slab(labels[zs], zs)
        return out

    def _slab(self, lab: np.ndarray, zs: slice) -> np.ndarray:
        zc, yc, xc = self.grid.axes()
        zc = zc[zs]
        shade = 1 + np.float32(STAIN) * self.stain.on_grid(zc, yc, xc)
        shade *= 1 + np.float32(GRAIN) * self._grain(lab.shape, zs)
        texture = 1 + np.take(self.mottle_amp, lab) * self.mottle.on_grid(zc, yc, xc)
        texture += np.take(self.fibre_amp, lab) * self.fibre.on_grid(zc, yc, xc)
        shade *= texture
        marrow = np.take(self.speckle_amp, lab) > 0
        # speckle at voxel scale, drawn for the marrow voxels only (they are few)
        speckle = np.tanh(2 * stream(self.seed, f"cryo.speckle.{zs.start}").standard_normal(int(marrow.sum())))
        speckle *= np.take(self.speckle_amp, lab[marrow])
        lobule = self.lobules[0].on_grid(zc, yc, xc), self.lobules[1].on_grid(zc, yc, xc)
        septa = (np.take(self.lobule_amp, lab) > 0) & (np.minimum(np.abs(lobule[0]), np.abs(lobule[1])) < self.septum)
        out = np.empty(lab.shape + (3,), dtype=np.uint8)
        for c in range(3):
            channel = np.take(self.lut[:, c], lab) * shade
            channel[marrow] *= 1 + MARROW_TINT[c] * speckle
            channel[septa] *= 1 + SEPTUM_TINT[c] * np.take(self.lobule_amp, lab[septa])
            channel *= self.slice_gain[zs, c].reshape(-1, 1, 1)
            channel += np.float32(0.5)
            np.clip(channel, 0, 255, out=channel)
            out[..., c] = channel
        return out

    def _grain(self, shape, zs: slice) -> np.ndarray:
        """Unit-variance noise, blurred within each slice only (each slice is its own photograph)."""
        noise = stream(self.seed, f"cryo.grain.{zs.start}").standard_normal(shape, dtype=np.float32)
        ndi.gaussian_filter(noise, (0, 0.7, 0.7), output=noise)
        noise /= np.float32(max(noise.std(), 1e-6))
        return noise
