"""Signed distance functions (mm, negative inside) for the shapes bodies are built from.

Each takes the broadcast coordinates ``p = (x, y, z)`` of a `Box` and returns float32. The
ellipsoid and ellipse use Quilez's first-order bound, exact on the surface and good within a few
centimetres of it, which is where layers (skin, skull, cortex, myocardium) are cut from them.
"""
from __future__ import annotations

import numpy as np

Points = tuple[np.ndarray, np.ndarray, np.ndarray]
_EPS = np.float32(1e-6)


def rotation(axis, angle_rad: float) -> np.ndarray:
    """3×3 rotation about ``axis`` by ``angle_rad`` (right hand), Rodrigues' formula."""
    a = np.asarray(axis, dtype=np.float64)
    a = a / np.linalg.norm(a)
    k = np.array([[0, -a[2], a[1]], [a[2], 0, -a[0]], [-a[1], a[0], 0]])
    return np.eye(3) + np.sin(angle_rad) * k + (1 - np.cos(angle_rad)) * (k @ k)


def frame_from_axis(axis) -> np.ndarray:
    """A rotation whose third column is the unit vector along ``axis`` (for elongated organs)."""
    w = np.asarray(axis, dtype=np.float64)
    w = w / np.linalg.norm(w)
    helper = np.array([1.0, 0, 0]) if abs(w[0]) < 0.9 else np.array([0, 1.0, 0])
    u = np.cross(helper, w)
    u /= np.linalg.norm(u)
    return np.stack([u, np.cross(w, u), w], axis=1)


def local(p: Points, centre, rot: np.ndarray | None = None) -> Points:
    """Coordinates of ``p`` in a frame centred at ``centre`` with axes the columns of ``rot``."""
    x, y, z = (p[i] - np.float32(centre[i]) for i in range(3))
    if rot is None:
        return x, y, z
    r = np.asarray(rot, dtype=np.float32)
    return tuple(r[0, k] * x + r[1, k] * y + r[2, k] * z for k in range(3))


def ellipsoid(p: Points, centre, radii, rot: np.ndarray | None = None) -> np.ndarray:
    u, v, w = local(p, centre, rot)
    rx, ry, rz = (np.float32(r) for r in radii)
    k0 = np.sqrt((u / rx) ** 2 + (v / ry) ** 2 + (w / rz) ** 2)
    k1 = np.sqrt((u / (rx * rx)) ** 2 + (v / (ry * ry)) ** 2 + (w / (rz * rz)) ** 2)
    return k0 * (k0 - 1) / np.maximum(k1, _EPS)


def ellipse(u: np.ndarray, v: np.ndarray, ru, rv) -> np.ndarray:
    """2-D ellipse distance in the (u, v) plane; ``ru``, ``rv`` may vary (e.g. along z)."""
    k0 = np.sqrt((u / ru) ** 2 + (v / rv) ** 2)
    k1 = np.sqrt((u / (ru * ru)) ** 2 + (v / (rv * rv)) ** 2)
    return k0 * (k0 - 1) / np.maximum(k1, _EPS)


def segment(p: Points, a, b, ra: float, rb: float) -> np.ndarray:
    """Tapered capsule from ``a`` (radius ``ra``) to ``b`` (radius ``rb``)."""
    a = np.asarray(a, dtype=np.float32)
    ba = np.asarray(b, dtype=np.float32) - a
    pa = [p[i] - a[i] for i in range(3)]
    t = np.clip((pa[0] * ba[0] + pa[1] * ba[1] + pa[2] * ba[2]) / np.float32(ba @ ba), 0, 1)
    dist = np.sqrt(sum((pa[i] - t * ba[i]) ** 2 for i in range(3)))
    return dist - (np.float32(ra) + np.float32(rb - ra) * t)


def tube(p: Points, nodes, radii) -> np.ndarray:
    """A tube along a polyline of ``nodes`` (N, 3) with radius ``radii`` (N,) at each node."""
    nodes = np.asarray(nodes, dtype=np.float64)
    radii = np.broadcast_to(np.asarray(radii, dtype=np.float64), (len(nodes),))
    out = segment(p, nodes[0], nodes[1], radii[0], radii[1])
    for i in range(1, len(nodes) - 1):
        out = np.minimum(out, segment(p, nodes[i], nodes[i + 1], radii[i], radii[i + 1]))
    return out


def sphere(p: Points, centre, radius: float) -> np.ndarray:
    u, v, w = local(p, centre)
    return np.sqrt(u * u + v * v + w * w) - np.float32(radius)


def smooth_union(d1: np.ndarray, d2: np.ndarray, k: float) -> tuple[np.ndarray, np.ndarray]:
    """Polynomial smooth minimum of two distances, and the blend weight of ``d1`` (for attributes)."""
    k = np.float32(k)
    h = np.clip(np.float32(0.5) + np.float32(0.5) * (d2 - d1) / k, 0, 1)
    return d2 + (d1 - d2) * h - k * h * (1 - h), h


def bounds(centre, radii, margin: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Axis-aligned box around a (possibly rotated) shape of the given half-extents."""
    c = np.asarray(centre, dtype=np.float64)
    r = np.full(3, float(np.max(radii)) + margin)
    return c - r, c + r


def tube_bounds(nodes, radii, margin: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    nodes = np.asarray(nodes, dtype=np.float64)
    r = float(np.max(radii)) + margin
    return nodes.min(axis=0) - r, nodes.max(axis=0) + r
