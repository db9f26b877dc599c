"""The 3-D view: the colorized volume rendered in pyqtgraph's `GLViewWidget` with a `GLVolumeItem`
(the same pyqtgraph stack as the panels, no second toolkit), the current plane drawn as a
translucent quad with an outline, and a clip that opens the body at that plane.

The volume is colorized on its own background thread (minutes on a CPU; the shared loading
thread stays free), with progress and Cancel; when the three-view layout has had the whole MRI
colorized already (`viewer.colour_volume`), that volume is shrunk instead and the network does not
run. A new study, network or output voids the picture and cancels a running colorization; a
plane move only redraws the quad and the alpha (see `viewer.volume_data`). The body is opened on
the camera's side of the plane, so the cut faces the viewer whichever way the view is turned
(*other side* keeps that half instead), re-chosen while the user turns it. The GL widget is made
when the view is first shown, so a window whose 3-D dock stays hidden never needs OpenGL.
"""
from __future__ import annotations

import threading

import numpy as np
import pyqtgraph as pg
from PyQt6.QtCore import QEvent, QTimer, pyqtSignal
from PyQt6.QtGui import QImage, QVector3D
from PyQt6.QtWidgets import (QCheckBox, QDockWidget, QHBoxLayout, QLabel, QProgressBar, QPushButton, QVBoxLayout,
                             QWidget)

from core.planes import Plane
from core.volume import Volume
from viewer.colour_volume import ColourVolume
from viewer.session import Session
from viewer.volume_data import VolumeTexture, colorize_for_view
from viewer.worker import BackgroundTasks

#: Colour (RGBA 0–1) of the current plane's quad and outline.
PLANE_FILL = (1.0, 0.85, 0.1, 0.18)
PLANE_EDGE = (1.0, 0.85, 0.1, 1.0)


