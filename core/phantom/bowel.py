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
from core.phantom.body import Body
from core.phantom.canvas import BOWEL_ZONE, Canvas
from core.phantom.fields import LatticeField, stream
from core.phantom.landmarks import cavities, spine_at

LOOP_CORRELATION_MM = 18.0
WALL_MM = 3.0


def _zone_shape(body: Body) -> tuple[np.ndarray, np.ndarray]:
    return body.organ("bowel", body.pt(0, -18, 725), body.size(112, 66, 105))


def paint_zone(canvas: Canvas) -> None:
    """Mark the cavity fat in front of the spine, around and below the organs, for the loops."""
    body = canvas.body
    c, r = _zone_shape(body)
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


def paint_bowel(labels: np.ndarray, slices: tuple[slice, slice, slice], zone: np.ndarray, canvas: Canvas,
                variant: str) -> None:
    """Fill the zone (mask ``zone`` of the box ``slices``) of ``labels`` in place with the loops of
    ``variant`` ("cryo" or "mri")."""
    if not zone.any():
        return
    view = labels[slices]
    grid, ids, body = canvas.grid, canvas.ids, canvas.body
    lo, hi = sdf.bounds(*_zone_shape(body), 2)  # in mm, so every grid size gets the same loops
    zc, yc, xc = (a[s] for a, s in zip(grid.axes(), slices))
    fields = [LatticeField.gaussian(stream(canvas.seed, f"bowel.{variant}.{i}"), lo, hi, LOOP_CORRELATION_MM)
              for i in (0, 1)]
    rho = np.hypot(*(f.on_grid(zc, yc, xc) for f in fields))
    lumen = 1.0 - 0.25 * body.visceral
    wall = lumen + max(WALL_MM, canvas.voxel) * np.sqrt(2.0) / LOOP_CORRELATION_MM
    view[zone] = ids["fat"]
    view[zone & (rho < wall)] = ids["bowel_wall"]
    view[zone & (rho < lumen)] = ids["bowel_content"]
