"""The clinical head outside the brain: CSF rim, skull, temporal muscles, orbits, sinuses, jaw.

The skull follows the clinical brain's surface (`core.phantom.brain.brain_distance`) at a CSF
gap, with its thickness varying smoothly (5–7.5 mm) and split into inner and outer tables of
compact bone around the diploë (marrow). The scalp (skin, fat, galea) comes from the envelope.
The paranasal sinuses and the nasal airway are air inside thin bony walls; the orbits hold a
globe (vitreous) in a cone of fat with an optic nerve.
"""
from __future__ import annotations

import numpy as np

from core.phantom import brain, sdf
from core.phantom import head as cranium
from core.phantom.canvas import Canvas
from core.phantom.fields import LatticeField, stream

CSF_MM = 2.5
SKULL_MM = (5.0, 7.5)
TABLE_MM = 1.6
TEMPORALIS_MM = 8.0
SOFT = ("muscle", "fat", "skin")
FACE = ("muscle", "fat", "cortical_bone", "marrow", "csf")


def paint_cranium(canvas: Canvas) -> None:
    """CSF rim, skull tables and diploë, and the temporal muscles over them."""
    body = canvas.body
    lo, hi = cranium.brain_bounds(body)
    box = canvas.box(lo - 30, hi + 30)
    dist = brain.brain_distance(box.points, body)
    thickness = LatticeField.gaussian(stream(canvas.seed, "skull.thickness"), lo - 30, hi + 30, 30.0)
    skull = np.float32(np.mean(SKULL_MM)) + np.float32(np.ptp(SKULL_MM) / 4) * thickness.on_grid(
        box.z[:, 0, 0], box.y[0, :, 0], box.x[0, 0, :])
    csf, table = canvas.thick(CSF_MM), canvas.thick(TABLE_MM)
    outer = csf + np.maximum(skull, 2 * table + canvas.voxel)
    canvas.paint(box, "cortical_bone", (dist > csf) & (dist <= outer), only=SOFT)
    canvas.paint(box, "marrow", (dist > csf + table) & (dist <= outer - table), only=("cortical_bone",))
    canvas.paint(box, "csf", (dist > 0) & (dist <= csf), only=SOFT + ("cortical_bone", "marrow"))
    # temporalis: a fan on the side of the skull, thickest above the ear
    centre = cranium.cerebrum(body)[0]
    fan = np.exp(-((box.y - np.float32(centre[1] - 5)) / np.float32(40)) ** 2
                 - ((box.z - np.float32(centre[2] - 25)) / np.float32(32)) ** 2)
    lateral = np.abs(box.x - np.float32(centre[0])) > np.float32(40 * body.head)
    canvas.paint(box, "muscle", lateral & (dist > outer) & (dist <= outer + TEMPORALIS_MM * fan),
                 only=("fat", "muscle"))


def paint_face(canvas: Canvas) -> None:
    """Orbits, sinuses with the nasal airway and pharynx, and the mandible."""
    _paint_orbits(canvas)
    _paint_airways(canvas)
    cranium.paint_jaw(canvas)


def _paint_orbits(canvas: Canvas) -> None:
    body = canvas.body
    k = body.head
    for s in (-1, 1):
        globe = body.head_pt(31 * s, -64, 116)
        apex = body.head_pt(13 * s, -28, 122)
        b = canvas.box(*sdf.tube_bounds(np.array([globe, apex]), 18, 2))
        cone = sdf.segment(b.points, globe, apex, 16 * k, 3 * k)
        canvas.paint(b, "cortical_bone", cone < canvas.thick(1.5), only=("muscle", "fat", "marrow"))
        canvas.paint(b, "fat", cone < 0, only=FACE)
        nerve = sdf.segment(b.points, globe, apex, 2.2 * k, 2.0 * k)
        canvas.paint(b, "white_matter", nerve < 0, only=("fat",))
        canvas.paint(b, "vitreous", sdf.sphere(b.points, globe, 11.5 * k) < 0, only=FACE + ("white_matter",))


def _paint_airways(canvas: Canvas) -> None:
    """Bony walls first, then the air of every cavity, so walls between cavities stay open."""
    body = canvas.body
    k = body.head
    cavities = [(body.head_pt(0, -86, 104), k * np.array([14.0, 5.0, 9.0])),    # frontal sinus
                (body.head_pt(0, -54, 122), k * np.array([9.0, 16.0, 11.0])),   # ethmoid cells
                (body.head_pt(0, -20, 140), k * np.array([11.0, 10.0, 9.0])),   # sphenoid sinus
                (body.head_pt(0, -62, 150), k * np.array([6.0, 22.0, 14.0]))]   # nasal cavity
    cavities += [(body.head_pt(27 * s, -52, 154), k * np.array([12.0, 16.0, 15.0])) for s in (-1, 1)]  # maxillary
    pharynx = np.array([body.head_pt(0, -32, 158), body.head_pt(0, -12, 176), body.head_pt(0, -8, 240)])
    boxes = [canvas.box(*sdf.bounds(c, r, 3)) for c, r in cavities]
    pbox = canvas.box(*sdf.tube_bounds(pharynx, 12, 3))
    walls = canvas.thick(1.2)
    for b, (c, r) in zip(boxes, cavities):
        canvas.paint(b, "cortical_bone", sdf.ellipsoid(b.points, c, r) < walls, only=("muscle", "fat", "marrow"))
    for b, (c, r) in zip(boxes, cavities):
        canvas.paint(b, "air", sdf.ellipsoid(b.points, c, r) < 0, only=FACE)
    septum = np.abs(boxes[3].x - np.float32(cavities[3][0][0])) < canvas.thick(1.0) / 2
    canvas.paint(boxes[3], "cortical_bone", septum & (sdf.ellipsoid(boxes[3].points, *cavities[3]) < 0), only=("air",))
    canvas.paint(pbox, "air", sdf.tube(pbox.points, pharynx, k * np.array([6.0, 5.0, 5.0])) < 0, only=("muscle", "fat"))
