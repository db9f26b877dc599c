"""Side-panel controls: plane (presets, two angles, offset), display (W/L, overlay, output, device), legend.

Each control mirrors `ViewerState` and calls its setters; when the state changes from elsewhere
(wheel, navigator, presets) the widgets are updated with their signals blocked, so no change
echoes back into the state.
"""
from __future__ import annotations

import numpy as np
from PyQt6.QtCore import Qt, pyqtSignal
from PyQt6.QtGui import QColor, QIcon, QPixmap
from PyQt6.QtWidgets import (QButtonGroup, QCheckBox, QComboBox, QDoubleSpinBox, QFormLayout, QGridLayout,
                             QHBoxLayout, QLabel, QListWidget, QListWidgetItem, QPushButton, QSlider, QVBoxLayout,
                             QWidget)

from core.labels import LabelTable
from core.model.outputs import OUTPUTS as CORE_OUTPUTS
from core.planes import ORIENTATIONS, Plane
from viewer.state import OUTPUTS, ViewerState


class SliderSpin(QWidget):
    """A slider and a spin box showing one float; ``value_changed(float)`` fires on user edits only."""

    value_changed = pyqtSignal(float)

    def __init__(self, minimum: float, maximum: float, decimals: int = 1, suffix: str = "", parent=None):
        super().__init__(parent)
        self._scale = 10 ** decimals
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.spin = QDoubleSpinBox()
        self.spin.setDecimals(decimals)
        self.spin.setSuffix(suffix)
        self.spin.setKeyboardTracking(False)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.slider, 1)
        layout.addWidget(self.spin)
        self.set_range(minimum, maximum)
        self.slider.valueChanged.connect(lambda v: self._edited(v / self._scale))
        self.spin.valueChanged.connect(self._edited)

    def set_range(self, minimum: float, maximum: float) -> None:
        for widget in (self.slider, self.spin):
            widget.blockSignals(True)
        self.slider.setRange(round(minimum * self._scale), round(maximum * self._scale))
        self.spin.setRange(minimum, maximum)
        for widget in (self.slider, self.spin):
            widget.blockSignals(False)

    def set_value(self, value: float) -> None:
        """Show ``value`` without emitting (the state is already there)."""
        for widget, v in ((self.slider, round(value * self._scale)), (self.spin, value)):
            widget.blockSignals(True)
            widget.setValue(v)
            widget.blockSignals(False)

    def value(self) -> float:
        return self.spin.value()

    def _edited(self, value: float) -> None:
        self.set_value(value)
        self.value_changed.emit(float(value))


class PlaneControls(QWidget):
    """Axial/coronal/sagittal presets, tilt and rotation angles, offset along the normal."""

    def __init__(self, state: ViewerState, parent=None):
        super().__init__(parent)
        self.state = state
        self.buttons = QButtonGroup(self)
        row = QHBoxLayout()
        for i, name in enumerate(ORIENTATIONS):
            button = QPushButton(name.capitalize())
            button.setCheckable(True)
            button.setToolTip(f"{name} plane through the current centre (key {i + 1})")
            self.buttons.addButton(button, i)
            row.addWidget(button)
        self.buttons.idClicked.connect(lambda i: state.set_orientation(list(ORIENTATIONS)[i]))
        self.tilt = SliderSpin(-90, 90, suffix="°")
        self.rotate = SliderSpin(-90, 90, suffix="°")
        self.offset = SliderSpin(-100, 100, suffix=" mm")
        self.tilt.setToolTip("tilt about the plane's horizontal axis")
        self.rotate.setToolTip("rotation about the plane's vertical axis")
        self.offset.setToolTip("position along the normal (wheel, ↑/↓, Page Up/Down)")
        self.tilt.value_changed.connect(lambda v: state.set_plane(tilt_deg=v))
        self.rotate.value_changed.connect(lambda v: state.set_plane(rotate_deg=v))
        self.offset.value_changed.connect(lambda v: state.set_plane(offset_mm=v))
        form = QFormLayout()
        form.addRow("tilt", self.tilt)
        form.addRow("rotate", self.rotate)
        form.addRow("offset", self.offset)
        layout = QVBoxLayout(self)
        layout.addLayout(row)
        layout.addLayout(form)
        layout.addStretch(1)
        self._shown: tuple | None = None
        state.plane_changed.connect(self.sync)
        self.sync(state.plane())

    def sync(self, _plane: Plane | None = None) -> None:
        """Mirror the state; while scrolling only the offset changes, so only it is touched
        (updating Qt widgets costs milliseconds on every plane change otherwise)."""
        state = self.state
        orientation = (state.frame, state.orientation, state.tilt_deg, state.rotate_deg)
        if orientation != self._shown:
            self._shown = orientation
            self.buttons.button(list(ORIENTATIONS).index(state.orientation)).setChecked(True)
            self.tilt.set_value(state.tilt_deg)
            self.rotate.set_value(state.rotate_deg)
            limit = state.offset_limit()
            self.offset.set_range(-limit, limit)
        self.offset.set_value(state.offset_mm)


