"""The head inside the scalp: skull (tables and diploë), CSF rim, folded cortex, white matter,
ventricles, cerebellum with folia, brainstem, orbits and jaw.

Cortical folding: a smooth random field is sampled at each point's radial projection onto the
cerebral surface, so its zero set forms sheets running *into* the brain, like sulci; CSF fills
the sheets down to the sulcal depth and grey matter lines them and the surface. The brain's
distance function is shared with the envelope, which wraps the cranium around it.
"""
from __future__ import annotations

import numpy as np

from core.phantom import sdf
from core.phantom.body import Body
from core.phantom.canvas import Canvas
from core.phantom.fields import LatticeField, stream

CSF_MM = 3.0
SKULL_MM = 7.0
CRANIUM_MM = CSF_MM + SKULL_MM + 2.0  # brain surface to the outside of the lean head
GM_MM = 3.5
MEANDER = 0.6
RADIAL = 0.5  # 1: sulci exactly radial; less lets them lean and curve with depth


def cerebrum(body: Body) -> tuple[np.ndarray, np.ndarray]:
    return body.head_pt(0, 5, 82), body.head * np.array([66.0, 83.0, 60.0])


def cerebellum(body: Body) -> tuple[np.ndarray, np.ndarray]:
    return body.head_pt(0, 50, 136), body.head * np.array([50.0, 31.0, 24.0])


def brain_bounds(body: Body) -> tuple[np.ndarray, np.ndarray]:
    boxes = [sdf.bounds(*cerebrum(body)), sdf.bounds(*cerebellum(body))]
    return np.minimum(boxes[0][0], boxes[1][0]), np.maximum(boxes[0][1], boxes[1][1])


def brain_distance(p, body: Body) -> np.ndarray:
    """Distance to the brain surface (cerebrum smoothly joined to the cerebellum), mm."""
    return sdf.smooth_union(sdf.ellipsoid(p, *cerebrum(body)), sdf.ellipsoid(p, *cerebellum(body)), 8.0)[0]


def fold_distance(canvas: Canvas, box, mask: np.ndarray, fold_mm: float | None = None) -> np.ndarray:
    """Approximate distance (mm) from each masked voxel to the nearest sulcal sheet; ``fold_mm``
    (default: the subject's) is the correlation length of the folding pattern."""
    body = canvas.body
    fold_mm = body.fold_mm if fold_mm is None else fold_mm
    centre, radii = cerebrum(body)
    lo, hi = sdf.bounds(centre, radii, 10)
    field = LatticeField.gaussian(stream(canvas.seed, "head.folds"), lo, hi, fold_mm)
    meander = LatticeField.gaussian(stream(canvas.seed, "head.meander"), lo, hi, 3 * fold_mm, channels=3)
    x, y, z = (np.broadcast_to(c, mask.shape)[mask] for c in box.points)
    rel = np.stack([x - centre[0], y - centre[1], z - centre[2]], axis=-1)
    k0 = np.linalg.norm(rel / radii, axis=-1, keepdims=True)
    surface = centre + rel / np.maximum(k0, 1e-6)
    surface += (1 - RADIAL) * (rel + centre - surface)
    surface += MEANDER * fold_mm * meander.at(surface)  # domain warp: sulci wander and branch
    slope = np.linalg.norm(field.gradient().at(surface), axis=-1)
    return np.abs(field.at(surface)) / np.maximum(slope, 1e-3)


