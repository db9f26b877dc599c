"""The brain of the clinical head, as a radiologist reads it on a 1 mm T1.

Cortex: a 2.5–3 mm grey ribbon over the surface and down both walls of every sulcus (the
folding of `core.phantom.head`, with gyri a little wider), the interhemispheric fissure with
folded medial walls, and the Sylvian fissure with the insula at its bottom. Inside: white matter; the deep
grey nuclei (caudate along the lateral ventricle, lentiform nucleus, thalamus); lateral
ventricles as curved tubes (frontal horn, body, atrium, occipital and temporal horns), a slit of
a third ventricle, the aqueduct and a tent of a fourth ventricle; brainstem (midbrain, pons,
medulla) in CSF cisterns; the cerebellum under a tentorial gap, with a cortex of folia on a
white-matter tree (primary and secondary branches radiating in the sagittal plane).

Positions are written in the coordinates of a standard brain space (X right→left here is
symmetric, Y anterior, Z superior, millimetres from the anterior commissure) as textbook
landmarks, converted to this head by `_at`; no template image is used.
"""
from __future__ import annotations

import numpy as np

from core.phantom import head as cranium
from core.phantom import sdf
from core.phantom.body import Z_CROWN, Body
from core.phantom.canvas import Canvas
from core.phantom.fields import LatticeField, stream

GM_MM = 2.7
SULCUS_MM = 0.7       # half-width of the CSF in a sulcus
FOLD_SCALE = 1.1      # gyri a little wider than the whole-body head's (drawn for 2 mm voxels)
TENTORIUM_MM = 1.2    # half-width of the CSF gap between the occipital lobes and the cerebellum
CEREBELLUM_LOBES = 9  # primary branches of the white-matter tree over a full turn


def _at(body: Body, X: float, Y: float, Z: float) -> np.ndarray:
    """A landmark given relative to the anterior commissure (Y anterior, Z up) in this head."""
    return body.head_pt(X, -8.0 - Y, 97.0 - Z)


def basal_notch(body: Body) -> tuple[np.ndarray, np.ndarray]:
    """The ellipsoid cut from under the cerebrum: the sella, sphenoid and nasal roof live there."""
    return body.head_pt(0, -30, 153), body.head * np.array([20.0, 30.0, 33.0])


def _base_depth(x: np.ndarray, y: np.ndarray, body: Body) -> np.ndarray:
    """Nominal depth below the crown of the cerebrum's floor: the frontal lobes on the orbital
    roofs (rising to the front) and the floor over the brainstem high, the temporal lobes
    hanging ~26 mm lower in the middle cranial fossae on either side."""
    centre = cranium.cerebrum(body)[0]
    lateral = (np.abs(x - np.float32(centre[0])) / np.float32(body.head) - np.float32(27.0)) / np.float32(3.0)
    along = ((y - np.float32(centre[1])) / np.float32(body.head) - np.float32(2.0)) / np.float32(36.0)
    temporal = np.exp(-along ** 6) / (1 + np.exp(-lateral))
    frontal = np.float32(113.0) + np.float32(5.0) * np.tanh(along * np.float32(2.0))
    return frontal + np.float32(26.0) * temporal


def brain_distance(points, body: Body) -> np.ndarray:
    """Distance (mm, approximate below the floor) to the clinical brain's surface: the head's
    cerebrum cut at its floor (`_base_depth`), joined to the cerebellum, less the basal notch."""
    x, y, z = points
    floor = np.float32(Z_CROWN) - z - _base_depth(x, y, body) * np.float32(body.head)
    cerebrum = np.maximum(sdf.ellipsoid(points, *cranium.cerebrum(body)), floor.astype(np.float32))
    joined = sdf.smooth_union(cerebrum, sdf.ellipsoid(points, *cranium.cerebellum(body)), 8.0)[0]
    return np.maximum(joined, -sdf.ellipsoid(points, *basal_notch(body)))


def paint_brain(canvas: Canvas) -> None:
    """Cortex, white matter, fissures, cerebellum, then the deep structures over them."""
    body = canvas.body
    lo, hi = cranium.brain_bounds(body)
    box = canvas.box(lo - 2, hi + 2)
    inside = brain_distance(box.points, body) <= 0
    cb_centre, cb_radii = cranium.cerebellum(body)
    cr_centre, cr_radii = cranium.cerebrum(body)
    # the tentorium: a tent over the cerebellum, highest at the midline; the cerebellum under it
    lateral = (box.x - np.float32(cb_centre[0])) / np.float32(cb_radii[0])
    tent = np.float32(cb_centre[2] + 0.92 * cb_radii[2]) - np.float32(0.35 * cb_radii[2]) * lateral ** 2
    behind = box.y > np.float32(cb_centre[1] - 0.9 * cb_radii[1])
    in_cerebellum = inside & behind & (box.z < tent)
    labels = canvas.labels[box.slices]
    labels[inside & ~in_cerebellum] = _cerebrum(canvas, box, inside & ~in_cerebellum)[inside & ~in_cerebellum]
    labels[in_cerebellum] = _cerebellum(canvas, box, in_cerebellum)
    labels[inside & behind & (np.abs(box.z - tent) < canvas.thick(TENTORIUM_MM) / 2)] = canvas.ids["csf"]
    _paint_nuclei(canvas)
    _paint_ventricles(canvas)
    _paint_brainstem(canvas)


