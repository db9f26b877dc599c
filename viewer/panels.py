"""The three image panels — MRI | colorized | cryosection — in one pyqtgraph layout.

All three show the same `Plane`, so a pixel (row, col) is the same physical point in each: the
views are linked (zoom and pan follow) and one crosshair is drawn in all of them. Mouse
conventions follow 3D Slicer: wheel scrolls the plane (wheel down moves an axial plane
inferior), Ctrl+wheel and right-drag zoom, middle- or Shift+drag pan, left-drag on the MRI sets
window/level. Images are row-major ``ImageItem``s with fixed levels (never auto-levelled per
frame: it costs time and flickers).
"""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PyQt6.QtCore import QPointF, Qt, pyqtSignal
from PyQt6.QtGui import QColor, QFont

from core.labels import LabelTable

PANELS = {"mri": "MRI", "colorized": "colorized", "cryo": "cryosection"}
_CROSSHAIR_PEN = pg.mkPen(QColor(255, 220, 60, 150), width=1, style=Qt.PenStyle.DashLine)
#: Each letter hangs outside its edge of the image: anchored on the side facing the image.
_LETTER_ANCHORS = {"left": (1, 0.5), "right": (0, 0.5), "top": (0.5, 1), "bottom": (0.5, 0)}
#: Room around each view for the orientation letters (left, top, right, bottom screen pixels), so
#: they never cover the image, even zoomed in, when the image fills the whole view.
LETTER_MARGINS = (26, 18, 26, 18)
_LETTER_GAP = 2


class PanelView(pg.ViewBox):
    """A ViewBox with the viewer's mouse conventions; it reports scrolls and W/L drags, never applies them."""

    scrolled = pyqtSignal(float)  # wheel notches, positive = up
    window_dragged = pyqtSignal(float, float)  # screen pixels moved (dx, dy)

    def __init__(self, window_drag: bool = False):
        super().__init__(lockAspect=True, invertY=True, enableMenu=False, defaultPadding=0.0)
        self._window_drag = window_drag

    def wheelEvent(self, ev, axis=None) -> None:
        if ev.modifiers() & Qt.KeyboardModifier.ControlModifier:
            super().wheelEvent(ev, axis)
            return
        ev.accept()
        self.scrolled.emit(ev.delta() / 120.0)

    def mouseDragEvent(self, ev, axis=None) -> None:
        plain_left = (ev.button() == Qt.MouseButton.LeftButton
                      and not ev.modifiers() & Qt.KeyboardModifier.ShiftModifier)
        if plain_left and self._window_drag:
            ev.accept()
            delta = ev.screenPos() - ev.lastScreenPos()
            self.window_dragged.emit(delta.x(), delta.y())
            return
        super().mouseDragEvent(ev, axis)


class _Panel:
    """One panel's items: title with an optional notice, view, image, optional label overlay, crosshair, letters."""

    def __init__(self, layout: pg.GraphicsLayout, column: int, title: str, window_drag: bool, overlay: bool,
                 row: int = 0):
        self.title = layout.addLabel("", row=row, col=column)
        self.view = PanelView(window_drag)
        self.frame = layout.addLayout(row=row + 1, col=column)  # the view with a margin for the letters
        self.frame.setContentsMargins(*LETTER_MARGINS)
        self.frame.addItem(self.view)
        self.image = pg.ImageItem(axisOrder="row-major")
        self.view.addItem(self.image)
        self.overlay = None
        if overlay:
            self.overlay = pg.ImageItem(axisOrder="row-major")
            self.overlay.setZValue(10)
            self.view.addItem(self.overlay)
        self.lines = (pg.InfiniteLine(angle=90, movable=False, pen=_CROSSHAIR_PEN),
                      pg.InfiniteLine(angle=0, movable=False, pen=_CROSSHAIR_PEN))
        for line in self.lines:
            line.setZValue(20)
            line.hide()
            self.view.addItem(line, ignoreBounds=True)
        font = QFont()
        font.setPointSize(11)
        font.setBold(True)
        self.letters = {}
        for edge, anchor in _LETTER_ANCHORS.items():
            text = pg.TextItem("", color=(255, 220, 60), anchor=anchor)
            text.setFont(font)
            text.setParentItem(self.frame)  # not the view: it would clip them to the image's area
            self.letters[edge] = text
        self.heading, self.notice = title, ""
        self.show_title()

    def place_texts(self, shape: tuple[int, int]) -> None:
        """Letters beside the middle of the image's visible edges, outside the image: in the black
        beside it, or, where the image fills the view (zoomed in), in the margin around the view."""
        h, w = shape
        view, frame = self.view, self.frame
        bounds = view.mapRectToItem(frame, view.boundingRect())
        top_left = frame.mapFromScene(view.mapViewToScene(QPointF(0, 0)))
        bottom_right = frame.mapFromScene(view.mapViewToScene(QPointF(w, h)))
        left, right = max(top_left.x(), bounds.left()), min(bottom_right.x(), bounds.right())
        top, bottom = max(top_left.y(), bounds.top()), min(bottom_right.y(), bounds.bottom())
        mid_x, mid_y = (left + right) / 2, (top + bottom) / 2
        gap = _LETTER_GAP
        spots = {"left": (left - gap, mid_y), "right": (right + gap, mid_y), "top": (mid_x, top - gap),
                 "bottom": (mid_x, bottom + gap)}
        for edge, (x, y) in spots.items():
            self.letters[edge].setPos(QPointF(x, y))

    def show_title(self) -> None:
        """The heading, and under it any notice (untrained model, missing volume) in orange."""
        notice = f'<br><span style="color:#ff9640">{self.notice}</span>' if self.notice else "<br>&nbsp;"
        self.title.setText(f"{self.heading}{notice}", size="10pt")


