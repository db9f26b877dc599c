"""Shared anatomical frames: trunk and cavity outlines, the diaphragm, the spine, the arms.

Several painters must agree on these (the ribs hug the cavity, the aorta lies in front of the
vertebrae, the bowel stays in front of the spine), so they are defined once, here, as
functions of the nominal depth below the crown d (see `core.phantom.body`).
"""
from __future__ import annotations

import numpy as np

from core.phantom import sdf
from core.phantom.body import Body
from core.phantom.grid import Box

# Lean trunk cross-section: depth d, semi-axes rx, ry, centre y (mm).
TRUNK_KNOTS = np.array([
    (270, 55, 50, 12), (285, 95, 65, 12), (300, 140, 80, 12), (318, 168, 92, 10), (345, 176, 100, 8),
    (420, 164, 106, 6), (520, 152, 104, 4), (620, 136, 98, 4), (700, 142, 100, 8), (780, 158, 104, 16),
    (840, 162, 102, 20), (880, 150, 95, 20)])
TRUNK_TOP, TRUNK_BOTTOM = 270.0, 875.0

# Inner outline of the body wall (thoracic and abdominal cavities share it): d, rx, ry, centre y.
CAVITY_KNOTS = np.array([
    (318, 30, 30, 18), (340, 90, 62, 14), (400, 124, 80, 12), (500, 128, 84, 12), (600, 116, 82, 10),
    (700, 110, 78, 8), (790, 104, 76, 12), (840, 80, 62, 16), (868, 50, 40, 18)])
CAVITY_TOP, CAVITY_BOTTOM = 322.0, 862.0
DIAPHRAGM_MM = 4.0

# Spine: d, body centre y, body semi-axes rx, ry, canal radius (mm).
SPINE_KNOTS = np.array([
    (190, 14, 9, 8, 9), (310, 28, 12, 10, 8), (450, 58, 14, 12, 8), (620, 50, 18, 14, 9), (740, 40, 22, 16, 10),
    (790, 52, 22, 15, 9), (840, 70, 20, 13, 7), (885, 84, 10, 8, 5)])
# Vertebral level (C1 = 0 … L5 = 23, sacrum from 24) at depths d: 7 cervical, 12 thoracic, 5 lumbar.
LEVEL_KNOTS = np.array([(192, 0.0), (312, 7.0), (625, 19.0), (792, 24.0), (885, 27.0)])


def section(knots: np.ndarray, body: Body, d) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Physical semi-axes rx, ry and centre y (float32) of an outline at depth(s) d."""
    return tuple(np.asarray(np.interp(d, knots[:, 0], knots[:, i]) * s, dtype=np.float32)
                 for i, s in ((1, body.width), (2, body.depth), (3, body.depth)))


def dome_d(body: Body, x, y) -> np.ndarray:
    """Depth of the diaphragm's upper surface above (x, y): two domes, the right one higher."""
    xn, yn = x / np.float32(body.width), y / np.float32(body.depth)
    return (565 + 0.0028 * xn * xn + 0.0018 * (yn - 10) ** 2 - 12 * np.exp(-((xn + 55) / 45) ** 2)).astype(np.float32)


def cavities(body: Body, b: Box) -> tuple[np.ndarray, np.ndarray]:
    """Distances (mm) to the thoracic and the abdominal cavity in box ``b``."""
    d = body.d(b.z)
    rx, ry, cy = section(CAVITY_KNOTS, body, d)
    wall = np.maximum(sdf.ellipse(b.x, b.y - cy, rx, ry), np.float32(body.height) * (CAVITY_TOP - d))
    below = np.float32(body.height) * (d - dome_d(body, b.x, b.y))
    thorax = np.maximum(wall, below)
    abdomen = np.maximum(np.maximum(wall, np.float32(DIAPHRAGM_MM) - below), np.float32(body.height) * (d - CAVITY_BOTTOM))
    return thorax, abdomen


def cavity_bounds(body: Body) -> tuple[np.ndarray, np.ndarray]:
    k = CAVITY_KNOTS
    lo = np.array([-k[:, 1].max() * body.width, (k[:, 3] - k[:, 2]).min() * body.depth, body.z(CAVITY_BOTTOM)])
    hi = np.array([k[:, 1].max() * body.width, (k[:, 3] + k[:, 2]).max() * body.depth, body.z(CAVITY_TOP)])
    return lo - 5, hi + 5


def spine_at(body: Body, d):
    """Physical body-centre y, semi-axes rx, ry and canal radius of the spine at depth(s) d."""
    k = SPINE_KNOTS
    base = np.interp(d, [k[0, 0], k[-1, 0]], [k[0, 1], k[-1, 1]])
    y = base + body.kyphosis * (np.interp(d, k[:, 0], k[:, 1]) - base)
    return (body.depth * y, body.width * np.interp(d, k[:, 0], k[:, 2]),
            body.depth * np.interp(d, k[:, 0], k[:, 3]), np.interp(d, k[:, 0], k[:, 4]))


def level_at(d):
    """Vertebral level coordinate at depth(s) d (its integer steps are the discs)."""
    return np.interp(d, LEVEL_KNOTS[:, 0], LEVEL_KNOTS[:, 1], left=-1.0, right=99.0)


def arm_nodes(body: Body, side: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Shoulder, elbow, wrist and hand centre of one arm (side +1 left, -1 right), physical mm."""
    alpha = np.deg2rad(body.abduction_deg[0 if side < 0 else 1])
    shoulder = body.pt(side * 165, 15, 330)
    upper = np.array([side * np.sin(alpha), 0.02, -np.cos(alpha)])
    elbow = shoulder + 290 * body.height * upper / np.linalg.norm(upper)
    beta = alpha + np.deg2rad(2.0)
    lower = np.array([side * np.sin(beta), -0.06, -np.cos(beta)])
    lower /= np.linalg.norm(lower)
    wrist = elbow + 250 * body.height * lower
    return shoulder, elbow, wrist, wrist + 85 * body.height * lower
