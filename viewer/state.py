"""The viewer's state as plain Python objects that the Qt widgets observe (napari's model/view split).

Nothing here imports Qt: the plane geometry, window/level, overlay and output choices live in
`ViewerState`, which announces every change through a `Signal`. Widgets mirror the state and
call its setters; tests drive the state directly without a window. Keeping the geometry here
also means the plane shown by the three panels, the navigator and the workers comes from one
place, so the panels can never disagree about which plane they show.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from core.model.outputs import OUTPUTS as CORE_OUTPUTS
from core.planes import ORIENTATIONS, Plane

#: The generator's outputs the viewer can show (core/model/outputs.py), by name: what the output menu says.
OUTPUTS = {name: output.plain for name, output in CORE_OUTPUTS.items()}


class Signal:
    """A minimal observer list: ``connect`` callbacks, ``emit`` calls them in order."""

    def __init__(self) -> None:
        self._callbacks: list[Callable] = []

    def connect(self, callback: Callable) -> None:
        self._callbacks.append(callback)

    def disconnect(self, callback: Callable) -> None:
        self._callbacks.remove(callback)

    def emit(self, *args) -> None:
        for callback in list(self._callbacks):
            callback(*args)


@dataclass(frozen=True, eq=False)
class Frame:
    """Where planes can go in the loaded MRI: centre, field of view per orientation, scroll range.

    ``pixel_mm`` frames the body in each preset orientation at the viewer's plane size;
    ``corners`` (8, 3) are the MRI grid's corners in mm and ``mm_to_index`` its 3×3 linear map
    from millimetres to voxel indices, from which the scroll range and step along any normal follow.
    """

    center: np.ndarray
    pixel_mm: dict[str, float]
    corners: np.ndarray
    mm_to_index: np.ndarray

    @classmethod
    def placeholder(cls) -> "Frame":
        """A 1 mm frame at the origin: the state before any MRI has been loaded."""
        return cls(center=np.zeros(3), pixel_mm={name: 1.0 for name in ORIENTATIONS},
                   corners=np.zeros((8, 3)), mm_to_index=np.eye(3))

    def offset_limit(self, normal: np.ndarray) -> float:
        """How far a plane with this normal may move from ``center`` before it leaves the grid (mm)."""
        return float(np.max(np.abs((self.corners - self.center) @ normal)))

    def step_mm(self, normal: np.ndarray) -> float:
        """One voxel along ``normal``: the distance after which some voxel index has moved by one."""
        return float(1.0 / max(np.max(np.abs(self.mm_to_index @ normal)), 1e-9))


class ViewerState:
    """Plane (orientation, two angles, offset), window/level, overlay and model output.

    Setters clamp and ignore no-op changes, then emit: ``plane_changed(plane)``,
    ``window_changed(window, level)``, ``overlay_changed(opacity, visible)``,
    ``output_changed(name)``, ``cursor_changed(point_mm | None)``, ``crosshair_changed(point_mm)``.

    The crosshair is one 3-D point (mm) that always lies on the current plane: the orthogonal
    views of the three-view layout are cut through it, a click in one of them moves it (and the
    plane through it), and moving the plane carries it along the plane's normal, so every
    layout shows the same plane and point.
    """

    def __init__(self, frame: Frame | None = None, size: int = 256):
        self.size = int(size)
        self.frame = frame or Frame.placeholder()
        self.orientation = "axial"
        self.tilt_deg = 0.0
        self.rotate_deg = 0.0
        self.offset_mm = 0.0
        self.window = 1.0
        self.level = 0.5
        self.opacity = 0.4
        self.overlay_visible = True
        self.output = "c_hat"
        self.cursor: np.ndarray | None = None
        self._plane = self._make_plane()
        self.crosshair = self._plane.center.copy()
        self.plane_changed = Signal()
        self.window_changed = Signal()
        self.overlay_changed = Signal()
        self.output_changed = Signal()
        self.cursor_changed = Signal()
        self.crosshair_changed = Signal()

    # --- plane ---------------------------------------------------------------------------------
    def plane(self) -> Plane:
        """The current plane in physical space (the same for every panel and worker)."""
        return self._plane

    def _make_plane(self) -> Plane:
        return Plane.oblique(self.orientation, self.frame.center, tilt_deg=self.tilt_deg,
                             rotate_deg=self.rotate_deg, offset_mm=self.offset_mm,
                             pixel_mm=self.frame.pixel_mm[self.orientation], width=self.size, height=self.size)

    def set_frame(self, frame: Frame) -> None:
        """A new MRI: recentre on it and keep the orientation and angles."""
        self.frame = frame
        self.offset_mm = 0.0
        self._plane = self._make_plane()
        self.crosshair = self._plane.center.copy()
        self.plane_changed.emit(self._plane)
        self.crosshair_changed.emit(self.crosshair)

    def set_plane(self, *, orientation: str | None = None, tilt_deg: float | None = None,
                  rotate_deg: float | None = None, offset_mm: float | None = None) -> None:
        """Change any of the four plane parameters at once (one ``plane_changed``)."""
        if orientation is not None and orientation not in ORIENTATIONS:
            raise ValueError(f"orientation must be one of {sorted(ORIENTATIONS)}, got {orientation!r}")
        new = (orientation or self.orientation,
               self.tilt_deg if tilt_deg is None else float(np.clip(tilt_deg, -90, 90)),
               self.rotate_deg if rotate_deg is None else float(np.clip(rotate_deg, -90, 90)),
               self.offset_mm if offset_mm is None else float(offset_mm))
        new = (*new[:3], self._clamp_offset(*new))
        if new == (self.orientation, self.tilt_deg, self.rotate_deg, self.offset_mm):
            return
        self.orientation, self.tilt_deg, self.rotate_deg, self.offset_mm = new
        self._plane = self._make_plane()
        self.plane_changed.emit(self._plane)
        self._carry_crosshair()

    def _carry_crosshair(self) -> None:
        """Move the crosshair along the plane's normal onto the plane (a no-op when it is on it)."""
        plane = self._plane
        moved = self.crosshair + float((plane.center - self.crosshair) @ plane.normal) * plane.normal
        if not np.allclose(moved, self.crosshair, atol=1e-9):
            self.crosshair = moved
            self.crosshair_changed.emit(self.crosshair)

    def set_crosshair(self, point_mm) -> None:
        """Put the crosshair at ``point_mm`` (kept inside the MRI's box) and move the plane through it."""
        lo, hi = self.frame.corners.min(axis=0), self.frame.corners.max(axis=0)
        point = np.clip(np.asarray(point_mm, dtype=np.float64).reshape(3), lo, hi)
        if np.array_equal(point, self.crosshair):
            return
        self.crosshair = point
        self.move_through(point)  # carries the crosshair back onto the plane where the offset was clamped
        self.crosshair_changed.emit(self.crosshair)

    def set_orientation(self, orientation: str) -> None:
        """Switch to a preset through the crosshair, angles reset (as Slicer's presets): the point
        clicked in the three-view layout stays where it is (unclicked, it is the plane's centre)."""
        here = self.crosshair
        normal = Plane.preset(orientation, self.frame.center).normal
        self.set_plane(orientation=orientation, tilt_deg=0.0, rotate_deg=0.0,
                       offset_mm=float((here - self.frame.center) @ normal))

    def scroll(self, steps: float) -> None:
        """Move the plane ``steps`` voxel steps along its normal (wheel, arrows, page keys)."""
        self.set_plane(offset_mm=self.offset_mm + steps * self.frame.step_mm(self.plane().normal))

    def move_through(self, point_mm) -> None:
        """Shift the plane along its normal so that it passes through ``point_mm`` (navigator clicks)."""
        plane = self.plane()
        self.set_plane(offset_mm=self.offset_mm + float((np.asarray(point_mm, float) - plane.center) @ plane.normal))

    def ortho_plane(self, orientation: str) -> Plane:
        """The ``orientation`` preset plane through the crosshair, centred on the MRI in its own
        plane (so it only moves along its normal and its view does not pan as the crosshair moves)."""
        normal = Plane.preset(orientation, self.frame.center).normal
        center = self.frame.center + float((self.crosshair - self.frame.center) @ normal) * normal
        return Plane.preset(orientation, center, pixel_mm=self.frame.pixel_mm[orientation],
                            width=self.size, height=self.size)

    def offset_limit(self) -> float:
        """Scroll range (± mm) of the current orientation and angles."""
        return self.frame.offset_limit(self.plane().normal)

    def _clamp_offset(self, orientation: str, tilt: float, rotate: float, offset_mm: float) -> float:
        if (orientation, tilt, rotate) == (self.orientation, self.tilt_deg, self.rotate_deg):
            normal = self._plane.normal  # scrolling: the normal has not changed
        else:
            normal = Plane.oblique(orientation, self.frame.center, tilt_deg=tilt, rotate_deg=rotate).normal
        limit = self.frame.offset_limit(normal)
        return float(np.clip(offset_mm, -limit, limit))

    # --- display -------------------------------------------------------------------------------
    def set_window(self, window: float, level: float) -> None:
        window = max(float(window), 1e-6)
        if (window, float(level)) == (self.window, self.level):
            return
        self.window, self.level = window, float(level)
        self.window_changed.emit(self.window, self.level)

    @property
    def levels(self) -> tuple[float, float]:
        """(low, high) display range of the MRI: level ± window / 2 (the level is the centre)."""
        return self.level - self.window / 2, self.level + self.window / 2

    def set_overlay(self, opacity: float | None = None, visible: bool | None = None) -> None:
        new = (self.opacity if opacity is None else float(np.clip(opacity, 0, 1)),
               self.overlay_visible if visible is None else bool(visible))
        if new == (self.opacity, self.overlay_visible):
            return
        self.opacity, self.overlay_visible = new
        self.overlay_changed.emit(self.opacity, self.overlay_visible)

    def set_output(self, output: str) -> None:
        if output not in OUTPUTS:
            raise ValueError(f"output must be one of {sorted(OUTPUTS)}, got {output!r}")
        if output != self.output:
            self.output = output
            self.output_changed.emit(output)

    def set_cursor(self, point_mm) -> None:
        self.cursor = None if point_mm is None else np.asarray(point_mm, dtype=np.float64)
        self.cursor_changed.emit(self.cursor)