def _cerebrum(canvas: Canvas, box, mask: np.ndarray) -> np.ndarray:
    body, ids = canvas.body, canvas.ids
    depth = -brain_distance(box.points, body)
    gm = canvas.thick(GM_MM)
    label = np.where(depth < gm, ids["grey_matter"], ids["white_matter"]).astype(np.uint8)
    sulcus = np.float32(max(SULCUS_MM, 0.6 * canvas.voxel))
    shell = mask & (depth < body.sulcal_depth_mm + gm)
    fold = cranium.fold_distance(canvas, box, shell, FOLD_SCALE * body.fold_mm)
    shell_label = label[shell]
    shell_label[fold < sulcus + gm] = ids["grey_matter"]
    shell_label[(fold < sulcus) & (depth[shell] < body.sulcal_depth_mm)] = ids["csf"]
    label[shell] = shell_label

    # interhemispheric fissure above and around the corpus callosum
    cr_centre, cr_radii = cranium.cerebrum(body)
    phase = stream(canvas.seed, "brain.midline").uniform(0, 2 * np.pi, 2)
    bend = 2.0 * np.sin((box.y - cr_centre[1]) / 25.0 + phase[0]) * np.sin((box.z - cr_centre[2]) / 20.0 + phase[1])
    midline = np.abs(box.x - np.float32(cr_centre[0]) - bend.astype(np.float32))
    callosum = sdf.ellipsoid(box.points, cr_centre + np.array([0, 0.05, -0.3]) * cr_radii,
                             cr_radii * np.array([1.0, 0.5, 0.6]))
    fissure = mask & (callosum > 0)
    # the medial surface folds too: sulci running from the fissure into each hemisphere
    medial_depth = np.float32(0.6 * body.sulcal_depth_mm)
    medial = fissure & (midline < medial_depth + gm)
    fold = _medial_fold_distance(canvas, box, medial)
    medial_label = label[medial]
    medial_label[fold < sulcus + gm] = ids["grey_matter"]
    medial_label[(fold < sulcus) & (midline[medial] < medial_depth)] = ids["csf"]
    label[medial] = medial_label
    half = np.float32(max(0.8, 0.5 * canvas.voxel))
    label[fissure & (midline < half + gm)] = ids["grey_matter"]
    label[fissure & (midline < half)] = ids["csf"]

    # Sylvian fissure: a wavy sheet rising backwards from the temporal pole down to the insula
    front, back = _at(body, 0, 12, -12), _at(body, 0, -40, 18)
    t = np.clip((box.y - np.float32(front[1])) / np.float32(back[1] - front[1]), 0, 1)
    wave = LatticeField.gaussian(stream(canvas.seed, "brain.sylvian"), *cranium.brain_bounds(body), 15.0)
    level = np.float32(front[2]) + t * np.float32(back[2] - front[2])
    lateral = np.abs(box.x - np.float32(cr_centre[0])) - np.float32(37.0 * body.head)
    level = level + np.float32(0.25) * np.maximum(lateral, 0)  # the cleft climbs as it opens outwards
    sheet = np.abs(box.z - level - 4 * wave.on_grid(box.z[:, 0, 0], box.y[0, :, 0], box.x[0, 0, :]))
    along = (box.y > np.float32(front[1] - 4)) & (box.y < np.float32(back[1]))
    cleft = mask & along & (lateral >= 0)
    label[cleft & (sheet < sulcus + gm)] = ids["grey_matter"]
    label[cleft & (sheet < sulcus)] = ids["csf"]
    for s in (-1, 1):
        insula = sdf.ellipsoid(box.points, _at(body, 36 * s, -6, 2), body.head * np.array([3.0 + gm, 20.0, 13.0]))
        label[mask & (insula < 0) & (label == ids["white_matter"])] = ids["grey_matter"]
    return label


