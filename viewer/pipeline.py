"""The plane pipeline: from a plane change to the MRI, cryosection, colorized plane and metrics on screen.

One plane change runs this way (design notes in docs/viewer.md): the UI thread cuts the MRI
plane (~2 ms) and announces it at once, then hands the same request id to the network worker
and to the side worker (cryosection and labels), both latest-wins. Results older than the one
on screen, or made before the study, network or output changed, are dropped, so a burst of
plane changes runs the network a few times and ends on the last plane. While the plane moves
faster than one change per `SCROLL_MS` the network previews it at half resolution and renders
the full plane once it rests; the metrics run on a third worker once the full colorized plane
is up to date and has stayed so for `METRICS_DELAY_MS`. Once the whole MRI has been colorized
(`viewer.colour_volume`, which the three-view layout asks for), the network worker cuts each
plane's colour from that volume instead of running the network (`ColorizeRequest.colour`).

`PlanePipeline` touches no widget: it emits what to show and the panels, navigator, status bar
and metrics panel subscribe.
"""
from __future__ import annotations

import time

import numpy as np
import torch
from PyQt6.QtCore import QObject, QTimer, pyqtSignal

from core.planes import ORIENTATIONS, Plane
from viewer import jobs
from viewer.colour_volume import ColourVolume
from viewer.session import Session
from viewer.worker import KeyedLatestWinsWorker, LatestWinsWorker

#: Quiet time after the full colorized plane before its metrics are computed.
METRICS_DELAY_MS = 150
#: Plane changes closer together than this are a scroll: the network previews them at half
#: resolution and renders the full plane once the plane has rested this long.
SCROLL_MS = 150
#: Scheduling niceness of the workers: below the UI thread, the metrics last.
WORKER_NICE = {"model": 3, "side": 5, "metrics": 10}
#: The network worker's key for the current plane (the three-view layout's views use their
#: orientation's name); the current plane runs first.
CURRENT = "current"


