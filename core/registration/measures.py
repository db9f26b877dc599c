"""Alignment measures: Dice per tissue, normalised mutual information, target registration error.

TRE convention. Elastix's transform maps a cryosection (fixed) point p to an MRI (moving) point
T(p); the phantom's truth ``mri_to_cryo`` maps the other way. For each body point p of the
cryosection the true MRI point q* solves ``mri_to_cryo(q*) = p`` (found by fixed-point
iteration, see `invert_mapping`), and the error is ``|T(p) − q*|`` in millimetres of MRI space.
"Before" is the identity T(p) = p, i.e. how far the data were misaligned to begin with.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from core.labels import LabelTable

PointMap = Callable[[np.ndarray], np.ndarray]


def dice_per_label(a: np.ndarray, b: np.ndarray, ids: list[int] | None = None) -> dict[int, float]:
    """Dice 2|A∩B| / (|A| + |B|) of every non-zero label present in ``a`` or ``b`` (or of ``ids``)."""
    a = np.asarray(a).ravel().astype(np.int64)
    b = np.asarray(b).ravel().astype(np.int64)
    if a.shape != b.shape:
        raise ValueError(f"label arrays differ in size: {a.size} vs {b.size}")
    k = int(max(a.max(initial=0), b.max(initial=0))) + 1
    joint = np.bincount(a * k + b, minlength=k * k).reshape(k, k)
    size_a, size_b, both = joint.sum(axis=1), joint.sum(axis=0), np.diag(joint)
    wanted = ids if ids is not None else [i for i in range(1, k) if size_a[i] + size_b[i] > 0]
    out: dict[int, float] = {}
    for i in wanted:
        total = (size_a[i] + size_b[i]) if i < k else 0
        out[int(i)] = float(2 * both[i] / total) if total else float("nan")
    return out


def named_dice(dice: dict[int, float], table: LabelTable | None) -> dict[str, float]:
    """Dice keyed by tissue name (id when the table lacks it), for reports."""
    return {(table.name(i) if table is not None else str(i)): round(v, 4) for i, v in dice.items()}


def mean_dice(dice: dict[int, float]) -> float:
    values = [v for v in dice.values() if np.isfinite(v)]
    return float(np.mean(values)) if values else float("nan")


def normalised_mutual_information(a: np.ndarray, b: np.ndarray, bins: int = 32) -> float:
    """(H(A) + H(B)) / H(A, B) of two equally long samples: 1 when independent, 2 when identical."""
    a = np.asarray(a, dtype=np.float64).ravel()
    b = np.asarray(b, dtype=np.float64).ravel()
    joint, _, _ = np.histogram2d(a, b, bins=bins)
    p = joint / max(joint.sum(), 1)

    def entropy(q: np.ndarray) -> float:
        q = q[q > 0]
        return float(-(q * np.log(q)).sum())

    h_joint = entropy(p)
    return (entropy(p.sum(axis=0)) + entropy(p.sum(axis=1))) / h_joint if h_joint > 0 else 1.0


def invert_mapping(forward: PointMap, targets: np.ndarray, start: np.ndarray | None = None,
                   iterations: int = 30, tolerance_mm: float = 1e-3) -> tuple[np.ndarray, float]:
    """Points q with ``forward(q) ≈ targets`` by the fixed-point iteration q ← q − (forward(q) − p).

    Converges when ``forward`` is close to a translation locally (rotations of a few degrees,
    smooth deformations), which is the phantom's case. Returns (q, worst residual in mm).
    """
    p = np.asarray(targets, dtype=np.float64)
    q = p.copy() if start is None else np.asarray(start, dtype=np.float64).copy()
    residual = np.inf
    for _ in range(iterations):
        step = forward(q) - p
        residual = float(np.sqrt((step ** 2).sum(axis=-1)).max(initial=0))
        if residual < tolerance_mm:
            break
        q -= step
    return q, residual


def error_stats(errors_mm: np.ndarray) -> dict[str, float]:
    """Mean, median, 95th percentile and max of distances (mm)."""
    e = np.asarray(errors_mm, dtype=np.float64)
    return {"mean": float(e.mean()), "median": float(np.median(e)), "p95": float(np.percentile(e, 95)),
            "max": float(e.max())}


def target_registration_error(estimate: PointMap, mri_to_cryo: PointMap, points: np.ndarray) -> dict:
    """TRE before (identity) and after ``estimate`` at cryosection points (n, 3); see the module doc.

    Returns ``{"before": stats, "after": stats, "reduction": 1 − after/before (means),
    "inverse_residual_mm": how well the truth was inverted}``.
    """
    p = np.asarray(points, dtype=np.float64)
    q_est = estimate(p)
    q_true, residual = invert_mapping(mri_to_cryo, p, start=q_est)
    before = error_stats(np.linalg.norm(p - q_true, axis=1))
    after = error_stats(np.linalg.norm(q_est - q_true, axis=1))
    return {"before": before, "after": after, "reduction": 1.0 - after["mean"] / before["mean"],
            "inverse_residual_mm": residual, "points": int(len(p)),
            "space": "MRI mm: |T(p) - q*| with mri_to_cryo(q*) = p, p in the cryosection body"}


def body_points(mask: np.ndarray, frame, n: int, seed: int = 0) -> np.ndarray:
    """``n`` seeded physical points (n, 3) spread over the voxels of ``mask`` (jittered in the voxel)."""
    rng = np.random.default_rng(seed)
    idx = np.argwhere(mask)
    if idx.size == 0:
        raise ValueError("the mask is empty: no points to measure")
    pick = idx[rng.integers(0, len(idx), n)][:, ::-1] + rng.uniform(-0.5, 0.5, (n, 3))
    return frame.index_to_physical(pick)
