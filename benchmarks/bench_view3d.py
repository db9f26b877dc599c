"""The 3-D view's first picture of a 256³ RGB volume, and the cost of a plane move.

    QT_QPA_PLATFORM=xcb xvfb-run -a -s "-screen 0 1600x900x24" python benchmarks/bench_view3d.py [--side 256]

A synthetic colorized body (an ellipsoid with a colour gradient, air around it) of SIDE³ uint8
RGB voxels at 1 mm stands in for a colorized MRI, so the figure does not include the network.
*first picture*: from the full-size volume to the first rendered frame read back — shrink to
≤ 128³, body mask, RGBA texture, clip at the plane, upload, draw — in a fresh GL widget (shader
compilation included); *again*: the same for a second volume in the same widget; *plane move*:
re-clip, re-upload and draw after the plane moves (the colour is not recomputed). Target:
first picture ≤ 10 s under Mesa software GL.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("QT_QPA_PLATFORM", "xcb")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def synthetic_body(side: int):
    """A colorized-looking ellipsoid body filling most of a ``side``³ grid, as a uint8 RGB Volume."""
    from core.volume import Volume

    axis = (np.arange(side, dtype=np.float32) - side / 2) / (side / 2)
    z, y, x = axis[:, None, None], axis[None, :, None], axis[None, None, :]
    inside = (x / 0.6) ** 2 + (y / 0.4) ** 2 + (z / 0.9) ** 2 <= 1
    rgb = np.zeros((side, side, side, 3), np.uint8)
    shade = np.broadcast_to(((z + 1) * 60).astype(np.uint8), inside.shape)
    rgb[..., 0] = np.where(inside, 150 + shade // 2, 0)
    rgb[..., 1] = np.where(inside, 60 + shade // 3, 0)
    rgb[..., 2] = np.where(inside, 40, 0)
    return Volume(rgb, spacing=(1.0, 1.0, 1.0), origin=(-side / 2,) * 3)


def _first_picture(view, rgb) -> float:
    """Seconds from the full volume to its first frame read back from GL."""
    from core.normalize import body_mask, body_region
    from viewer.volume_data import shrink

    start = time.perf_counter()
    small = shrink(rgb)
    view.set_volume(small, body_region(body_mask(small)))
    image = view.render_image()
    elapsed = time.perf_counter() - start
    if image[..., :3].max() == 0:
        raise SystemExit("the 3-D view rendered nothing")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--side", type=int, default=256)
    args = parser.parse_args()
    from PyQt6.QtWidgets import QApplication

    from viewer.session import Session
    from viewer.framing import frame_for
    from viewer.volume_view import VolumeView

    app = QApplication(sys.argv)
    rgb = synthetic_body(args.side)
    session = Session(size=256)
    session.state.set_frame(frame_for(rgb.with_array(rgb.array[..., 0]), 256))
    view = VolumeView(session)
    view.resize(800, 800)
    view.show()
    app.processEvents()
    first = _first_picture(view, rgb)
    again = _first_picture(view, rgb)
    moves = []
    for step in range(5):
        start = time.perf_counter()
        session.state.scroll(-4 if step % 2 else 4)
        view.render_image()
        moves.append(time.perf_counter() - start)
    renderer = _renderer()
    print(f"3-D view, {args.side}³ RGB → ≤128³ texture, 800×800 widget, {renderer}")
    print(f"  first picture {first:.2f} s   again {again:.2f} s   "
          f"plane move {np.median(moves) * 1000:.0f} ms (median of 5)")


def _renderer() -> str:
    from OpenGL.GL import GL_RENDERER, glGetString

    try:
        return glGetString(GL_RENDERER).decode()
    except Exception:  # no current context outside paint: the name is only informative
        return "GL renderer unknown"


if __name__ == "__main__":
    main()