class VolumeView(QWidget):
    """Colorize-in-3-D button, progress, Cancel, the clip switches (open at the plane; which side)
    and the GL view of ``session``.

    Emits ``shown()`` when a colorized volume is on screen and ``ended(text)`` when a colorization
    stops without one (cancelled or failed).
    """

    progressed = pyqtSignal(int)  # from the colorizing thread; per mille
    shown = pyqtSignal()
    ended = pyqtSignal(str)

    def __init__(self, session: Session, colour_volume: ColourVolume | None = None, parent: QWidget | None = None):
        super().__init__(parent)
        self.session = session
        self.colour_volume = colour_volume  # the MRI colorized whole already, once the three views had it made
        self.tasks = BackgroundTasks()
        self.texture: VolumeTexture | None = None
        self.gl = None  # the GLViewWidget, made at the first show
        self._volume_item = self._plane_items = None
        self._cancel: threading.Event | None = None
        self.side = 1  # the side of the plane opened last: 1 the normal's
        self._build()
        session.study_opened.connect(lambda _study: self.clear())
        session.network_changed.connect(lambda _network: self.clear())
        session.state.output_changed.connect(lambda _output: self.clear())
        session.state.plane_changed.connect(self.show_plane)

    def _build(self) -> None:
        self.start_button = QPushButton("Colorize in 3-D")
        self.cancel_button = QPushButton("Cancel")
        self.clip_box = QCheckBox("open at the plane")
        self.clip_box.setChecked(True)
        self.flip_box = QCheckBox("other side")
        self.flip_box.setToolTip("the body is opened on the camera's side of the plane, so the cut faces you; "
                                 "this keeps that half and opens the far one instead")
        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.message = QLabel("colorize the volume to see it in 3-D")
        self.start_button.clicked.connect(self.start)
        self.cancel_button.clicked.connect(self.cancel)
        self.clip_box.toggled.connect(lambda _on: self.show_plane(self.session.state.plane()))
        self.clip_box.toggled.connect(self.flip_box.setEnabled)
        self.flip_box.toggled.connect(lambda _on: self.show_plane(self.session.state.plane()))
        self.progressed.connect(self.progress.setValue)
        bar = QHBoxLayout()
        for widget in (self.start_button, self.cancel_button, self.clip_box, self.flip_box, self.progress):
            bar.addWidget(widget)
        self._layout = QVBoxLayout(self)
        self._layout.setContentsMargins(2, 2, 2, 2)
        self._layout.addLayout(bar)
        self._layout.addWidget(self.message)
        self._set_running(False)

    def showEvent(self, event) -> None:
        if self.gl is None:
            self._make_gl()
        super().showEvent(event)

    def _make_gl(self) -> None:
        import pyqtgraph.opengl as gl  # needs PyOpenGL and a GL context: only once shown
        from pyqtgraph.opengl.GLGraphicsItem import GLOptions

        self.gl = gl.GLViewWidget()
        self.gl.setBackgroundColor((0, 0, 0, 255))
        self.gl.setMinimumSize(240, 240)
        # one slice per voxel: twice as many halved a plane move's redraw under software GL (0.9 → 0.4 s)
        # without a visible gain at 128³
        # The plane's fill is drawn first and writes no depth, the volume over it: the fill shows through
        # the air around the body and the body is not tinted (drawn after the volume, whose transparent
        # slices write depth too, the fill left a black box around the body).
        translucent = {**GLOptions["translucent"]}
        self._volume_item = gl.GLVolumeItem(np.zeros((1, 1, 1, 4), np.uint8), sliceDensity=1, smooth=True,
                                            glOptions={**translucent, "glDepthMask": (True,)})
        fill = gl.GLMeshItem(vertexes=np.zeros((4, 3)), faces=np.array([[0, 1, 2], [0, 2, 3]]),
                             color=PLANE_FILL, glOptions={**translucent, "glDepthMask": (False,)})
        edge = gl.GLLinePlotItem(pos=np.zeros((5, 3)), color=PLANE_EDGE, width=2, mode="line_strip")
        self._plane_items = (fill, edge)
        for item in (fill, self._volume_item, edge):
            item.setVisible(False)
            self.gl.addItem(item)
        self._layout.insertWidget(0, self.gl, 1)
        self.gl.installEventFilter(self)  # a rotation may take the camera to the plane's other side
        if self.texture is not None:
            self._upload()

    def eventFilter(self, watched, event) -> bool:
        """After each event that turns the camera (a drag's every move, its release, the wheel),
        once the GL view has handled it, re-open the body if the camera changed side: the cut
        keeps facing the user during the drag, not only when it ends. A move that stays on one
        side costs one dot product."""
        if watched is self.gl and (event.type() in (QEvent.Type.MouseButtonRelease, QEvent.Type.Wheel)
                                   or (event.type() == QEvent.Type.MouseMove and event.buttons())):
            QTimer.singleShot(0, self._camera_moved)
        return False

    def camera_side(self, plane: Plane) -> int:
        """1 when the camera is on the side ``plane``'s normal points to, else -1 (1 without GL)."""
        if self.gl is None:
            return 1
        camera = self.gl.cameraPosition()
        offset = np.array([camera.x(), camera.y(), camera.z()]) - plane.center
        return 1 if float(offset @ plane.normal) >= 0 else -1

    def _camera_moved(self) -> None:
        """Re-open the body when the camera has gone round to the plane's other side."""
        texture = self.texture
        if texture is not None and texture.clip_plane is not None and self._side(texture.clip_plane) != self.side:
            self.show_plane(self.session.state.plane())

    def _side(self, plane: Plane) -> int:
        return self.camera_side(plane) * (-1 if self.flip_box.isChecked() else 1)

    # --- colorizing ----------------------------------------------------------------------------
    def start(self) -> None:
        """Colorize the open study's MRI with the session's network in the background."""
        session = self.session
        if not session.ready:
            self.message.setText("nothing to colorize yet: the MRI and the model are still loading")
            return
        self.cancel()
        cancel = self._cancel = threading.Event()
        mri, colorizer, output = session.study.mri, session.network.colorizer, session.state.output
        colour = None if self.colour_volume is None else self.colour_volume.usable
        self._set_running(True)
        self.message.setText(f"colorizing {'×'.join(map(str, mri.array.shape[:3]))} voxels in 3-D…" if colour is None
                             else "shrinking the colorized volume for 3-D…")

        def done(result: tuple[Volume, np.ndarray]) -> None:
            if cancel is self._cancel:  # else a newer colorization has replaced it
                self._finish()
                if cancel.is_set():  # cancelled after its last batch: shown no more than any cancelled one
                    self._stopped("3-D colorization cancelled")
                else:
                    self.set_volume(*result)

        def failed(text: str) -> None:
            if cancel is self._cancel:
                self._finish()
                self._stopped("3-D colorization cancelled" if cancel.is_set() else f"3-D colorization failed: {text}")
        self.tasks.submit(lambda: colorize_for_view(mri, colorizer, output, self._report, cancel, colour=colour),
                          done, failed)

    def _stopped(self, text: str) -> None:
        self.message.setText(text)
        self.ended.emit(text)

    def _report(self, fraction: float) -> None:
        self.progressed.emit(int(fraction * 1000))

    def cancel(self) -> None:
        """Stop a running colorization between slice batches (nothing is shown from it)."""
        if self._cancel is not None:
            self._cancel.set()

    def _finish(self) -> None:
        self._cancel = None
        self._set_running(False)

    def _set_running(self, running: bool) -> None:
        self.start_button.setEnabled(not running)
        self.cancel_button.setEnabled(running)
        self.progress.setValue(0)

    def clear(self) -> None:
        """The study, network or output changed: the picture no longer shows them."""
        self.cancel()
        self.texture = None
        if self.gl is not None:
            for item in (self._volume_item, *self._plane_items):
                item.setVisible(False)
        self.message.setText("colorize the volume to see it in 3-D")

    def stop(self) -> None:
        """Cancel and wait for the colorizing thread (on quit)."""
        self.cancel()
        self.tasks.stop()

    # --- drawing -------------------------------------------------------------------------------
    def set_volume(self, rgb: Volume, body: np.ndarray) -> None:
        """Show the colorized ``rgb`` volume with opacity from ``body``, clipped at the current plane."""
        self.texture = VolumeTexture(rgb, body)
        self.message.setText(f"{'×'.join(map(str, rgb.array.shape[:3]))} voxels · drag to rotate, wheel to zoom")
        if self.gl is not None:
            self._upload()
        self.shown.emit()

    def _upload(self) -> None:
        texture = self.texture
        extent = float(np.max(texture.volume.extent_mm))
        self.gl.setCameraPosition(pos=QVector3D(*map(float, texture.volume.center)), distance=1.3 * extent,
                                  elevation=25, azimuth=-60)
        self.show_plane(self.session.state.plane())

    def show_plane(self, plane: Plane) -> None:
        """Draw ``plane`` and re-clip the texture at it (the colour is not recomputed): the half on
        the camera's side is opened (the other with *other side*), so the cut faces the viewer."""
        if self.texture is None:
            return
        texture = self.texture
        self.side = self._side(plane)  # open the half the camera looks from: the cut faces the viewer
        texture.clip(plane if self.clip_box.isChecked() else None, self.side)
        if self.gl is None:
            return
        box = texture.visible_box()  # only what is left to see: software GL pays for every slice's area
        self._volume_item.setVisible(box is not None)
        if box is not None:
            self._volume_item.setTransform(pg.Transform3D(*texture.box_matrix(box).ravel()))
            self._volume_item.setData(texture.rgba[box])
        corners = plane_corners(plane)
        fill, edge = self._plane_items
        fill.setMeshData(vertexes=corners, faces=np.array([[0, 1, 2], [0, 2, 3]]), color=PLANE_FILL)
        edge.setData(pos=np.vstack([corners, corners[:1]]))
        for item in self._plane_items:
            item.setVisible(True)

    def render_image(self) -> np.ndarray:
        """The GL view as it is now, (height, width, 4) uint8 RGBA (tests, screenshots)."""
        image = self.gl.grabFramebuffer().convertToFormat(QImage.Format.Format_RGBA8888)
        pointer = image.constBits()
        pointer.setsize(image.sizeInBytes())
        rows = np.frombuffer(pointer, np.uint8).reshape(image.height(), image.bytesPerLine())
        return rows[:, :image.width() * 4].reshape(image.height(), image.width(), 4).copy()


def plane_corners(plane: Plane) -> np.ndarray:
    """The four physical corners (mm) of ``plane``'s field of view, in drawing order."""
    half_u = plane.u * plane.width * plane.pixel_mm / 2
    half_v = plane.v * plane.height * plane.pixel_mm / 2
    c = plane.center
    return np.array([c - half_u - half_v, c + half_u - half_v, c + half_u + half_v, c - half_u + half_v])


def volume_dock(parent: QWidget, session: Session, colour_volume: ColourVolume | None = None) -> QDockWidget:
    """The 3-D view in a dock on the right, hidden until View ▸ 3-D shows it (a hidden dock never
    makes its GL widget, so a window without OpenGL still opens)."""
    dock = QDockWidget("3-D", parent)
    dock.setObjectName("dock_view3d")
    dock.setWidget(VolumeView(session, colour_volume))
    dock.hide()
    return dock
