"""The body outline and its layers: skin, subcutaneous fat of varying thickness, muscle.

The lean body (muscle and everything inside it) is a smooth union of simple parts — head,
face, neck, trunk, arms, hands, legs — each with its own share of subcutaneous fat, blended
across joins like the distances. Low-frequency noise roughens the muscle boundary and the fat
thickness, so no two outlines are alike. Intermuscular fat septa (the zero set of a smooth
field, a set of sheets) split the muscle into compartments.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from core.phantom import head as head_geometry
from core.phantom import sdf
from core.phantom.body import FOV_HI, FOV_LO, Body
from core.phantom.canvas import Canvas
from core.phantom.fields import LatticeField, stream
from core.phantom.grid import Box
from core.phantom.landmarks import TRUNK_BOTTOM, TRUNK_KNOTS, TRUNK_TOP, arm_nodes

SKIN_MM = 2.0
ROUGHNESS_MM = 3.0    # amplitude of the low-frequency wobble of the muscle outline
FAT_VARIATION = 0.4   # relative variation of the fat thickness along the body
SEPTA_MM = 30.0       # correlation length of the field whose zero set gives the fat septa
SLAB = 24  # z slices processed at once (bounded memory)


@dataclass
class Part:
    """One piece of the lean body: its box, distance function, fat share and blend radius."""

    lo: np.ndarray
    hi: np.ndarray
    distance: Callable[[Box], np.ndarray]
    fat: float | Callable[[Box], np.ndarray]
    blend_mm: float = 18.0


def _trunk_part(body: Body) -> Part:
    k = TRUNK_KNOTS

    def distance(b: Box) -> np.ndarray:
        d = body.d(b.z)
        rx = np.interp(d, k[:, 0], k[:, 1] * body.width).astype(np.float32)
        ry = np.interp(d, k[:, 0], k[:, 2] * body.depth).astype(np.float32)
        cy = np.interp(d, k[:, 0], k[:, 3] * body.depth).astype(np.float32)
        ell = sdf.ellipse(b.x, b.y - cy, rx, ry)
        caps = np.maximum(np.float32(body.height) * (TRUNK_TOP - d), np.float32(body.height) * (d - TRUNK_BOTTOM))
        return np.maximum(ell, caps)

    def fat(b: Box) -> np.ndarray:
        d = body.d(b.z)
        belly = np.exp(-((d - 760.0) / 110.0) ** 2) * np.where(b.y < 0, 1.0, 0.6)
        return (0.85 + 0.7 * belly).astype(np.float32)

    lo = np.array([-185 * body.width, -110 * body.depth, body.z(TRUNK_BOTTOM)]) - 30
    hi = np.array([185 * body.width, 130 * body.depth, body.z(TRUNK_TOP)]) + 30
    return Part(lo, hi, distance, fat)


def parts(body: Body) -> list[Part]:
    """The lean body's parts for this subject."""
    out: list[Part] = []
    brain_lo, brain_hi = head_geometry.brain_bounds(body)
    cranium_mm = head_geometry.CRANIUM_MM * body.head
    out.append(Part(brain_lo - cranium_mm - 25, brain_hi + cranium_mm + 25,
                    lambda b: head_geometry.brain_distance(b.points, body) - np.float32(cranium_mm), 0.25))
    face_c, face_r = body.head_pt(0, -38, 158), body.head * np.array([56.0, 52.0, 72.0])
    out.append(Part(*sdf.bounds(face_c, face_r, 30), lambda b: sdf.ellipsoid(b.points, face_c, face_r), 0.45))
    nose_c, nose_r = body.head_pt(0, -96, 150), body.head * np.array([10.0, 14.0, 22.0])
    out.append(Part(*sdf.bounds(nose_c, nose_r, 12), lambda b: sdf.ellipsoid(b.points, nose_c, nose_r), 0.15,
                    blend_mm=8.0))
    neck = np.array([body.head_pt(0, 14, 150), body.pt(0, 16, 300)])
    neck_r = 50.0 * body.width
    out.append(Part(*sdf.tube_bounds(neck, neck_r, 40), lambda b: sdf.tube(b.points, neck, neck_r), 0.55))
    out.append(_trunk_part(body))
    for side in (-1, 1):
        shoulder, elbow, wrist, hand = arm_nodes(body, side)
        nodes = np.array([shoulder, elbow, wrist])
        radii = np.array([50.0, 36.0, 26.0]) * body.width
        out.append(Part(*sdf.tube_bounds(nodes, radii, 40),
                        lambda b, n=nodes, r=radii: sdf.tube(b.points, n, r), 0.55))
        hand_r = np.array([40.0, 15.0, 85.0]) * np.array([body.depth, body.width, body.height])
        frame = sdf.frame_from_axis(hand - wrist)
        out.append(Part(*sdf.bounds(hand, hand_r, 25),
                        lambda b, c=hand, r=hand_r, f=frame: sdf.ellipsoid(b.points, c, r, f), 0.25, blend_mm=12.0))
        leg = np.array([body.pt(side * 92, 8, 835), body.pt(side * 80, 6, 1320)])
        leg_r = np.array([88.0, 56.0]) * body.width
        out.append(Part(*sdf.tube_bounds(leg, leg_r, 40), lambda b, n=leg, r=leg_r: sdf.tube(b.points, n, r), 0.9))
    return out


def paint_envelope(canvas: Canvas) -> None:
    """Background, skin, subcutaneous fat and muscle over the whole grid, slab by slab."""
    body, grid, seed = canvas.body, canvas.grid, canvas.seed
    body_parts = parts(body)
    roughness = LatticeField.gaussian(stream(seed, "envelope.roughness"), FOV_LO, FOV_HI, 40.0)
    fat_mod = LatticeField.gaussian(stream(seed, "envelope.fat"), FOV_LO, FOV_HI, 70.0)
    septa = LatticeField.gaussian(stream(seed, "envelope.septa"), FOV_LO, FOV_HI, SEPTA_MM)
    septum_level = np.float32(0.5 * canvas.voxel * np.sqrt(2.0) / SEPTA_MM)
    skin = canvas.thick(SKIN_MM)
    ids = canvas.ids
    zc, yc, xc = grid.axes()
    for zs in grid.slabs(SLAB):
        slab = grid.slab(zs)
        lean = np.full(slab.shape, 1e4, dtype=np.float32)
        fat = np.ones(slab.shape, dtype=np.float32)
        for part in body_parts:
            b = grid.box(part.lo, part.hi, zs)
            if b is None:
                continue
            local = tuple(slice(s.start - o.start, s.stop - o.start) for s, o in zip(b.slices, slab.slices))
            share = part.fat(b) if callable(part.fat) else np.float32(part.fat)
            lean[local], h = sdf.smooth_union(part.distance(b), lean[local], part.blend_mm)
            fat[local] += (share - fat[local]) * h
        lean += np.float32(ROUGHNESS_MM) * roughness.on_grid(zc[zs], yc, xc)
        variation = 1 + np.float32(FAT_VARIATION) * fat_mod.on_grid(zc[zs], yc, xc)
        fat *= np.float32(body.fat_mm) * np.maximum(np.float32(0.2), variation)
        outer = lean - fat
        labels = np.where(lean <= 0, ids["muscle"], ids["fat"]).astype(np.uint8)
        in_septum = np.abs(septa.on_grid(zc[zs], yc, xc)) < septum_level
        labels[in_septum & (lean < -skin)] = ids["fat"]
        labels[outer > -skin] = ids["skin"]
        labels[outer > 0] = ids["background"]
        canvas.labels[zs] = labels
