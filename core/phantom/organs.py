"""Thorax and abdomen: body cavities, lungs, heart, great vessels, liver, stomach, spleen,
kidneys, psoas, bladder and colon (the small bowel fills what is left: see `bowel`).

Organs are clipped to their cavity and only replace cavity fat, so they never cut each other
or the body wall.
"""
from __future__ import annotations

import numpy as np

from core.phantom import sdf
from core.phantom.body import Body
from core.phantom.canvas import Canvas
from core.phantom.landmarks import cavities, cavity_bounds, spine_at


def _paint_cavities(canvas: Canvas) -> None:
    """Cavity fat inside the body wall; the muscle left between the two cavities is the diaphragm."""
    b = canvas.box(*cavity_bounds(canvas.body))
    thorax, abdomen = cavities(canvas.body, b)
    canvas.paint(b, "fat", (thorax < 0) | (abdomen < 0), only=("muscle", "fat"))


def _paint_thorax(canvas: Canvas) -> None:
    body = canvas.body
    for name, x in (("lung_r", -68), ("lung_l", 70)):
        c, r = body.organ(name, body.pt(x, 22, 470), body.size(72, 84, 146))
        b = canvas.box(*sdf.bounds(c, r, 2))
        thorax, _ = cavities(body, b)
        lung = np.maximum(sdf.ellipsoid(b.points, c, r), thorax + canvas.thick(2.0)) < 0
        canvas.paint(b, "lung", lung, only=("fat",))
    c, r = body.organ("heart", body.pt(20, -20, 515), body.size(48, 44, 64))
    axis = np.array([0.55, -0.35, -0.75])
    frame = sdf.frame_from_axis(axis)
    b = canvas.box(*sdf.bounds(c, r, 10))
    heart = sdf.ellipsoid(b.points, c, r, frame)
    canvas.paint(b, "fat", heart < canvas.thick(4.0), only=("lung",))
    wall = canvas.thick(9.0)
    canvas.paint(b, "myocardium", heart < 0, only=("fat", "lung"))
    normal = np.cross(axis, (0, 0, 1.0))
    normal /= np.linalg.norm(normal)
    u = sum(np.float32(normal[i]) * (b.points[i] - np.float32(c[i])) for i in range(3))
    septum = np.abs(u - np.float32(6.0)) < canvas.thick(6.0) / 2
    canvas.paint(b, "blood", (heart < -wall) & ~septum, only=("myocardium",))


def _vessels(body: Body) -> list[tuple[np.ndarray, np.ndarray]]:
    """Polylines (physical nodes, radii) of the great arteries and veins."""

    def along_spine(ds, xs, gap):
        """Points in front of the vertebral bodies, ``gap`` mm ahead of them."""
        out = []
        for d, x in zip(ds, xs):
            y, _, ry, _ = spine_at(body, d)
            out.append(np.array([x * body.width, y - ry - gap, body.z(d)]))
        return out

    aorta = [body.pt(8, -20, 480), body.pt(5, -26, 425), body.pt(8, -12, 388), body.pt(15, 14, 380),
             body.pt(22, 34, 398)] + along_spine([440, 540, 640, 740], [22, 18, 12, 8], 12)
    vessels = [(np.array(aorta), np.array([12, 12, 11, 11, 10, 10, 9.5, 9, 8.5]))]
    ivc = along_spine([770, 680, 600], [-22, -22, -20], 11) + [body.pt(-18, -8, 545)]
    vessels.append((np.array(ivc), np.array([10.0, 10, 10, 10])))
    vessels.append((np.array([body.pt(-26, -14, 505), body.pt(-28, -10, 390)]), np.array([9.0, 9])))
    for side in (-1, 1):
        art = [along_spine([740], [8], 12)[0], body.pt(side * 55, 10, 830), body.pt(side * 82, -8, 880),
               body.pt(side * 90, -25, 1000), body.pt(side * 78, -15, 1320)]
        vessels.append((np.array(art), np.array([8.0, 6.5, 6, 5.5, 5])))
        vein = [along_spine([770], [-22 if side < 0 else 0], 11)[0], body.pt(side * 50, 20, 830),
                body.pt(side * 78, 2, 880), body.pt(side * 98, -18, 1000), body.pt(side * 86, -8, 1320)]
        vessels.append((np.array(vein), np.array([9.0, 7.5, 7, 6.5, 6])))
        vessels.append((np.array([body.pt(side * 12, -6, 386), body.head_pt(side * 24, -4, 180)]), np.array([4.0, 4])))
        vessels.append((np.array([body.pt(side * 32, 4, 382), body.head_pt(side * 40, 12, 190)]), np.array([6.0, 5])))
    return vessels


def _paint_vessels(canvas: Canvas) -> None:
    for nodes, radii in _vessels(canvas.body):
        radii = np.maximum(radii, canvas.voxel * 0.6)
        b = canvas.box(*sdf.tube_bounds(nodes, radii, 2))
        canvas.paint(b, "blood", sdf.tube(b.points, nodes, radii) < 0, only=("fat", "muscle", "lung"))


