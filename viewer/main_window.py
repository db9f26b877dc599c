"""The main window: layout, docks, dialogs and persistence around a session and its plane pipeline.

What is open lives in a Qt-free `Session` (study, framing, network, viewer state), filled by the
`Loader` in the background; the `PlanePipeline` turns each plane change into the MRI,
cryosection, colorized plane and metrics (design notes in docs/viewer.md). The window
subscribes its panels, navigator, status bar and metrics panel to the three and remembers the layout.
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
from PyQt6.QtCore import QByteArray, Qt, pyqtSignal
from PyQt6.QtWidgets import QDockWidget, QLabel, QMainWindow, QMessageBox, QVBoxLayout, QWidget

from core.devices import available_devices
from core.inference.colorizer import SHIPPED_MODEL_NOTE
from core.planes import Plane
from viewer.controls import DisplayControls, Legend, PlaneControls
from viewer.export import ExportProgress, VolumeExports, save_png
from viewer.framing import Framing
from viewer.jobs import Colorized, SidePlanes
from viewer.layouts import Layouts
from viewer.loader import Loader
from viewer.menus import MenuCommands, build_menus, fill_recent
from viewer.metrics_panel import MetricsPanel
from viewer.navigator import Navigator
from viewer.network import LoadedNetwork
from viewer.panels import ImagePanels
from viewer.pipeline import PlanePipeline
from viewer.session import Session
from viewer.settings import ViewerSettings
from viewer.state import OUTPUTS
from viewer.status import StatusBar
from viewer.study import Study, opening_order
from viewer.volume_view import volume_dock
from viewer.worker import BackgroundTasks

log = logging.getLogger("mricolor.viewer")

_READOUT_HINT = "move the mouse over a panel for position, MRI value and tissue"
#: Dock name, title and width (pixels) in the default layout, left to right under the panels.
_DOCKS = (("plane", "Plane", 300), ("navigator", "Navigator", 420), ("display", "Display", 330),
          ("legend", "Legend", 200), ("metrics", "Metrics", 330))


class MainWindow(QMainWindow):
    """MRI | colorized | cryosection panels with plane, display, navigator, legend and metrics docks.

    ``study`` and ``network`` may be injected (tests use a small phantom and an untrained network);
    otherwise ``loader`` opens files, the phantom and checkpoints in the background.
    """

    study_changed = pyqtSignal()  # a new study is open (its first plane follows at once)
    error_shown = pyqtSignal(str)

    def __init__(self, study: Study | None = None, network: LoadedNetwork | None = None, *,
                 settings: ViewerSettings | None = None, size: int = 256):
        super().__init__()
        self.setWindowTitle("mricolor")
        self.setAcceptDrops(True)
        self.settings = settings or ViewerSettings()
        self.session = Session(size=size)
        self.state = self.session.state
        self.pipeline = PlanePipeline(self.session, self)
        self.tasks = BackgroundTasks()
        self.loader = Loader(self.session, self.settings, self.tasks, self)
        self.exports = VolumeExports(self, self.tasks)
        self.last_error: str | None = None
        self.side = SidePlanes(None, None, ())
        self.cursor_pixel: tuple[float, float] | None = None  # where the readout is taken
        self._lut_index: np.ndarray | None = None
        self._error_boxes: list[QMessageBox] = []
        self._shut_down = False
        self._build_widgets()
        self._build_docks()
        commands = MenuCommands(self.loader.open_file, self.loader.load_default, self.export_png, self.export_volume,
                                self.show_error, self.layouts.reset_zoom, self.close)
        self.recent_menu = build_menus(self.menuBar(), self, commands, self.state,
                                       [dock.toggleViewAction() for dock in self.docks.values()], self.layouts.actions)
        fill_recent(self.recent_menu, self.settings.recent(), self.loader.open_file)
        self._connect_session()
        self._connect_pipeline()
        self._connect_loading()
        self._restore_layout()
        if network is not None:
            self.set_network(network)
        if study is not None:
            self.set_study(study)

    # --- construction --------------------------------------------------------------------------
    def _build_widgets(self) -> None:
        self.panels = ImagePanels()
        self.panels.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.readout = QLabel(_READOUT_HINT)
        self.readout.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        central = QWidget()
        layout = QVBoxLayout(central)
        layout.setContentsMargins(2, 2, 2, 2)
        self.layouts = Layouts(self.panels, self.session, self.pipeline, self.settings, self)
        layout.addWidget(self.layouts.stack, 1)
        layout.addWidget(self.readout)
        self.setCentralWidget(central)
        self.plane_controls = PlaneControls(self.state)
        self.navigator = Navigator()
        self.display = DisplayControls(self.state, available_devices())
        self.legend = Legend()
        self.metrics = MetricsPanel()
        self.status = StatusBar()
        self.setStatusBar(self.status)

    def _build_docks(self) -> None:
        widgets = {"plane": self.plane_controls, "navigator": self.navigator, "display": self.display,
                   "legend": self.legend, "metrics": self.metrics}
        self.docks = {}
        for name, title, _width in _DOCKS:
            dock = QDockWidget(title, self)
            dock.setObjectName(f"dock_{name}")
            dock.setWidget(widgets[name])
            self.addDockWidget(Qt.DockWidgetArea.BottomDockWidgetArea, dock)
            self.docks[name] = dock
        docks = list(self.docks.values())
        for left, right in zip(docks, docks[1:]):
            self.splitDockWidget(left, right, Qt.Orientation.Horizontal)
        self.resizeDocks(docks, [280] * len(docks), Qt.Orientation.Vertical)
        self.resizeDocks(docks, [width for *_, width in _DOCKS], Qt.Orientation.Horizontal)
        self.docks["view3d"] = volume_dock(self, self.session, self.pipeline.colour_volume)
        self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, self.docks["view3d"])

    def _connect_session(self) -> None:
        state, session = self.state, self.session
        self.panels.hovered.connect(self.point_at)
        self.layouts.readout.connect(lambda text: self.readout.setText(text or _READOUT_HINT))
        self.panels.scrolled.connect(state.scroll)
        self.panels.window_dragged.connect(self._on_window_drag)
        self.navigator.clicked.connect(state.move_through)
        self.display.device_chosen.connect(self.loader.move_network)
        state.window_changed.connect(self._on_window_changed)
        state.overlay_changed.connect(self.panels.set_overlay)
        state.output_changed.connect(lambda output: self.panels.set_title("colorized", f"colorized {OUTPUTS[output]}"))
        session.study_opened.connect(self._on_study_opened)
        session.volumes_changed.connect(self._on_volumes_changed)
        session.network_changed.connect(self._on_network_changed)
        self.panels.set_overlay(state.opacity, state.overlay_visible)
        self.panels.set_title("colorized", f"colorized {OUTPUTS[state.output]}")

    def _connect_pipeline(self) -> None:
        pipeline = self.pipeline
        pipeline.mri_cut.connect(self._on_mri_cut)
        pipeline.side_ready.connect(self._on_side)
        pipeline.colorized.connect(self._on_colorized)
        pipeline.progress.connect(self.status.set_busy)
        pipeline.failed.connect(lambda title, message: self.show_error(message, title))
        pipeline.metrics_status.connect(self.metrics.set_status)
        pipeline.metrics_ready.connect(lambda _rid, values: self.metrics.show_values(values))
        pipeline.metrics_cleared.connect(self.metrics.clear)
        volume = pipeline.colour_volume
        volume.progressed.connect(
            lambda permille: self.status.showMessage(f"colorizing the whole volume for the views: {permille // 10} %"))
        volume.changed.connect(lambda: volume.ready and self.status.showMessage(
            "colour is now cut from the colorized volume (as exported)", 8000))
        volume.failed.connect(lambda message: self.status.showMessage(
            f"colorizing the whole volume failed, planes stay live: {message}", 10000))

    def _connect_loading(self) -> None:
        for source in (self.loader, self.exports):
            source.failed.connect(self._on_background_failed)
        self.loader.busy.connect(self.status.set_busy)
        self.loader.message.connect(self.status.showMessage)
        self.loader.opened.connect(self._add_recent)
        self.exports.message.connect(lambda text: self.status.showMessage(text, 8000))

    # --- study and network ---------------------------------------------------------------------
    def set_study(self, study: Study, key: str | None = None, framing: Framing | None = None) -> None:
        """Show a new study now (see `Loader.open_study`)."""
        self.loader.open_study(study, key, framing)

    def set_network(self, network: LoadedNetwork, keep_output: bool = False) -> None:
        """Colorize with ``network``; it shows the output its checkpoint declares unless ``keep_output``."""
        self.session.set_network(network, keep_output)

    def _on_study_opened(self, study: Study) -> None:
        """Nothing on screen that belonged to the previous study survives: readout, zoom, presets, views."""
        framing = self.session.framing
        self.point_at(float("nan"), float("nan"))
        self.layouts.reset_zoom()
        self.display.set_presets(framing.presets)
        self.navigator.set_study(study, framing.frame, self.state.levels, self.state.size)
        self._on_volumes_changed(study)
        self.panels.set_title("mri", f"MRI — {study.name}")
        self.setWindowTitle(f"mricolor — {study.name}")
        self.study_changed.emit()

    def _on_volumes_changed(self, study: Study) -> None:
        self._lut_index = self.panels.set_label_table(study.label_table)
        self.layouts.details["comparison"].lut_index = self._lut_index  # its zoom detail's labels too
        self.legend.set_table(study.label_table, "empty: no labels are open (File ▸ Open labels)" if study.cryo
                              else "empty: no cryosection or labels are open (File ▸ Open cryosection, labels)")
        self.panels.show_cryo(study.cryo is not None)

    def _on_network_changed(self, network: LoadedNetwork) -> None:
        device = str(network.colorizer.device)
        self.display.set_device(device)
        self.status.set_device(device)
        self.panels.set_notice("colorized", network.notice or "")
        self.panels.panels["colorized"].title.setToolTip(f"colours from {network.source}: {SHIPPED_MODEL_NOTE}"
                                                          if network.source == "default checkpoint" else
                                                          f"colours from {network.source}")
        if network.notice:
            self.status.showMessage(f"{network.source}: {network.notice}", 10000)
        self.display.set_outputs(network.colorizer.outputs)

    def _on_background_failed(self, title: str, message: str) -> None:
        if self.session.network is not None:  # a failed move leaves the network where it was
            self.display.set_device(str(self.session.network.colorizer.device))
        self.show_error(message, title)

    def _add_recent(self, kind: str, path: str) -> None:
        self.settings.add_recent(kind, str(path))
        fill_recent(self.recent_menu, self.settings.recent(), self.loader.open_file)

    # --- what the pipeline shows ---------------------------------------------------------------
    def _on_mri_cut(self, _rid: int, mri_plane: np.ndarray, plane: Plane) -> None:
        self.panels.set_mri(mri_plane, self.state.levels)
        self.panels.set_letters(plane.orientation_letters())
        self.navigator.set_plane(plane)
        if self.cursor_pixel is not None:  # the plane moved under a resting cursor
            self.point_at(*self.cursor_pixel)
        else:  # what the readout says was true of another plane
            self.readout.setText(_READOUT_HINT)

    def _on_side(self, _rid: int, side: SidePlanes) -> None:
        self.side = side
        self.panels.set_rgb("cryo", side.cryo)
        self.panels.set_labels(side.labels, self._lut_index)
        self.legend.show_ids(side.present)

    def _on_colorized(self, _rid: int, result: Colorized) -> None:
        self.panels.set_rgb("colorized", result.rgb)
        self.status.frame_shown(result.ms, result.preview, result.from_volume)

    @property
    def idle(self) -> bool:
        """True when every panel shows the newest plane and nothing is loading or computing."""
        return self.tasks.pending == 0 and self.pipeline.idle and self.layouts.idle

    # --- display -------------------------------------------------------------------------------
    def _on_window_changed(self, _window: float, _level: float) -> None:
        self.panels.set_levels(self.state.levels)
        self.navigator.set_levels(self.state.levels)

    def _on_window_drag(self, dx: float, dy: float) -> None:
        """Horizontal drag widens the window, upward drag lowers the level (brighter), as in Slicer."""
        lo, hi = self.session.value_range
        step = max(hi - lo, 1e-6) / 256.0
        self.state.set_window(self.state.window + dx * step, self.state.level + dy * step)

    def point_at(self, row: float, col: float) -> None:
        """Crosshair and readout at plane pixel (row, col) — the mouse, or a script (nan hides them)."""
        mri_plane = self.pipeline.mri_plane
        if self.session.study is None or mri_plane is None or np.isnan(row):
            self.cursor_pixel = None
            self.panels.set_crosshair(None, None)
            self.state.set_cursor(None)
            return
        self.cursor_pixel = (row, col)
        self.panels.set_crosshair(row, col)
        self.state.set_cursor(self.state.plane().pixel_to_physical(row, col))
        self.readout.setText(self.session.readout(mri_plane, row, col))

    # --- files ---------------------------------------------------------------------------------
    def dragEnterEvent(self, event) -> None:
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:
        paths = [url.toLocalFile() for url in event.mimeData().urls() if url.isLocalFile()]
        for path in opening_order(paths):
            self.loader.open_file(None, path)
        event.acceptProposedAction()

    # --- exports -------------------------------------------------------------------------------
    def export_png(self, path: str) -> Path:
        """The panels of the layout on screen as one PNG, as they are shown."""
        written = save_png(self.layouts.stack.currentWidget(), path)
        self.status.showMessage(f"saved {written}", 5000)
        return written

    def export_volume(self, path: str) -> ExportProgress | None:
        """Colorize the whole MRI in the background, with a cancellable progress dialog."""
        session = self.session
        if not session.ready:
            self.show_error("nothing to export yet: the MRI and the model are still loading", "Export")
            return None
        return self.exports.start(session.study.mri, session.network.colorizer, self.state.output, path)

    # --- errors, persistence -------------------------------------------------------------------
    def show_error(self, message: str, title: str = "Error") -> None:
        """Show a non-blocking message box (the viewer stays usable) and log the message."""
        log.error("%s: %s", title, message)
        self.last_error = message
        self.status.showMessage(f"{title}: {message}", 10000)
        box = QMessageBox(QMessageBox.Icon.Warning, title, message, QMessageBox.StandardButton.Ok, self)
        box.setWindowModality(Qt.WindowModality.NonModal)
        box.finished.connect(lambda _r, b=box: self._error_boxes.remove(b) if b in self._error_boxes else None)
        self._error_boxes.append(box)
        box.show()
        self.error_shown.emit(message)

    def _restore_layout(self) -> None:
        for key, restore in (("geometry", self.restoreGeometry), ("window_state", self.restoreState)):
            value = self.settings.value(key)
            if isinstance(value, QByteArray):
                restore(value)
        opacity = self.settings.value("overlay_opacity")
        if opacity is not None:
            self.state.set_overlay(opacity=float(opacity))

    def shutdown(self) -> None:
        """Save the layout and settings and stop the workers (idempotent: close and quit both call it)."""
        if self._shut_down:
            return
        self._shut_down = True
        self.loader.remember_window()
        self.settings.set_value("geometry", self.saveGeometry())
        self.settings.set_value("window_state", self.saveState())
        self.settings.set_value("overlay_opacity", self.state.opacity)
        self.settings.sync()
        self.status.stop()
        self.exports.cancel_all()
        self.docks["view3d"].widget().stop()
        self.pipeline.stop()
        self.layouts.stop()
        self.tasks.stop()

    def closeEvent(self, event) -> None:
        self.shutdown()
        super().closeEvent(event)
