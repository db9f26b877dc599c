"""The main window: wires the state, the panels, the workers, files and exports together.

One plane change runs this way (reference/viewer.md §3.1): the UI thread cuts the MRI plane
(~2 ms) and shows it at once, then hands the same request id to the side worker (cryosection
and labels) and to the model worker, both latest-wins. Results older than the one on screen are
dropped, so a burst of plane changes runs the model a few times and ends on the last plane. The
metrics run on a third worker once the colorized plane is up to date and the plane has settled.
"""
from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

import numpy as np
import torch
from PyQt6.QtCore import QByteArray, Qt, QTimer, pyqtSignal
from PyQt6.QtWidgets import QDockWidget, QLabel, QMainWindow, QMessageBox, QVBoxLayout, QWidget

from core.planes import Plane, volume_tensor
from core.volume import Volume
from viewer import data, jobs
from viewer.controls import DisplayControls, Legend, PlaneControls
from viewer.export import ExportProgress, export_volume, save_png
from viewer.menus import CHECKPOINT_SUFFIXES, build_menus, fill_recent
from viewer.metrics_panel import MetricsPanel
from core.devices import available_devices
from viewer.model import LoadedModel, load_model
from viewer.navigator import Navigator
from viewer.panels import ImagePanels
from viewer.settings import ViewerSettings
from viewer.state import OUTPUTS, ViewerState
from viewer.status import StatusBar
from viewer.worker import BackgroundTasks, LatestWinsWorker

log = logging.getLogger("mricolor.viewer")

_METRICS_DELAY_MS = 150
#: Plane changes closer together than this are a scroll: the model previews them at half
#: resolution and renders the full plane once the plane has rested this long.
_SCROLL_MS = 150
#: Scheduling niceness of the workers: below the UI thread, the metrics last (reference/viewer.md §3.1).
_WORKER_NICE = {"model": 3, "side": 5, "metrics": 10}


