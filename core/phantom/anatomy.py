"""The label volume of one subject: painters applied in order on the cryosection grid."""
from __future__ import annotations

import numpy as np

from core.phantom import bowel, brain, envelope, head, organs, skeleton, skull
from core.phantom.body import Body
from core.phantom.canvas import BOWEL_ZONE, Canvas
from core.phantom.grid import Grid


class Anatomy:
    """Labels with the bowel zone left open, so the bowel can be drawn more than once."""

    def __init__(self, grid: Grid, ids: dict[str, int], body: Body, seed: int, clinical_head: bool = False):
        """``clinical_head``: paint the 1 mm head (`brain`, `skull`) instead of the whole body's."""
        canvas = Canvas(grid, ids, body, seed)
        envelope.paint_envelope(canvas)
        organs.paint_organs(canvas)
        skeleton.paint_skeleton(canvas)
        if clinical_head:
            skull.paint_cranium(canvas)
            brain.paint_brain(canvas)
            skull.paint_face(canvas)
        else:
            head.paint_head(canvas)
        bowel.paint_zone(canvas)
        self.canvas = canvas
        self.zone_slices = bowel.zone_slices(canvas.labels)
        self.zone = canvas.labels[self.zone_slices] == BOWEL_ZONE

    def take_labels(self, variant: str) -> np.ndarray:
        """The label volume with the bowel loops of ``variant`` ("cryo" or "mri") drawn in.

        Hands over the canvas itself (no copy); other variants are drawn over it with `draw`.
        """
        labels, self.canvas.labels = self.canvas.labels, None
        self.draw(labels, variant)
        return labels

    def draw(self, labels: np.ndarray, variant: str) -> None:
        """Redraw the bowel loops of ``variant`` into ``labels`` in place (nothing else changes)."""
        bowel.paint_bowel(labels, self.zone_slices, self.zone, self.canvas, variant)
