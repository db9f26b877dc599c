"""The skeleton: spine (vertebral bodies, discs, arches, canal with cord), ribs with costal
cartilage, sternum, clavicles, scapulae, pelvis, femora, arm and hand bones.

Bones are cortical shells around marrow. The spine follows a curve with cervical lordosis,
thoracic kyphosis and lumbar lordosis; a monotonic "vertebral level" coordinate along it
alternates bodies and discs at the right pitch for each region, and ribs are bands of that
same coordinate, sloping down towards the front.
"""
from __future__ import annotations

import numpy as np

from core.phantom import sdf
from core.phantom.canvas import Canvas
from core.phantom.landmarks import CAVITY_KNOTS, SPINE_KNOTS, arm_nodes, level_at, section, spine_at

DISC_FRACTION = 0.22
CORD_END_D = 650.0
SOFT = ("muscle", "fat")
RIB_OFFSET_MM = 7.0


def _bone(canvas: Canvas, box, distance: np.ndarray, cortex_mm: float, only=SOFT) -> None:
    """Cortical bone where ``distance`` < 0, marrow deeper than ``cortex_mm``."""
    canvas.paint(box, "cortical_bone", distance < 0, only=only)
    canvas.paint(box, "marrow", distance < -canvas.thick(cortex_mm), only=("cortical_bone",))


def _paint_spine(canvas: Canvas) -> None:
    body = canvas.body
    d_lo, d_hi = SPINE_KNOTS[0, 0], SPINE_KNOTS[-1, 0]
    ys = spine_at(body, np.linspace(d_lo, d_hi, 64))[0]
    b = canvas.box((-60 * body.width, ys.min() - 30, body.z(d_hi)), (60 * body.width, ys.max() + 70, body.z(d_lo)))
    d = body.d(b.z)
    yc, rx, ry, rc = (np.asarray(v, dtype=np.float32) for v in spine_at(body, d))
    level = level_at(d).astype(np.float32)
    frac = level - np.floor(level)
    vertebral = (level >= 0.8) & (level < 27)
    disc = vertebral & (frac < DISC_FRACTION) & (level < 24.1)
    column = sdf.ellipse(b.x, b.y - yc, rx, ry)
    canvas.paint(b, "cortical_bone", (column < 0) & vertebral & ~disc, only=SOFT)
    canvas.paint(b, "marrow", (column < -canvas.thick(1.5)) & vertebral & ~disc, only=("cortical_bone",))
    canvas.paint(b, "cartilage", (column < 0) & disc, only=SOFT)

    canal_y = yc + ry + rc + np.float32(1.5)
    u, v = b.x, b.y - canal_y
    radial = np.sqrt(u * u + v * v)
    arch_level = (frac > 0.3) & (frac < 0.92) & (level >= 0.8) & (level < 24)
    lamina = canvas.thick(4.0)
    arch = arch_level & (radial > rc) & (radial < rc + lamina) & (v > -0.4 * rc)
    slope = level + 0.3 * np.clip(v - rc, 0, None) / 25.0
    spinous = (np.abs(u) < canvas.thick(3.5) / 2) & (v > rc) & (v < rc + 26) & \
              ((slope - np.floor(slope)) > 0.3) & ((slope - np.floor(slope)) < 0.8) & (level >= 0.8) & (level < 24)
    transverse = arch_level & (np.abs(v) < canvas.thick(4.0) / 2) & (np.abs(u) > rc) & (np.abs(u) < rc + 24)
    canvas.paint(b, "cortical_bone", arch | spinous | transverse, only=SOFT)
    canvas.paint(b, "csf", radial < rc, only=SOFT + ("cortical_bone", "marrow"))
    cord = radial < np.maximum(0.55 * rc, np.float32(canvas.voxel * 0.6))
    canvas.paint(b, "spinal_cord", cord & (d < CORD_END_D), only=("csf",))


def _paint_ribs(canvas: Canvas) -> None:
    """Twelve pairs of ribs on an elliptic cage, descending towards the sternum."""
    body = canvas.body
    d_lo, d_hi = 318.0, 700.0
    b = canvas.box((-170 * body.width, -110 * body.depth, body.z(d_hi)), (170 * body.width, 120 * body.depth, body.z(d_lo)))
    d = body.d(b.z)
    rx, ry, cy = section(CAVITY_KNOTS, body, d)
    cage = sdf.ellipse(b.x, b.y - cy, rx + RIB_OFFSET_MM, ry + RIB_OFFSET_MM)
    theta = np.arctan2(b.x, b.y - cy)  # 0 at the back, ±π at the front
    drop = 55.0 * (1 - np.cos(theta)) / 2
    rib_level = level_at(d + drop) + 0.2
    rib = np.floor(rib_level)
    in_band = (rib_level - rib) < 0.4
    half = canvas.thick(8.0) / 2
    reach = np.where(rib >= 17, 1.9, np.pi)  # the last two ribs float
    ribs = in_band & (rib >= 7) & (rib <= 18) & (np.abs(cage) < half) & (np.abs(theta) < reach)
    ribs &= np.abs(b.x) > 22 * body.width
    costal = ribs & (np.abs(theta) > 2.45)
    bony = ribs & ~costal
    canvas.paint(b, "cortical_bone", bony, only=SOFT)
    canvas.paint(b, "marrow", bony & (np.abs(cage) < half - canvas.thick(2.0)), only=("cortical_bone",))
    canvas.paint(b, "cartilage", costal, only=SOFT)