class PlanePipeline(QObject):
    """Cuts, colorizes and measures the session's current plane, newest request first.

    Every plane change gets the next request id; ``shown`` holds the id last emitted per kind of
    result ('side', 'colorized', 'metrics'), and no result is emitted for an id older than it.
    """

    mri_cut = pyqtSignal(int, object, object)  # request id, MRI plane (H, W) float32 in MRI units, Plane
    side_ready = pyqtSignal(int, object)  # request id, jobs.SidePlanes
    colorized = pyqtSignal(int, object)  # request id, jobs.Colorized
    metrics_ready = pyqtSignal(int, object)  # request id, {metric: value}
    metrics_status = pyqtSignal(str)  # what the metrics on screen are (or why there are none)
    metrics_cleared = pyqtSignal()  # the metrics on screen belonged to volumes no longer open
    progress = pyqtSignal(str)  # "colorizing…", "up to date", "colorization failed"
    failed = pyqtSignal(str, str)  # title, message: once per distinct failure, not once per plane

    def __init__(self, session: Session, parent: QObject | None = None):
        super().__init__(parent)
        self.session = session
        self.request_id = 0
        self.shown = {"side": 0, "colorized": 0, "metrics": 0}
        self.mri_plane: np.ndarray | None = None
        self.plane: Plane | None = None  # the plane ``mri_plane`` was cut at
        self.colorized_rgb: np.ndarray | None = None
        self.preview_shown = False  # the colorized panel shows a half-resolution preview
        self._floor = 0  # the oldest request whose results may still be shown
        self._last_change = 0.0
        self._latest: tuple[int, Plane, np.ndarray] | None = None  # newest network request: id, plane, input
        self._last_failure: str | None = None
        # The UI thread only cuts MRI planes: one torch thread each for it, the slicer and the metrics
        # leaves the cores to the network (torch's thread count is per thread; restored by `stop`).
        self._ui_torch_threads = torch.get_num_threads()
        torch.set_num_threads(1)
        self.side_worker = LatestWinsWorker(lambda r: jobs.slice_side(*r), "mricolor-slicer", torch_threads=1,
                                            nice=WORKER_NICE["side"])
        # One network thread for the current plane and the three-view layout's views (viewer.ortho):
        # two threads fought for the cores, and a view that is the current plane is run once.
        self.model_worker = KeyedLatestWinsWorker(jobs.colorize, "mricolor-model", priority=(CURRENT, *ORIENTATIONS),
                                                  same=jobs.same_request, nice=WORKER_NICE["model"])
        self.metrics_worker = LatestWinsWorker(jobs.plane_metrics, "mricolor-metrics", torch_threads=1,
                                               nice=WORKER_NICE["metrics"])
        # Once the three-view layout has had the whole MRI colorized, colour is cut from it (viewer.colour_volume).
        self.colour_volume = ColourVolume(session, self)
        self.colour_volume.changed.connect(self.restart)
        self.side_worker.finished.connect(self._on_side)
        self.model_worker.finished.connect(self._on_colorized)
        self.metrics_worker.finished.connect(self._on_metrics)
        self.side_worker.failed.connect(lambda _r, msg: self.failed.emit("Slicing failed", msg))
        self.model_worker.failed.connect(lambda key, rid, msg: key == CURRENT and self._on_model_failed(rid, msg))
        self.metrics_worker.failed.connect(lambda _r, msg: self.metrics_status.emit(f"metrics failed: {msg}"))
        self._timers = {name: QTimer(self, singleShot=True, interval=ms) for name, ms in
                        (("metrics", METRICS_DELAY_MS), ("refine", SCROLL_MS), ("restart", 0))}
        self._timers["metrics"].timeout.connect(self._submit_metrics)
        self._timers["refine"].timeout.connect(self._refine)
        self._timers["restart"].timeout.connect(self.update)
        state = session.state
        state.plane_changed.connect(lambda _plane: self.update())
        state.output_changed.connect(lambda _output: self.restart())
        session.network_changed.connect(lambda _network: self.restart())
        session.study_opened.connect(lambda _study: self._forget(restart=False))
        session.study_opened.connect(lambda _study: setattr(self, "plane", None))  # its cut was of the old MRI
        session.volumes_changed.connect(lambda _study: self._forget(restart=True))

    # --- requests ------------------------------------------------------------------------------
    def update(self) -> None:
        """Cut the current plane and send it on (the state calls this on every plane change)."""
        session = self.session
        self._timers["restart"].stop()
        if session.study is None:
            return
        plane = session.state.plane()
        now = time.perf_counter()
        scrolling, self._last_change = (now - self._last_change) * 1000 < SCROLL_MS, now
        self.mri_plane = jobs.slice_mri(session.study, plane)
        self.plane = plane
        self.request_id += 1
        rid = self.request_id
        self._timers["metrics"].stop()
        if session.network is not None:  # the network first: it is the slowest part of the way to the screen
            request = session.colorize_request(plane, self.mri_plane, preview=scrolling,
                                               colour=self.colour_volume.usable)
            self._latest = (rid, plane, request.mri01)
            self.model_worker.submit(CURRENT, rid, request)
            self.progress.emit("colorizing…")
            if request.preview:
                self._timers["refine"].start()
        self.side_worker.submit(rid, (session.study, plane))
        self.mri_cut.emit(rid, self.mri_plane, plane)
        if self.shown["metrics"]:
            self.metrics_status.emit("out of date — updating when the plane settles")

    def restart(self) -> None:
        """What a plane looks like has changed (network, output, volumes): drop every result
        requested so far, even where nothing newer has arrived yet, and redo the current plane
        once the change is complete (changes in one turn of the event loop make one request)."""
        self._floor = self.request_id + 1
        self._timers["restart"].start()

    def _forget(self, restart: bool) -> None:
        """The volumes changed: the metrics on screen describe volumes no longer open."""
        self._floor = self.request_id + 1
        self.shown["metrics"] = 0
        self.metrics_cleared.emit()
        if restart:
            self.restart()

    def _refine(self) -> None:
        """The plane has rested: replace the half-resolution preview by the full plane (same request id)."""
        if self.session.network is None or self._latest is None:
            return
        rid, plane, _ = self._latest
        self.model_worker.submit(CURRENT, rid, self.session.colorize_request(plane, self.mri_plane,
                                                                             colour=self.colour_volume.usable))

    def _submit_metrics(self) -> None:
        if self._latest is None or self._latest[0] != self.shown["colorized"] or self.colorized_rgb is None:
            return
        if self.model_worker.busy:  # the three-view layout's views are still being colorized: they come first
            self._timers["metrics"].start()
            return
        study = self.session.study
        if study.cryo is None:
            self.metrics_status.emit("metrics need a cryosection: File ▸ Open cryosection")
            return
        rid, plane, mri01 = self._latest
        self.metrics_status.emit("computing…")
        self.metrics_worker.submit(rid, jobs.MetricsRequest(study, plane, mri01, self.colorized_rgb))

    # --- results -------------------------------------------------------------------------------
    def _on_side(self, rid: int, side: jobs.SidePlanes) -> None:
        if rid < max(self.shown["side"], self._floor):
            return
        self.shown["side"] = rid
        self.side_ready.emit(rid, side)

    def _on_colorized(self, key: str, rid: int, result: jobs.Colorized) -> None:
        if key != CURRENT or rid < max(self.shown["colorized"], self._floor):
            return
        self.shown["colorized"] = rid
        self.colorized_rgb = result.rgb
        self.preview_shown = result.preview
        self._last_failure = None
        if rid == self.request_id and not result.preview:
            self.progress.emit("up to date")
            self._timers["metrics"].start()
        self.colorized.emit(rid, result)

    def _on_model_failed(self, _rid: int, message: str) -> None:
        self.progress.emit("colorization failed")
        if message != self._last_failure:
            self._last_failure = message
            self.failed.emit("Colorization failed", message)

    def _on_metrics(self, rid: int, values: dict) -> None:
        if rid != self.shown["colorized"] or rid < self._floor:
            return
        self.shown["metrics"] = rid
        self.metrics_ready.emit(rid, values)

    # --- state ---------------------------------------------------------------------------------
    @property
    def idle(self) -> bool:
        """True when every result of the newest plane is out and no worker has anything to do."""
        return (self.session.ready and not self._timers["restart"].isActive()
                and self.shown["colorized"] == self.request_id and self.shown["side"] == self.request_id
                and not (self.preview_shown or self._timers["refine"].isActive())
                and not (self.model_worker.busy_with((CURRENT,)) or self.side_worker.busy))

    def stop(self) -> None:
        """Stop the timers and the workers (the running requests finish first)."""
        for timer in self._timers.values():
            timer.stop()
        for worker in (self.model_worker, self.side_worker, self.metrics_worker, self.colour_volume):
            worker.stop()
        torch.set_num_threads(self._ui_torch_threads)
