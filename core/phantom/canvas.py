"""The label volume being painted: structures are drawn in order, later ones over earlier ones."""
from __future__ import annotations

import numpy as np

from core.phantom.body import Body
from core.phantom.grid import Box, Grid

# Temporary label of the free space between abdominal organs that the bowel loops fill
# (drawn twice with different seeds: once for the cryosection, once for the MRI).
BOWEL_ZONE = 255


class Canvas:
    """Labels on the cryosection grid plus what the painters share: tissue ids, the subject, the seed."""

    def __init__(self, grid: Grid, ids: dict[str, int], body: Body, seed: int):
        self.grid = grid
        self.ids = ids
        self.body = body
        self.seed = seed
        self.labels = np.zeros(grid.shape, dtype=np.uint8)
        self.voxel = float(max(grid.spacing))

    def thick(self, mm: float) -> np.float32:
        """A layer thickness that stays at least one voxel, so thin tissues exist at every size."""
        return np.float32(max(mm, self.voxel))

    def box(self, lo, hi) -> Box:
        """The voxels in [lo, hi] (x, y, z mm); an empty box where that misses the grid, so painters
        of structures outside a region's field of view run on empty arrays and paint nothing."""
        return self.grid.box(lo, hi) or self.grid.box(lo, hi, allow_empty=True)

    def id(self, tissue: str | int) -> int:
        return tissue if isinstance(tissue, (int, np.integer)) else self.ids[tissue]

    def paint(self, box: Box, tissue: str | int, mask: np.ndarray, only: tuple[str | int, ...] | None = None) -> None:
        """Set ``tissue`` where ``mask`` holds in ``box``, over the labels in ``only`` if given."""
        view = self.labels[box.slices]
        m = np.broadcast_to(mask, view.shape)
        if only is not None:
            m = m & np.isin(view, [self.id(t) for t in only])
        view[m] = self.id(tissue)