def _paint_abdomen(canvas: Canvas) -> None:
    body = canvas.body
    margin = canvas.thick(4.0) / 2

    def organ_box(c, r):
        """The organ's box and the distance to the abdominal cavity there, kept ``margin`` inside."""
        b = canvas.box(*sdf.bounds(c, r, 4))
        return b, cavities(body, b)[1] + margin

    c, r = body.organ("liver", body.pt(-55, 5, 635), body.size(110, 85, 85))
    b, cavity = organ_box(c, r)
    # the left lobe tapers: a curved cut rising towards the patient's left
    xn, yn = b.x / np.float32(body.width), b.y / np.float32(body.depth)
    cut = np.float32(body.height) * (0.55 * (xn + 40) + 0.006 * (yn - 10) ** 2 + body.d(b.z) - 690)
    canvas.paint(b, "liver", np.maximum(np.maximum(sdf.ellipsoid(b.points, c, r), cut), cavity) < 0, only=("fat",))

    c, r = body.organ("stomach", body.pt(52, -22, 612), body.size(48, 38, 58))
    b, cavity = organ_box(c, r)
    stomach = np.maximum(sdf.ellipsoid(b.points, c, r, sdf.rotation((0, 1, 0), np.deg2rad(25))), cavity)
    canvas.paint(b, "bowel_wall", stomach < 0, only=("fat",))
    canvas.paint(b, "bowel_content", stomach < -canvas.thick(4.0), only=("bowel_wall",))

    c, r = body.organ("spleen", body.pt(92, 52, 598), body.size(28, 52, 58))
    b, cavity = organ_box(c, r)
    spleen = np.maximum(sdf.ellipsoid(b.points, c, r, sdf.rotation((0, 0, 1), np.deg2rad(35))), cavity)
    canvas.paint(b, "spleen", spleen < 0, only=("fat",))

    for side in (-1, 1):
        psoas = np.array([body.pt(side * 30, 42, 620), body.pt(side * 48, 38, 720), body.pt(side * 62, 22, 800),
                          body.pt(side * 72, 2, 860)])
        radii = np.array([10.0, 20, 24, 20]) * body.width
        b = canvas.box(*sdf.tube_bounds(psoas, radii, 2))
        canvas.paint(b, "muscle", sdf.tube(b.points, psoas, radii) < 0, only=("fat",))

    for side, name, d in ((1, "kidney_l", 665), (-1, "kidney_r", 680)):
        c, r = body.organ(name, body.pt(side * 70, 62, d), body.size(27, 24, 55))
        rot = sdf.rotation((0, 1, 0), np.deg2rad(-12 * side)) @ sdf.rotation((0, 0, 1), np.deg2rad(-25 * side))
        b, cavity = organ_box(c, r)
        canvas.paint(b, "kidney", np.maximum(sdf.ellipsoid(b.points, c, r, rot), cavity) < 0, only=("fat",))
        hilum = c + rot @ np.array([-side * r[0] * 0.75, 0, 0])
        canvas.paint(b, "fat", sdf.ellipsoid(b.points, hilum, r * np.array([0.45, 0.45, 0.4]), rot) < 0,
                     only=("kidney",))

    c, r = body.organ("bladder", body.pt(0, -42, 828), body.size(42, 34, 32) * body.bladder_fill)
    b, cavity = organ_box(c, r)
    bladder = np.maximum(sdf.ellipsoid(b.points, c, r), cavity)
    canvas.paint(b, "muscle", bladder < 0, only=("fat",))
    canvas.paint(b, "bladder", bladder < -canvas.thick(3.0), only=("muscle",))

    offset, _ = body.jitter["colon"]
    colon = np.array([body.pt(-85, -8, 790), body.pt(-96, 12, 700), body.pt(-84, -12, 648), body.pt(-40, -52, 668),
                      body.pt(40, -52, 662), body.pt(88, 8, 630), body.pt(96, 22, 722), body.pt(70, -8, 800),
                      body.pt(20, 12, 815), body.pt(0, 55, 825), body.pt(0, 62, 850)]) + offset
    radii = np.array([24, 22, 22, 21, 21, 20, 19, 17, 16, 17, 17.0])
    b = canvas.box(*sdf.tube_bounds(colon, radii, 4))
    colon_d = np.maximum(sdf.tube(b.points, colon, radii), cavities(body, b)[1] + margin)
    canvas.paint(b, "bowel_wall", colon_d < 0, only=("fat",))
    canvas.paint(b, "bowel_content", colon_d < -canvas.thick(3.0), only=("bowel_wall",))


def paint_organs(canvas: Canvas) -> None:
    _paint_cavities(canvas)
    _paint_thorax(canvas)
    _paint_vessels(canvas)
    _paint_abdomen(canvas)