def _medial_fold_distance(canvas: Canvas, box, mask: np.ndarray) -> np.ndarray:
    """Distance (mm) in the sagittal plane to the sulci of the medial surface, for masked voxels:
    a smooth field evaluated on the midline plane, so its zero lines extend outwards, bent and
    branching as they go by a warp that grows with the distance from the midline."""
    body = canvas.body
    centre, radii = cranium.cerebrum(body)
    fold_mm = 1.5 * FOLD_SCALE * body.fold_mm
    lo, hi = sdf.bounds(centre, radii, 10)
    field = LatticeField.gaussian(stream(canvas.seed, "brain.medial_folds"), lo, hi, fold_mm)
    warp = LatticeField.gaussian(stream(canvas.seed, "brain.medial_meander"), lo, hi, 2 * fold_mm, channels=3)
    x, y, z = (np.broadcast_to(c, mask.shape)[mask].astype(np.float64) for c in box.points)
    on_plane = np.stack([np.full_like(y, centre[0]), y, z], axis=-1)
    on_plane[:, 1:] += (0.6 * np.abs(x - centre[0]))[:, None] * warp.at(np.stack([x, y, z], axis=-1))[:, 1:]
    slope = np.linalg.norm(field.gradient().at(on_plane)[:, 1:], axis=-1)
    return np.abs(field.at(on_plane)) / np.maximum(slope, 1e-3)


def _cerebellum(canvas: Canvas, box, mask: np.ndarray) -> np.ndarray:
    """Folia: the white-matter tree radiates from a hub in the sagittal plane, fissures between."""
    body, ids = canvas.body, canvas.ids
    centre, radii = cranium.cerebellum(body)
    x, y, z = (np.broadcast_to(c, mask.shape)[mask].astype(np.float64) for c in box.points)
    hub = centre + np.array([0.0, -0.35 * radii[1], 0.1 * radii[2]])
    r = np.linalg.norm((np.stack([x, y, z], axis=-1) - centre) / radii, axis=-1)  # 0 at the centre, 1 on the surface
    dist_mm = np.hypot(y - hub[1], z - hub[2]) + 1e-3
    wobble = LatticeField.gaussian(stream(canvas.seed, "brain.folia"), *sdf.bounds(centre, radii, 5), 12.0)
    arc = z - hub[2] + 0.5 * radii[2] * ((x - centre[0]) / radii[0]) ** 2  # folia curve round the hemispheres
    theta = np.arctan2(arc, y - hub[1]) + 0.08 * wobble.at(np.stack([x, y, z], axis=-1))
    n1, n2 = CEREBELLUM_LOBES, 3 * CEREBELLUM_LOBES
    # approximate distance (mm) to the n·θ = π/2 + kπ lines (fissures) and to θ = kπ lines (branches)
    branch1 = np.abs(np.sin(n1 * theta)) * dist_mm / n1
    branch2 = np.abs(np.sin(n2 * theta)) * dist_mm / n2
    fissure1 = np.abs(np.cos(n1 * theta)) * dist_mm / n1
    fissure2 = np.abs(np.cos(n2 * theta)) * dist_mm / n2
    v = canvas.voxel
    label = np.full(x.shape, ids["grey_matter"], dtype=np.uint8)
    wm = (r < 0.42) | ((r < 0.82) & (branch1 < max(1.6, 0.8 * v) * (1.1 - r))) | \
         ((r > 0.6) & (r < 0.9) & (branch2 < max(0.6, 0.5 * v)) & (fissure1 > 2.5))
    label[wm] = ids["white_matter"]
    fissure = ((r > 0.55) & (fissure1 < max(0.6, 0.55 * v))) | ((r > 0.82) & (fissure2 < max(0.5, 0.5 * v)))
    label[fissure] = ids["csf"]
    return label


def _paint_nuclei(canvas: Canvas) -> None:
    """Caudate (head and body), lentiform nucleus and thalamus, over white matter only."""
    body = canvas.body
    k = body.head
    for s in (-1, 1):
        for centre, radii in ((_at(body, 14 * s, 14, 9), (7.0, 11.0, 10.0)),    # caudate head
                              (_at(body, 25 * s, 2, 0), (6.5, 17.0, 11.0)),     # putamen
                              (_at(body, 19 * s, -3, -2), (4.5, 10.0, 7.0)),    # globus pallidus
                              (_at(body, 11 * s, -18, 6), (9.0, 16.0, 10.0))):  # thalamus
            r = k * np.array(radii)
            b = canvas.box(*sdf.bounds(centre, r, 1))
            canvas.paint(b, "deep_grey_matter", sdf.ellipsoid(b.points, centre, r) < 0, only=("white_matter",))
        body_nodes = np.array([_at(body, 13 * s, 12, 13), _at(body, 15 * s, -10, 22), _at(body, 22 * s, -30, 18)])
        b = canvas.box(*sdf.tube_bounds(body_nodes, 6, 1))
        canvas.paint(b, "deep_grey_matter", sdf.tube(b.points, body_nodes, k * np.array([5.0, 3.5, 2.0])) < 0,
                     only=("white_matter",))