def _paint_shoulder_girdle(canvas: Canvas) -> None:
    body = canvas.body
    c, r = body.pt(0, -84, 430), body.size(16, 6, 92)
    b = canvas.box(*sdf.bounds(c, r, 2))
    _bone(canvas, b, sdf.ellipsoid(b.points, c, r), 2.0)
    for side in (-1, 1):
        nodes = body.pts([(side * 18, -72, 332), (side * 90, -58, 322), (side * 150, -5, 318)])
        b = canvas.box(*sdf.tube_bounds(nodes, 7, 2))
        _bone(canvas, b, sdf.tube(b.points, nodes, 7.0), 2.5)
        normal = np.array([side * 0.55, 0.83, 0.0])
        c, r = body.pt(side * 95, 84, 405), np.array([80 * body.height, 55 * body.width, 4.5])
        b = canvas.box(*sdf.bounds(c, r, 2))
        _bone(canvas, b, sdf.ellipsoid(b.points, c, r, sdf.frame_from_axis(normal)), 2.0)


def _paint_pelvis_and_legs(canvas: Canvas) -> None:
    body = canvas.body
    shell = canvas.thick(9.0)
    c, r = body.pt(0, 20, 690), body.size(145, 92, 165)
    b = canvas.box(body.pt(-150, -80, 850), body.pt(150, 115, 725))
    d = body.d(b.z)
    wing = (d > 728) & (d < 850) & (b.y > -35 * body.depth) & (np.abs(b.x) > 60 * body.width)
    depth = -sdf.ellipsoid(b.points, c, r)
    _bone(canvas, b, np.where(wing, np.abs(depth - shell / 2) - shell / 2, 1.0), 2.0)
    c, r = body.pt(0, 5, 862), body.size(95, 62, 40)
    b = canvas.box(*sdf.bounds(c, r, 2))
    lower = (body.d(b.z) > 842) & ((b.y < 0) | (np.abs(b.x) > 55 * body.width))
    depth = -sdf.ellipsoid(b.points, c, r)
    _bone(canvas, b, np.where(lower, np.abs(depth - shell / 2) - shell / 2, 1.0), 2.0)
    for side in (-1, 1):
        head = body.pt(side * 88, 5, 858)
        b = canvas.box(head - 40, head + 40)
        socket = sdf.sphere(b.points, head, 29.0)
        _bone(canvas, b, np.where(b.z > np.float32(head[2] - 8), np.abs(socket) - 4.0, 1.0), 1.5)
        canvas.paint(b, "cartilage", np.abs(socket + 4.5) < canvas.thick(1.5) / 2, only=SOFT)
        femur = np.array([head, body.pt(side * 122, 12, 885), body.pt(side * 78, 2, 1320)])
        radii = np.array([23.0, 15.0, 14.0])
        b = canvas.box(*sdf.tube_bounds(femur, radii, 2))
        _bone(canvas, b, np.minimum(sdf.sphere(b.points, head, 23.0), sdf.tube(b.points, femur[1:], radii[1:])),
              3.0, only=SOFT + ("cartilage",))
        neck = sdf.segment(b.points, femur[0], femur[1], 15.0, 15.0)
        _bone(canvas, b, neck, 2.0, only=SOFT + ("cartilage",))


def _paint_arms(canvas: Canvas) -> None:
    body = canvas.body
    for side in (-1, 1):
        shoulder, elbow, wrist, hand = arm_nodes(body, side)
        joint = shoulder + np.array([-side * 6.0, 0, -12.0])
        b = canvas.box(np.minimum(joint, elbow) - 30, np.maximum(joint, elbow) + 30)
        humerus = np.minimum(sdf.sphere(b.points, joint, 22.0), sdf.segment(b.points, joint, elbow, 11.0, 12.0))
        _bone(canvas, b, humerus, 3.5)
        b = canvas.box(np.minimum(elbow, hand) - 60, np.maximum(elbow, hand) + 60)
        ap = np.array([0, 1.0, 0])
        for offset, radius in ((-8.0, 7.0), (8.0, 6.0)):
            a, e = elbow + offset * ap, wrist + offset * ap
            _bone(canvas, b, sdf.segment(b.points, a, e, radius, radius), 2.5)
        axis = (hand - wrist) / np.linalg.norm(hand - wrist)
        for offset in (-21.0, -7.0, 7.0, 21.0):
            a = wrist + 18 * axis + offset * ap
            canvas.paint(b, "cortical_bone", sdf.segment(b.points, a, a + 70 * axis, 4.0, 3.5) < 0, only=SOFT)


def paint_skeleton(canvas: Canvas) -> None:
    _paint_spine(canvas)
    _paint_ribs(canvas)
    _paint_shoulder_girdle(canvas)
    _paint_pelvis_and_legs(canvas)
    _paint_arms(canvas)