class MainWindow(QMainWindow):
    """MRI | colorized | cryosection panels with plane, display, navigator, legend and metrics docks.

    ``dataset`` and ``model`` may be injected (tests use a small phantom and an untrained model);
    otherwise call `load_default`, `open_file` and `load_checkpoint`, which work in the background.
    """

    dataset_changed = pyqtSignal()
    model_changed = pyqtSignal()
    colorized_shown = pyqtSignal(int)  # request id
    metrics_shown = pyqtSignal(int)
    error_shown = pyqtSignal(str)

    def __init__(self, dataset: data.Dataset | None = None, model: LoadedModel | None = None, *,
                 settings: ViewerSettings | None = None, size: int = 256):
        super().__init__()
        self.setWindowTitle("mricolor")
        self.setAcceptDrops(True)
        self.settings = settings or ViewerSettings()
        self.state = ViewerState(size=size)
        self.dataset: data.Dataset | None = None
        self.dataset_key = ""
        self.model: LoadedModel | None = None
        self.value_range = (0.0, 1.0)
        self.body_level: float | None = None
        self.last_error: str | None = None
        self.request_id = 0
        self.shown = {"side": 0, "colorized": 0, "metrics": 0}
        self._floor = 0  # the oldest request whose results may still be shown
        self.mri_plane: np.ndarray | None = None
        self.colorized_rgb: np.ndarray | None = None
        self.preview_shown = False  # the colorized panel shows a half-resolution preview
        self._last_change = 0.0
        self.side = jobs.SidePlanes(None, None, ())
        self._latest: tuple[int, Plane, np.ndarray] | None = None
        self._lut_index: np.ndarray | None = None
        self._last_model_error: str | None = None
        self._error_boxes: list[QMessageBox] = []
        self._shut_down = False
        self._exports: list[threading.Event] = []  # cancel flags of running volume exports

        # The UI thread only cuts MRI planes: one torch thread each for it, the slicer and the metrics
        # leaves the cores to the model (torch's thread count is per thread; restored on close).
        self._ui_torch_threads = torch.get_num_threads()
        torch.set_num_threads(1)
        self.tasks = BackgroundTasks()
        nice = _WORKER_NICE
        self.side_worker = LatestWinsWorker(lambda r: jobs.slice_side(*r), "mricolor-slicer", torch_threads=1,
                                            nice=nice["side"])
        self.model_worker = LatestWinsWorker(jobs.colorize, "mricolor-model", nice=nice["model"])
        self.metrics_worker = LatestWinsWorker(jobs.plane_metrics, "mricolor-metrics", torch_threads=1,
                                               nice=nice["metrics"])
        self.side_worker.finished.connect(self._on_side)
        self.model_worker.finished.connect(self._on_colorized)
        self.metrics_worker.finished.connect(self._on_metrics)
        self.side_worker.failed.connect(lambda _r, msg: self.show_error(msg, "Slicing failed"))
        self.model_worker.failed.connect(self._on_model_failed)
        self.metrics_worker.failed.connect(lambda _r, msg: self.metrics.set_status(f"metrics failed: {msg}"))

        self._build_widgets()
        self.recent_menu = build_menus(self)
        fill_recent(self, self.recent_menu, self.settings.recent())
        self._connect_state()
        self._restore_layout()
        self._metrics_timer = QTimer(self, singleShot=True, interval=_METRICS_DELAY_MS)
        self._metrics_timer.timeout.connect(self._submit_metrics)
        self._refine_timer = QTimer(self, singleShot=True, interval=_SCROLL_MS)
        self._refine_timer.timeout.connect(self._refine)
        if model is not None:
            self.set_model(model)
        if dataset is not None:
            self.set_dataset(dataset)

    # --- construction --------------------------------------------------------------------------
    def _build_widgets(self) -> None:
        self.panels = ImagePanels()
        self.panels.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.readout = QLabel("move the mouse over a panel for position, MRI value and tissue")
        self.readout.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        central = QWidget()
        layout = QVBoxLayout(central)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addWidget(self.panels, 1)
        layout.addWidget(self.readout)
        self.setCentralWidget(central)

        self.plane_controls = PlaneControls(self.state)
        self.navigator = Navigator()
        self.display = DisplayControls(self.state, available_devices())
        self.legend = Legend()
        self.metrics = MetricsPanel()
        self.docks = {}
        for name, title, widget in (("plane", "Plane", self.plane_controls), ("navigator", "Navigator", self.navigator),
                                    ("display", "Display", self.display), ("legend", "Legend", self.legend),
                                    ("metrics", "Metrics", self.metrics)):
            dock = QDockWidget(title, self)
            dock.setObjectName(f"dock_{name}")
            dock.setWidget(widget)
            self.addDockWidget(Qt.DockWidgetArea.BottomDockWidgetArea, dock)
            self.docks[name] = dock
        docks = list(self.docks.values())
        for left, right in zip(docks, docks[1:]):
            self.splitDockWidget(left, right, Qt.Orientation.Horizontal)
        self.resizeDocks(docks, [280] * len(docks), Qt.Orientation.Vertical)
        self.resizeDocks(docks, [300, 420, 330, 200, 330], Qt.Orientation.Horizontal)

        self.status = StatusBar()
        self.setStatusBar(self.status)

        self.panels.hovered.connect(self.point_at)
        self.panels.scrolled.connect(self.state.scroll)
        self.panels.window_dragged.connect(self._on_window_drag)
        self.navigator.clicked.connect(self.state.move_through)
        self.display.device_chosen.connect(self._on_device_chosen)

    def _connect_state(self) -> None:
        self.state.plane_changed.connect(self._on_plane_changed)
        self.state.window_changed.connect(self._on_window_changed)
        self.state.overlay_changed.connect(self.panels.set_overlay)
        self.state.output_changed.connect(self._on_output_changed)
        self.panels.set_overlay(self.state.opacity, self.state.overlay_visible)
        self.panels.set_title("colorized", f"colorized {OUTPUTS[self.state.output]}")

    # --- dataset and model ---------------------------------------------------------------------
    def set_dataset(self, dataset: data.Dataset, key: str | None = None,
                    framing: data.Framing | None = None) -> None:
        """Show a new dataset: frame it (``framing`` computed on a loading thread, else here), restore
        its window/level (remembered per ``key``, by default its name), recut every panel."""
        framing = framing or data.framing(dataset.mri, self.state.size)
        self._remember_window()
        self._invalidate()
        self.dataset, self.dataset_key = dataset, key or dataset.name
        self.value_range = framing.value_range
        self.body_level = framing.body_level
        self.display.set_presets(framing.presets)
        window, level = self.settings.window_level(self.dataset_key) or next(iter(framing.presets.values()))
        self.state.set_window(window, level)
        frame = framing.frame
        self.navigator.set_dataset(dataset, frame, self.state.levels, self.state.size)
        self._side_volumes_changed()
        self.panels.set_title("mri", f"MRI — {dataset.name}")
        self.setWindowTitle(f"mricolor — {dataset.name}")
        self.state.set_frame(frame)
        self.dataset_changed.emit()

    def _side_volumes_changed(self) -> None:
        dataset = self.dataset
        self._lut_index = self.panels.set_label_table(dataset.label_table)
        self.legend.set_table(dataset.label_table)
        self.panels.set_notice("cryo", "" if dataset.cryo is not None else "no cryosection — File ▸ Open cryosection")

    def set_model(self, model: LoadedModel, keep_output: bool = False) -> None:
        """Use a new model; it shows the output its checkpoint declares unless ``keep_output``."""
        self._invalidate()
        self.model = model
        device = str(model.colorizer.device)
        self.display.set_device(device)
        self.status.set_device(device)
        self.panels.set_notice("colorized", model.notice or "")
        if model.notice:
            self.status.showMessage(f"{model.source}: {model.notice}", 10000)
        offered = model.colorizer.outputs
        self.display.set_outputs(offered)
        output = self.state.output if keep_output and self.state.output in offered else model.colorizer.serve
        self.model_changed.emit()
        if output != self.state.output:
            self.state.set_output(output)  # recolorizes
        elif self.dataset is not None:
            self._on_plane_changed(self.state.plane())

    def load_default(self, seed: int = 0, size: str = "default") -> None:
        """Load the built-in phantom in the background (cached on disk after the first time)."""
        self.status.set_busy("loading phantom…")
        self.tasks.submit(lambda: data.prepared(data.default_dataset(seed, size), self.state.size),
                          lambda ready: self.set_dataset(ready[0], framing=ready[1]),
                          lambda msg: self.show_error(msg, "Could not build the phantom"))

    def load_checkpoint(self, path: str | None = None, device: str | None = None) -> None:
        """Load a checkpoint (None: the shipped default, or an untrained model with a notice)."""
        self.status.set_busy("loading model…")

        def done(model: LoadedModel) -> None:
            self.set_model(model)
            if path is not None:
                self._add_recent("checkpoint", path)
        self.tasks.submit(lambda: load_model(path, device, warm_size=self.state.size), done,
                          lambda msg: self.show_error(msg, "Could not load the checkpoint"))

    def open_file(self, kind: str | None, path: str) -> None:
        """Open an MRI, cryosection, labels or checkpoint (kind None: decided from the file)."""
        path = str(path)
        if kind == "checkpoint" or (kind is None and path.lower().endswith(CHECKPOINT_SUFFIXES)):
            self.load_checkpoint(path, self._current_device())
            return
        table = None if self.dataset is None else self.dataset.label_table

        def load() -> tuple[str, Volume, data.Framing | None]:
            read_as, volume = data.load_any(path, table) if kind is None \
                else (kind, data.load_volume(kind, path, table))
            volume_tensor(volume)  # converted here, not on the first plane change
            return read_as, volume, data.framing(volume, self.state.size) if read_as == "mri" else None
        self.status.showMessage(f"loading {path}…")
        self.tasks.submit(load, lambda result: self._volume_loaded(*result, path),
                          lambda msg: self.show_error(msg, "Could not open the file"))

    def _volume_loaded(self, kind: str, volume: Volume, framing: data.Framing | None, path: str) -> None:
        self._add_recent(kind, path)
        self.status.showMessage(f"opened {Path(path).name} as {data.KINDS[kind]}", 5000)
        if kind == "mri":  # another body: the cryosection and labels shown so far no longer belong to it
            self.set_dataset(data.Dataset(volume, name=Path(path).name), path, framing)
            return
        if self.dataset is None:
            self.show_error(f"{path}: open an MRI before a {data.KINDS[kind]}", "No MRI")
            return
        self._invalidate()
        self.dataset = self.dataset.with_volume(kind, volume)
        self._side_volumes_changed()
        self._on_plane_changed(self.state.plane())

    def _current_device(self) -> str | None:
        return None if self.model is None else str(self.model.colorizer.device)

    def _on_device_chosen(self, device: str) -> None:
        if self.model is None or self.model.colorizer.device.type == device:
            return
        model = self.model
        self.status.set_busy(f"moving the model to {device}…")

        def failed(message: str) -> None:
            self.display.set_device(str(self.model.colorizer.device))
            self.show_error(message, f"Could not use {device}")
        self.tasks.submit(lambda: model.on(device),
                          lambda moved: self.set_model(moved, keep_output=True), failed)

    # --- the plane pipeline --------------------------------------------------------------------
    def _on_plane_changed(self, plane: Plane) -> None:
        if self.dataset is None:
            return
        now = time.perf_counter()
        scrolling, self._last_change = (now - self._last_change) * 1000 < _SCROLL_MS, now
        self.mri_plane = jobs.slice_mri(self.dataset, plane)
        self.request_id += 1
        rid = self.request_id
        self._metrics_timer.stop()
        if self.model is not None:  # the model first: it is the slowest part of the way to the screen
            request = self.colorize_request(plane, self.mri_plane, preview=scrolling)
            self._latest = (rid, plane, request.mri01)
            self.model_worker.submit(rid, request)
            self.status.set_busy("colorizing…")
            if scrolling:
                self._refine_timer.start()
        self.side_worker.submit(rid, (self.dataset, plane))
        self.panels.set_mri(self.mri_plane, self.state.levels)
        self.panels.set_letters(plane.orientation_letters())
        self.navigator.set_plane(plane)
        if self.shown["metrics"]:
            self.metrics.set_status("out of date — updating when the plane settles")

    def _refine(self) -> None:
        """The plane has rested: replace the half-resolution preview by the full plane (same request id)."""
        if self.model is None or self._latest is None:
            return
        rid, plane, _ = self._latest
        self.model_worker.submit(rid, self.colorize_request(plane, self.mri_plane))

    def colorize_request(self, plane: Plane, mri_plane: np.ndarray | None = None,
                         preview: bool = False) -> jobs.ColorizeRequest:
        """What the model worker gets for ``plane`` (its MRI cut is made here unless given)."""
        if mri_plane is None:
            mri_plane = jobs.slice_mri(self.dataset, plane)
        return jobs.ColorizeRequest(jobs.to_unit(mri_plane, self.value_range), self.model.colorizer,
                                    self.state.output, self.dataset.mri, plane, preview,
                                    self.body_level)

    def _on_side(self, rid: int, side: jobs.SidePlanes) -> None:
        if rid < max(self.shown["side"], self._floor):
            return
        self.shown["side"] = rid
        self.side = side
        self.panels.set_rgb("cryo", side.cryo)
        self.panels.set_labels(side.labels, self._lut_index)
        self.legend.show_ids(side.present)

    def _on_colorized(self, rid: int, result: jobs.Colorized) -> None:
        if rid < max(self.shown["colorized"], self._floor):
            return
        self.shown["colorized"] = rid
        self.colorized_rgb = result.rgb
        self.preview_shown = result.preview
        self.panels.set_rgb("colorized", result.rgb)
        self.status.frame_shown(result.ms, result.preview)
        self._last_model_error = None
        if rid == self.request_id and not result.preview:
            self.status.set_busy("up to date")
            self._metrics_timer.start()
        self.colorized_shown.emit(rid)

    def _on_model_failed(self, rid: int, message: str) -> None:
        self.status.set_busy("colorization failed")
        if message != self._last_model_error:  # one box per distinct failure, not one per plane
            self._last_model_error = message
            self.show_error(message, "Colorization failed")

    def _submit_metrics(self) -> None:
        if self._latest is None or self._latest[0] != self.shown["colorized"] or self.colorized_rgb is None:
            return
        if self.dataset.cryo is None:
            self.metrics.set_status("metrics need a cryosection: File ▸ Open cryosection")
            return
        rid, plane, mri01 = self._latest
        self.metrics.set_status("computing…")
        self.metrics_worker.submit(rid, jobs.MetricsRequest(self.dataset, plane, mri01, self.colorized_rgb))

    def _on_metrics(self, rid: int, values: dict) -> None:
        if rid != self.shown["colorized"]:
            return
        self.shown["metrics"] = rid
        self.metrics.show_values(values)
        self.metrics_shown.emit(rid)

    def _invalidate(self) -> None:
        """Results of requests made so far belong to another dataset, model or output: never show them,
        even where nothing newer has arrived yet."""
        self._floor = self.request_id + 1

    def _on_output_changed(self, output: str) -> None:
        self._invalidate()
        self.panels.set_title("colorized", f"colorized {OUTPUTS[output]}")
        self._on_plane_changed(self.state.plane())

    @property
    def idle(self) -> bool:
        """True when every panel shows the newest plane and no worker has anything to do."""
        return (self.dataset is not None and self.model is not None and self.tasks.pending == 0
                and self.shown["colorized"] == self.request_id and self.shown["side"] == self.request_id
                and not (self.preview_shown or self._refine_timer.isActive())
                and not (self.model_worker.busy or self.side_worker.busy))

    # --- display -------------------------------------------------------------------------------
    def _on_window_changed(self, window: float, level: float) -> None:
        self.panels.set_levels(self.state.levels)
        self.navigator.set_levels(self.state.levels)

    def _on_window_drag(self, dx: float, dy: float) -> None:
        """Horizontal drag widens the window, upward drag lowers the level (brighter), as in Slicer."""
        step = max(self.value_range[1] - self.value_range[0], 1e-6) / 256.0
        self.state.set_window(self.state.window + dx * step, self.state.level + dy * step)

    def point_at(self, row: float, col: float) -> None:
        """Crosshair and readout at plane pixel (row, col) — the mouse, or a script (nan hides them)."""
        if self.dataset is None or self.mri_plane is None or np.isnan(row):
            self.panels.set_crosshair(None, None)
            self.state.set_cursor(None)
            return
        self.panels.set_crosshair(row, col)
        point = self.state.plane().pixel_to_physical(row, col)
        self.state.set_cursor(point)
        self.readout.setText(self.readout_text(point, row, col))

    def readout_text(self, point: np.ndarray, row: float, col: float) -> str:
        """Position (mm, LPS), MRI value and tissue name at a plane pixel."""
        r, c = (int(np.clip(round(v), 0, n - 1)) for v, n in zip((row, col), self.mri_plane.shape))
        parts = [f"({point[0]:.1f}, {point[1]:.1f}, {point[2]:.1f}) mm LPS", f"MRI {self.mri_plane[r, c]:.4g}"]
        labels = self.dataset.labels
        if labels is not None:
            label_id = data.label_at(labels, point)
            parts.append("outside the labels" if label_id is None
                         else labels.label_table.name(label_id).replace("_", " "))
        return "  ·  ".join(parts)

    # --- files ---------------------------------------------------------------------------------
    def _add_recent(self, kind: str, path: str) -> None:
        self.settings.add_recent(kind, str(path))
        fill_recent(self, self.recent_menu, self.settings.recent())

    def dragEnterEvent(self, event) -> None:
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:
        paths = [url.toLocalFile() for url in event.mimeData().urls() if url.isLocalFile()]
        # an MRI first, so that a cryosection or labels dropped with it have something to go with
        for path in sorted(paths, key=lambda p: any(h in Path(p).name.lower() for h in ("label", "seg", "cryo"))):
            self.open_file(None, path)
        event.acceptProposedAction()

    # --- exports -------------------------------------------------------------------------------
    def export_png(self, path: str) -> Path:
        """The three panels as one PNG, as they are on screen."""
        written = save_png(self.panels, path)
        self.status.showMessage(f"saved {written}", 5000)
        return written

    def export_volume(self, path: str) -> ExportProgress | None:
        """Colorize the whole MRI in the background, with a cancellable progress dialog."""
        if self.dataset is None or self.model is None:
            self.show_error("nothing to export yet: the MRI and the model are still loading", "Export")
            return None
        dialog = ExportProgress(self)
        self._exports.append(dialog.cancelled)
        mri, colorizer, output = self.dataset.mri, self.model.colorizer, self.state.output

        def finished(written: Path) -> None:
            self._exports.remove(dialog.cancelled)
            dialog.close()
            self.status.showMessage(f"wrote {written}", 8000)

        def failed(message: str) -> None:
            self._exports.remove(dialog.cancelled)
            dialog.close()
            if dialog.cancelled.is_set():
                self.status.showMessage("export cancelled; nothing was written", 8000)
            else:
                self.show_error(message, "Export failed")
        self.tasks.submit(lambda: export_volume(mri, colorizer, output, path, dialog.report,
                                                dialog.cancelled), finished, failed)
        dialog.show()
        return dialog

    # --- errors, persistence -------------------------------------------------------------
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

    def _remember_window(self) -> None:
        if self.dataset_key:
            self.settings.set_window_level(self.dataset_key, self.state.window, self.state.level)

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
        self._remember_window()
        self.settings.set_value("geometry", self.saveGeometry())
        self.settings.set_value("window_state", self.saveState())
        self.settings.set_value("overlay_opacity", self.state.opacity)
        self.settings.sync()
        self._metrics_timer.stop()
        self._refine_timer.stop()
        self.status.stop()
        for cancel in self._exports:
            cancel.set()
        for worker in (self.model_worker, self.side_worker, self.metrics_worker):
            worker.stop()
        self.tasks.stop()
        torch.set_num_threads(self._ui_torch_threads)

    def closeEvent(self, event) -> None:
        self.shutdown()
        super().closeEvent(event)