#: Panels the label layer is drawn on: the cryosection it belongs to and the colorized plane,
#: where a user checks which tissue a colour stands for.
OVERLAID = ("colorized", "cryo")


class ImagePanels(pg.GraphicsLayoutWidget):
    """MRI, colorized and cryosection panels with linked views, crosshair and orientation letters.

    Emits ``hovered(row, col)`` (fractional plane pixel, or (nan, nan) off the images),
    ``scrolled(notches)`` and ``window_dragged(dx, dy)``.
    """

    hovered = pyqtSignal(float, float)
    scrolled = pyqtSignal(float)
    window_dragged = pyqtSignal(float, float)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setBackground("k")
        self.ci.layout.setSpacing(4)
        self.panels = {key: _Panel(self.ci, i, title, window_drag=(key == "mri"), overlay=(key in OVERLAID))
                       for i, (key, title) in enumerate(PANELS.items())}
        first = self.panels["mri"].view
        for panel in self.panels.values():
            panel.view.scrolled.connect(self.scrolled)
            if panel.view is not first:
                panel.view.setXLink(first)
                panel.view.setYLink(first)
        first.window_dragged.connect(self.window_dragged)
        for panel in self.panels.values():
            panel.view.sigResized.connect(self._place_texts)
            panel.view.sigRangeChanged.connect(self._place_texts)
        self._shape = (0, 0)
        self._letters: dict[str, str] = {}
        self.cryo_shown = True
        self._proxy = pg.SignalProxy(self.scene().sigMouseMoved, rateLimit=60, slot=self._mouse_moved)

    def resizeEvent(self, event) -> None:
        """Keep the three columns equally wide, whatever their titles say: linked views with
        locked aspect ratios show the same region only when their boxes have the same shape."""
        super().resizeEvent(event)
        if not hasattr(self, "panels"):  # pyqtgraph resizes once while constructing
            return
        self._size_columns()

    def _size_columns(self) -> None:
        columns = len(PANELS) if self.cryo_shown else len(PANELS) - 1
        left, _, right, _ = self.ci.layout.getContentsMargins()
        spacing = self.ci.layout.horizontalSpacing() * (columns - 1)
        width = max((self.viewport().width() - left - right - spacing) / columns - 1, 10)
        for column in range(len(PANELS)):
            self.ci.layout.setColumnFixedWidth(column, width if column < columns else 0)

    def show_cryo(self, shown: bool) -> None:
        """Show or hide the cryosection column; hidden, it gives its width to the MRI and colorized
        panels (no cryosection is loaded: an empty third of the window would show nothing)."""
        if shown == self.cryo_shown:
            return
        self.cryo_shown = shown
        panel, first = self.panels["cryo"], self.panels["mri"].view
        panel.title.setVisible(shown)
        panel.view.setVisible(shown)
        self._size_columns()
        self.ci.layout.activate()  # the new widths now: a linked view scales its range by its width,
        panel.view.setXLink(first if shown else None)  # and a zero-width one would shrink every image
        panel.view.setYLink(first if shown else None)
        self.reset_zoom()

    # --- content -------------------------------------------------------------------------------
    def _fit(self, shape: tuple[int, int]) -> None:
        """Frame the plane once per plane size; afterwards the user's zoom and pan are kept."""
        if shape != self._shape:
            self._shape = shape
            self.reset_zoom()

    def _place_texts(self, *_) -> None:
        if self._shape != (0, 0):
            for panel in self.panels.values():
                panel.place_texts(self._shape)

    def reset_zoom(self) -> None:
        h, w = self._shape
        self.panels["mri"].view.setRange(xRange=(0, w), yRange=(0, h), padding=0.0)

    def set_mri(self, plane: np.ndarray, levels: tuple[float, float]) -> None:
        self.panels["mri"].image.setImage(plane, levels=levels, autoLevels=False)
        self._fit(plane.shape)

    def set_levels(self, levels: tuple[float, float]) -> None:
        self.panels["mri"].image.setLevels(levels)

    def set_rgb(self, key: str, rgb: np.ndarray | None) -> None:
        """Show an (H, W, 3) uint8 plane in the ``colorized`` or ``cryo`` panel (None clears it)."""
        item = self.panels[key].image
        if rgb is None:
            item.clear()
        else:
            item.setImage(rgb, levels=None, autoLevels=False)

    def _overlays(self) -> list[pg.ImageItem]:
        return [self.panels[key].overlay for key in OVERLAID]

    def set_labels(self, labels: np.ndarray | None, lut_index: np.ndarray | None) -> None:
        """Label ids (H, W) drawn over the cryosection and the colorized plane through
        ``lut_index`` (id → LUT row)."""
        if labels is None or lut_index is None:
            for overlay in self._overlays():
                overlay.clear()
            return
        dense = lut_index[np.clip(labels, 0, len(lut_index) - 1)]
        for overlay in self._overlays():
            overlay.setImage(dense, levels=(0, 255), autoLevels=False)

    def set_label_table(self, table: LabelTable | None) -> np.ndarray | None:
        """Install the overlay's RGBA LUT (background transparent); returns the id → row map."""
        if table is None:
            return None
        lut = np.zeros((256, 4), dtype=np.uint8)
        index = np.zeros(max(table.ids) + 1, dtype=np.uint8)
        for row, label in enumerate(table.labels[:255], start=1):
            index[label.id] = 0 if label.id == 0 else row
            lut[row] = (*label.color, 0 if label.id == 0 else 255)
        for overlay in self._overlays():
            overlay.setLookupTable(lut)
        return index

    def set_overlay(self, opacity: float, visible: bool) -> None:
        for overlay in self._overlays():
            overlay.setOpacity(opacity)
            overlay.setVisible(visible)

    def set_letters(self, letters: dict[str, str]) -> None:
        if letters == self._letters:  # scrolling keeps them; re-laying out 12 texts is not free
            return
        self._letters = dict(letters)
        for panel in self.panels.values():
            for edge, text in letters.items():
                panel.letters[edge].setText(text)

    def set_notice(self, key: str, text: str) -> None:
        self.panels[key].notice = text
        self.panels[key].show_title()

    def set_title(self, key: str, text: str) -> None:
        self.panels[key].heading = text
        self.panels[key].show_title()

    # --- crosshair -----------------------------------------------------------------------------
    def set_crosshair(self, row: float | None, col: float | None) -> None:
        """Draw the crosshair through the centre of plane pixel (row, col) in every panel (None hides it)."""
        for panel in self.panels.values():
            vertical, horizontal = panel.lines
            if row is None or col is None:
                vertical.hide()
                horizontal.hide()
                continue
            vertical.setPos(col + 0.5)
            horizontal.setPos(row + 0.5)
            vertical.show()
            horizontal.show()

    def _mouse_moved(self, event) -> None:
        pos = event[0]
        for panel in self.panels.values():
            if panel.view.sceneBoundingRect().contains(pos):
                point = panel.view.mapSceneToView(pos)
                row, col = point.y() - 0.5, point.x() - 0.5
                h, w = self._shape
                if -0.5 <= row < h - 0.5 and -0.5 <= col < w - 0.5:
                    self.hovered.emit(row, col)
                    return
        self.hovered.emit(float("nan"), float("nan"))
