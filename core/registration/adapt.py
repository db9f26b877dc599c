"""Elastix settings that follow the volumes' size, instead of one set tuned for one body.

One parameter set cannot suit a whole body on a 4 mm grid, the same body on a 10 mm grid and a
head at 1 mm: a 30 mm B-spline grid is 7 voxels wide on the first and 3 on the second (too few to
measure anything, so the deformation chases noise), and three pyramid levels leave a coarse
body only a few voxels thick at the top. So the shipped parameter files leave out the keys that
depend on the geometry, and they are filled here from the registration grid's spacing and the
body's extent. A key that a parameter file or ``--set`` does give is left alone.
"""
from __future__ import annotations

import math

import numpy as np

from core.registration.params import ParameterMap
from core.volume import Volume

#: The coarsest pyramid level keeps at least this many voxels across the body's smallest extent.
MIN_LEVEL_VOXELS = 8
MAX_LEVELS = 4
#: B-spline control points: at least this many registration voxels apart (fewer cannot be measured)…
MIN_GRID_VOXELS = 4.0
#: … and about this many across the body's smallest extent (the scale of soft-tissue deformation).
GRID_POINTS_ACROSS = 8.0
#: Iterations and samples per pyramid level, coarsest first (the finest level gets the last value).
#: The coarse levels only need to get close: fewer iterations there save time, not accuracy.
RIGID_ITERATIONS, RIGID_SAMPLES = (96, 128, 192, 256), 2048
BSPLINE_ITERATIONS, BSPLINE_SAMPLES = (60, 100), (2048, 4096)


def body_extent_mm(grid: Volume, mask: np.ndarray) -> np.ndarray:
    """The body's bounding-box size (x, y, z) in mm on ``grid``."""
    index = np.argwhere(mask)
    if index.size == 0:
        raise ValueError("the body mask is empty")
    return (index.max(axis=0) - index.min(axis=0) + 1)[::-1] * grid.spacing


def pyramid_levels(smallest_extent_voxels: float) -> int:
    """Resolutions such that the coarsest (halved per level) keeps `MIN_LEVEL_VOXELS` across the body."""
    if smallest_extent_voxels < 2 * MIN_LEVEL_VOXELS:
        return 1
    return min(MAX_LEVELS, 1 + int(math.floor(math.log2(smallest_extent_voxels / MIN_LEVEL_VOXELS))))


def bspline_grid_mm(spacing_mm: float, smallest_extent_mm: float) -> float:
    """Final B-spline control-point spacing: `GRID_POINTS_ACROSS` across the body, never under
    `MIN_GRID_VOXELS` voxels."""
    return float(round(max(MIN_GRID_VOXELS * spacing_mm, smallest_extent_mm / GRID_POINTS_ACROSS)))


def _per_level(values: tuple[int, ...] | int, levels: int) -> list[str]:
    """Per-level values for ``levels`` resolutions, the finest taking the last value."""
    values = (values,) if isinstance(values, int) else values
    return [str(values[max(0, len(values) - levels + i)]) for i in range(levels)]


def adapted_values(pmap: ParameterMap, grid: Volume, mask: np.ndarray) -> ParameterMap:
    """The geometry-dependent keys for one stage (all of them, whether or not ``pmap`` sets them);
    per-level lists follow the stage's own ``NumberOfResolutions`` when it sets one."""
    spacing = float(grid.spacing.max())
    smallest = float(body_extent_mm(grid, mask).min())
    bspline = pmap["Transform"][0] == "BSplineTransform"
    levels = pyramid_levels(smallest / spacing)
    levels = int(pmap["NumberOfResolutions"][0]) if "NumberOfResolutions" in pmap else min(levels, 2 if bspline else levels)
    if not bspline:
        return {"NumberOfResolutions": [str(levels)],
                "MaximumNumberOfIterations": _per_level(RIGID_ITERATIONS, levels),
                "NumberOfSpatialSamples": _per_level(RIGID_SAMPLES, levels)}
    return {"NumberOfResolutions": [str(levels)],
            "FinalGridSpacingInPhysicalUnits": [str(bspline_grid_mm(spacing, smallest))],
            "GridSpacingSchedule": [str(2 ** (levels - 1 - i)) for i in range(levels)],
            "MaximumNumberOfIterations": _per_level(BSPLINE_ITERATIONS, levels),
            "NumberOfSpatialSamples": _per_level(BSPLINE_SAMPLES, levels)}


def adapt_stages(stages: list[ParameterMap], grid: Volume, mask: np.ndarray) -> tuple[list[ParameterMap], list[dict]]:
    """Copies of ``stages`` with the geometry-dependent keys they lack filled in, and what was filled."""
    out, filled = [], []
    for pmap in stages:
        values = {k: v for k, v in adapted_values(pmap, grid, mask).items() if k not in pmap}
        out.append({**pmap, **values})
        filled.append({k: v if len(v) > 1 else v[0] for k, v in values.items()})
    return out, filled