#: What the W/L preset box shows when the window/level on screen is no preset.
CUSTOM = "custom"


class DisplayControls(QWidget):
    """Window/level (spin boxes and presets), label overlay (visibility, opacity), model output, device."""

    device_chosen = pyqtSignal(str)

    def __init__(self, state: ViewerState, devices: list[str], parent=None):
        super().__init__(parent)
        self.state = state
        self.presets: dict[str, tuple[float, float]] = {}
        self.preset_box = QComboBox()
        self.preset_box.setToolTip("window/level presets (left-drag on the MRI adjusts them)")
        self.preset_box.activated.connect(self._preset_chosen)
        self.window = QDoubleSpinBox()
        self.level = QDoubleSpinBox()
        for box in (self.window, self.level):
            box.setRange(-1e9, 1e9)
            box.setDecimals(3)
            box.setKeyboardTracking(False)
            box.valueChanged.connect(lambda _v: state.set_window(self.window.value(), self.level.value()))
        wl = QHBoxLayout()
        wl.addWidget(QLabel("W"))
        wl.addWidget(self.window)
        wl.addWidget(QLabel("L"))
        wl.addWidget(self.level)
        self.overlay = QCheckBox("labels on colour and cryosection")
        self.overlay.setToolTip("toggle the label overlay (key G)")
        self.overlay.toggled.connect(lambda on: state.set_overlay(visible=on))
        self.opacity = SliderSpin(0, 1, decimals=2)
        self.opacity.value_changed.connect(lambda v: state.set_overlay(opacity=v))
        self.output = QComboBox()
        self.output.setToolTip("which output of the generator to show")
        self.set_outputs(tuple(OUTPUTS))
        self.output.currentIndexChanged.connect(lambda i: state.set_output(self.output.itemData(i)))
        self.device = QComboBox()
        self.device.addItems(devices)
        self.device.activated.connect(lambda i: self.device_chosen.emit(self.device.itemText(i)))
        form = QGridLayout(self)
        for row, (label, widget) in enumerate((("W/L preset", self.preset_box), ("window/level", wl),
                                                ("overlay", self.overlay), ("opacity", self.opacity),
                                                ("output", self.output), ("device", self.device))):
            form.addWidget(QLabel(label), row, 0)
            if isinstance(widget, QHBoxLayout):
                form.addLayout(widget, row, 1)
            else:
                form.addWidget(widget, row, 1)
        form.setRowStretch(form.rowCount(), 1)
        state.window_changed.connect(self._sync_window)
        state.overlay_changed.connect(self._sync_overlay)
        state.output_changed.connect(self._sync_output)
        self._sync_window(state.window, state.level)
        self._sync_overlay(state.opacity, state.overlay_visible)
        self._sync_output(state.output)

    def set_presets(self, presets: dict[str, tuple[float, float]]) -> None:
        """Presets of the loaded MRI; the spin boxes' steps follow its intensity range."""
        self.presets = dict(presets)
        self.preset_box.blockSignals(True)
        self.preset_box.clear()
        self.preset_box.addItems([*presets, CUSTOM])
        self.preset_box.blockSignals(False)
        self._sync_window(self.state.window, self.state.level)
        widest = max((w for w, _ in presets.values()), default=1.0)
        for box in (self.window, self.level):
            box.setSingleStep(widest / 100)

    def set_outputs(self, outputs: tuple[str, ...]) -> None:
        """The outputs the loaded model offers."""
        self.output.blockSignals(True)
        self.output.clear()
        for key in outputs:
            self.output.addItem(OUTPUTS.get(key, key), key)
            if key in CORE_OUTPUTS:  # the paper's notation, for those who know it
                self.output.setItemData(self.output.count() - 1, CORE_OUTPUTS[key].description,
                                        Qt.ItemDataRole.ToolTipRole)
        self.output.setCurrentIndex(max(self.output.findData(self.state.output), 0))
        self.output.blockSignals(False)

    def set_device(self, device: str) -> None:
        index = self.device.findText(device.split(":")[0])
        if index >= 0:
            self.device.setCurrentIndex(index)

    def _preset_chosen(self, index: int) -> None:
        name = self.preset_box.itemText(index)
        if name in self.presets:
            self.state.set_window(*self.presets[name])

    def _sync_window(self, window: float, level: float) -> None:
        for box, value in ((self.window, window), (self.level, level)):
            box.blockSignals(True)
            box.setValue(value)
            box.blockSignals(False)
        # the preset box names the preset on screen, or says "custom" after a drag or an edit
        name = next((n for n, (w, c) in self.presets.items() if np.isclose(w, window) and np.isclose(c, level)), CUSTOM)
        self.preset_box.blockSignals(True)
        self.preset_box.setCurrentIndex(max(self.preset_box.findText(name), 0))
        self.preset_box.blockSignals(False)

    def _sync_overlay(self, opacity: float, visible: bool) -> None:
        self.overlay.blockSignals(True)
        self.overlay.setChecked(visible)
        self.overlay.blockSignals(False)
        self.opacity.set_value(opacity)

    def _sync_output(self, output: str) -> None:
        self.output.blockSignals(True)
        self.output.setCurrentIndex(self.output.findData(output))
        self.output.blockSignals(False)


