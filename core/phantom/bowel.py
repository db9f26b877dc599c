"""Small-bowel loops: tubes of wall around content, packed in mesenteric fat.

The loops are where two smooth random fields are both near zero: the intersection of their
zero sets is a tangle of curves, and a threshold on sqrt(f1² + f2²) thickens them into tubes
(lumen inside, wall around it). The free space they fill is marked first (`paint_zone`); the
loops are then drawn twice with different seeds, once for the cryosection and once for the
MRI, because bowel moves between two acquisitions and no registration can undo that.
"""
from __future__ import annotations

import numpy as np

from core.phantom import sdf
from core.phantom.canvas import BOWEL_ZONE, Canvas
from core.phantom.fields import LatticeField, stream
from core.phantom.landmarks import cavities, spine_at

LOOP_CORRELATION_MM = 18.0
WALL_MM = 3.0


def paint_zone(canvas: Canvas) -> None:
    """Mark the cavity fat in front of the spine, around and below the organs, for the loops."""
    body = canvas.body
    c, r = body.organ("bowel", body.pt(0, -18, 725), body.size(112, 66, 105))
    b = canvas.box(*sdf.bounds(c, r, 2))
    cavity = cavities(body, b)[1] + canvas.thick(4.0) / 2
    y_spine, _, ry, _ = spine_at(body, body.d(b.z))
    in_front = b.y < (y_spine - ry).astype(np.float32)
    canvas.paint(b, BOWEL_ZONE, (np.maximum(sdf.ellipsoid(b.points, c, r), cavity) < 0) & in_front, only=("fat",))


def zone_slices(labels: np.ndarray) -> tuple[slice, slice, slice]:
    """Bounding box (z, y, x slices) of the bowel zone."""
    where = [np.flatnonzero(np.any(labels == BOWEL_ZONE, axis=axes)) for axes in ((1, 2), (0, 2), (0, 1))]
    if any(w.size == 0 for w in where):
        return (slice(0, 0),) * 3
    return tuple(slice(int(w[0]), int(w[-1]) + 1) for w in where)


def paint_bowel(labels: np.ndarray, slices: tuple[slice, slice, slice], canvas: Canvas, variant: str) -> None:
    """Fill the zone in ``labels`` (in place) with the loops of ``variant`` ("cryo" or "mri")."""
    view = labels[slices]
    zone = view == BOWEL_ZONE
    if not zone.any():
        return
    grid, ids, body = canvas.grid, canvas.ids, canvas.body
    zc, yc, xc = (a[s] for a, s in zip(grid.axes(), slices))
    lo = np.array([xc[0], yc[0], zc[0]])
    hi = np.array([xc[-1], yc[-1], zc[-1]])
    fields = [LatticeField.gaussian(stream(canvas.seed, f"bowel.{variant}.{i}"), lo, hi, LOOP_CORRELATION_MM)
              for i in (0, 1)]
    rho = np.hypot(*(f.on_grid(zc, yc, xc) for f in fields))
    lumen = 1.0 - 0.25 * body.visceral
    wall = lumen + max(WALL_MM, canvas.voxel) * np.sqrt(2.0) / LOOP_CORRELATION_MM
    view[zone] = ids["fat"]
    view[zone & (rho < wall)] = ids["bowel_wall"]
    view[zone & (rho < lumen)] = ids["bowel_content"]