def paint_head(canvas: Canvas) -> None:
    body, ids = canvas.body, canvas.ids
    lo, hi = brain_bounds(body)
    box = canvas.box(lo - CRANIUM_MM * body.head - 10, hi + CRANIUM_MM * body.head + 10)
    dist = brain_distance(box.points, body)
    csf, table = canvas.thick(CSF_MM), canvas.thick(2.0)
    skull_out = csf + np.float32(SKULL_MM)
    soft = ("muscle", "fat")
    canvas.paint(box, "cortical_bone", (dist > csf) & (dist <= skull_out), only=soft)
    canvas.paint(box, "marrow", (dist > csf + table) & (dist <= skull_out - table), only=("cortical_bone",))
    canvas.paint(box, "csf", (dist > 0) & (dist <= csf), only=soft)

    inside = dist <= 0
    cb_centre, cb_radii = cerebellum(body)
    cr_centre, cr_radii = cerebrum(body)
    in_cerebellum = inside & (sdf.ellipsoid(box.points, cb_centre, cb_radii)
                              < sdf.ellipsoid(box.points, cr_centre, cr_radii))
    in_cerebrum = inside & ~in_cerebellum
    depth = -dist
    gm = canvas.thick(GM_MM)
    sulcus_half = np.float32(max(0.6, 0.6 * canvas.voxel))  # wide enough to stay mostly connected on the grid
    label = np.where(depth < gm, ids["grey_matter"], ids["white_matter"]).astype(np.uint8)

    # cerebrum: sulci, and the interhemispheric fissure everywhere but over the corpus callosum
    shell = in_cerebrum & (depth < body.sulcal_depth_mm + gm)
    fold = fold_distance(canvas, box, shell)
    shell_label = label[shell]
    shell_label[fold < sulcus_half + gm] = ids["grey_matter"]
    shell_label[(fold < sulcus_half) & (depth[shell] < body.sulcal_depth_mm)] = ids["csf"]
    label[shell] = shell_label
    phase = stream(canvas.seed, "head.midline").uniform(0, 2 * np.pi, 2)
    bend = 3.0 * np.sin((box.y - cr_centre[1]) / 25.0 + phase[0]) * np.sin((box.z - cr_centre[2]) / 20.0 + phase[1])
    midline = np.abs(box.x - np.float32(cr_centre[0]) - bend.astype(np.float32))  # brains are not symmetric
    callosum = cr_centre + np.array([0, 0.05, -0.3]) * cr_radii, cr_radii * np.array([1.0, 0.55, 0.62])
    fissure = in_cerebrum & (sdf.ellipsoid(box.points, *callosum) > 0)
    falx_half = np.float32(max(0.5, 0.3 * canvas.voxel))  # the hemispheres' medial faces nearly touch
    label[fissure & (midline < falx_half + gm)] = ids["grey_matter"]
    label[fissure & (midline < falx_half)] = ids["csf"]

    # cerebellum: folia parallel to its surface around a white-matter core
    folia_field = LatticeField.gaussian(stream(canvas.seed, "head.folia"), *sdf.bounds(cb_centre, cb_radii, 5), 10.0)
    period = np.float32(max(7.0, 3 * canvas.voxel))
    cb_depth = depth[in_cerebellum]
    pts = np.stack([np.broadcast_to(c, in_cerebellum.shape)[in_cerebellum] for c in box.points], axis=-1)
    folia = np.sin(2 * np.pi * (cb_depth + 2.5 * folia_field.at(pts)) / period)
    cb_label = np.where(cb_depth > 0.45 * cb_radii[2], ids["white_matter"], ids["grey_matter"]).astype(np.uint8)
    cb_label[(np.abs(folia) < 0.3) & (cb_depth > 0.5 * period)] = ids["white_matter"]
    label[in_cerebellum] = cb_label
    canvas.labels[box.slices][inside] = label[inside]
    _paint_ventricles(canvas)
    _paint_brainstem(canvas)
    _paint_face(canvas)


def _paint_ventricles(canvas: Canvas) -> None:
    body = canvas.body
    for side in (-1, 1):
        c = body.head_pt(side * 11, 0, 78)
        r = body.head * np.array([6.0, 30.0, 10.0])
        rot = sdf.rotation((0, 0, 1), np.deg2rad(-12 * side))
        b = canvas.box(*sdf.bounds(c, r, 2))
        canvas.paint(b, "csf", sdf.ellipsoid(b.points, c, r, rot) < 0, only=("white_matter", "grey_matter"))
    c = body.head_pt(0, 12, 92)
    r = np.array([canvas.voxel * 0.6, 14.0 * body.head, 9.0 * body.head])
    b = canvas.box(*sdf.bounds(c, r, 2))
    canvas.paint(b, "csf", sdf.ellipsoid(b.points, c, r) < 0, only=("white_matter", "grey_matter"))


def _paint_brainstem(canvas: Canvas) -> None:
    body = canvas.body
    nodes = np.array([body.head_pt(0, 16, 98), body.head_pt(0, 26, 185)])
    radii = body.head * np.array([12.0, 8.5])
    b = canvas.box(*sdf.tube_bounds(nodes, radii, 2))
    canvas.paint(b, "white_matter", sdf.tube(b.points, nodes, radii) < 0,
                 only=("grey_matter", "csf", "cortical_bone", "marrow", "muscle", "fat"))


def _paint_face(canvas: Canvas) -> None:
    """Orbits (fat) with the globes (fluid, shown as CSF) and the mandible."""
    body = canvas.body
    for side in (-1, 1):
        c = body.head_pt(side * 32, -70, 118)
        b = canvas.box(*sdf.bounds(c, (19,) * 3, 2))
        canvas.paint(b, "fat", sdf.sphere(b.points, c, 18 * body.head) < 0, only=("muscle", "cortical_bone", "marrow"))
        canvas.paint(b, "csf", sdf.sphere(b.points, c, 12 * body.head) < 0, only=("fat",))
    paint_jaw(canvas)


def paint_jaw(canvas: Canvas) -> None:
    """The mandible: a bony shell in the lower face, marrow in its middle third."""
    body = canvas.body
    face_c, face_r = body.head_pt(0, -38, 158), body.head * np.array([56.0, 52.0, 72.0])
    b = canvas.box(*sdf.bounds(face_c, face_r, 2))
    depth = -sdf.ellipsoid(b.points, face_c, face_r)
    jaw = (body.d(b.z) > 192 * body.head / body.height) & (b.y < face_c[1] + 25)
    thick = canvas.thick(7.0)
    canvas.paint(b, "cortical_bone", jaw & (depth > 6) & (depth < 6 + thick), only=("muscle", "fat"))
    canvas.paint(b, "marrow", jaw & (depth > 6 + thick / 3) & (depth < 6 + 2 * thick / 3), only=("cortical_bone",))