class Legend(QListWidget):
    """Tissue names with their overlay colours, for the tissues in the current plane."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.table: LabelTable | None = None
        self._shown: tuple[int, ...] | None = None
        self.setToolTip("tissues in the current plane (overlay colours)")
        self.setWordWrap(True)  # the reason an empty legend gives is a sentence
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)

    def set_table(self, table: LabelTable | None, reason: str = "") -> None:
        """List the tissues of ``table`` from now on; without one the list says ``reason`` (why it is
        empty) instead of staying blank."""
        self.table = table
        self._shown = None
        self.clear()
        if table is None and reason:
            item = QListWidgetItem(reason)
            item.setFlags(Qt.ItemFlag.NoItemFlags)
            self.addItem(item)

    def show_ids(self, ids: tuple[int, ...]) -> None:
        if self.table is None or ids == self._shown:
            return
        self._shown = ids
        self.clear()
        for label_id in ids:
            if label_id in self.table:
                label = self.table[label_id]
                swatch = QPixmap(12, 12)
                swatch.fill(QColor(*label.color))
                item = QListWidgetItem(QIcon(swatch), label.name.replace("_", " "))
                item.setToolTip(f"id {label.id} · {label.system}")
                self.addItem(item)

    def names(self) -> list[str]:
        return [self.item(i).text() for i in range(self.count())]