def _tube_flat(box, nodes, radii, flatten: float) -> np.ndarray:
    """A tube narrowed in x by ``flatten`` (the lateral ventricles are slits, taller than wide)."""
    x, y, z = box.points
    cx = np.float32(nodes[:, 0].mean())
    squeezed = (np.float32(flatten) * (x - cx) + cx, y, z)
    nodes = nodes.copy()
    nodes[:, 0] = flatten * (nodes[:, 0] - cx) + cx
    return sdf.tube(squeezed, nodes, radii)


def _paint_ventricles(canvas: Canvas) -> None:
    body = canvas.body
    k = body.head * stream(canvas.seed, "brain.ventricles").uniform(0.85, 1.35)  # ventricles widen with age
    over = ("white_matter", "grey_matter", "deep_grey_matter")
    for s in (-1, 1):
        # the frontal horns and bodies lie either side of a thin septum, the atria swing outwards
        horn = np.array([_at(body, 7 * s, 30, 8), _at(body, 8 * s, 14, 16), _at(body, 10 * s, -12, 20),
                         _at(body, 19 * s, -32, 16), _at(body, 27 * s, -42, 6), _at(body, 20 * s, -68, 4)])
        radii = np.array([5.0, 7.5, 7.0, 6.5, 8.0, 3.5]) * k
        b = canvas.box(*sdf.tube_bounds(horn, radii.max() * 2, 2))
        canvas.paint(b, "csf", _tube_flat(b, horn, radii, 1.3) < 0, only=over)
        temporal = np.array([_at(body, 28 * s, -42, 6), _at(body, 33 * s, -28, -10), _at(body, 30 * s, -10, -20)])
        b = canvas.box(*sdf.tube_bounds(temporal, 6 * k, 2))
        canvas.paint(b, "csf", sdf.tube(b.points, temporal, np.array([4.0, 2.5, 1.8]) * k) < 0, only=over)
    third_c, third_r = _at(body, 0, -12, -2), np.array([max(1.5, 0.75 * canvas.voxel), 15 * body.head, 9 * body.head])
    b = canvas.box(*sdf.bounds(third_c, third_r, 1))
    canvas.paint(b, "csf", sdf.ellipsoid(b.points, third_c, third_r) < 0, only=over)
    aqueduct = np.array([_at(body, 0, -27, -8), _at(body, 0, -36, -22)])
    b = canvas.box(*sdf.tube_bounds(aqueduct, 3, 1))
    canvas.paint(b, "csf", sdf.tube(b.points, aqueduct, max(1.2, 0.6 * canvas.voxel)) < 0, only=over)


def _paint_brainstem(canvas: Canvas) -> None:
    """Midbrain, pons and medulla in their cisterns, and the fourth ventricle behind the pons."""
    body = canvas.body
    k = body.head
    nodes = np.array([_at(body, 0, -20, -6), _at(body, 0, -24, -16), _at(body, 0, -24, -30),
                      _at(body, 0, -32, -48), _at(body, 0, -38, -66)])
    radii = k * np.array([8.0, 11.0, 12.0, 9.0, 7.5])
    b = canvas.box(*sdf.tube_bounds(nodes, radii.max() + 8, 2))
    stem = sdf.tube(b.points, nodes, radii)
    pons_c = _at(body, 0, -20, -28)
    pons = sdf.ellipsoid(b.points, pons_c, k * np.array([16.0, 13.0, 12.0]))
    stem = np.minimum(stem, pons)
    anterior = b.y < np.float32(nodes[2][1] + 4)
    cistern = (stem < 5 * k) & (anterior | (stem < 2.5 * k)) & (b.z < np.float32(nodes[1][2]))
    canvas.paint(b, "csf", cistern, only=("grey_matter", "white_matter", "deep_grey_matter"))
    canvas.paint(b, "white_matter", stem < 0,
                 only=("grey_matter", "csf", "deep_grey_matter", "cortical_bone", "marrow", "muscle", "fat"))
    fourth_c, fourth_r = _at(body, 0, -44, -32), k * np.array([7.0, 3.5, 8.0])
    b = canvas.box(*sdf.bounds(fourth_c, fourth_r, 1))
    canvas.paint(b, "csf", sdf.ellipsoid(b.points, fourth_c, fourth_r) < 0, only=("white_matter", "grey_matter"))
    supra_c, supra_r = _at(body, 0, 4, -14), k * np.array([11.0, 9.0, 5.0])
    b = canvas.box(*sdf.bounds(supra_c, supra_r, 1))
    canvas.paint(b, "csf", sdf.ellipsoid(b.points, supra_c, supra_r) < 0, only=("grey_matter", "white_matter"))
