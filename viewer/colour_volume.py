"""The open MRI colorized whole, for every view to cut its colour from.

Until it exists, each view's colour comes from the network plane by plane (`viewer.pipeline`,
`viewer.ortho`): 100–300 ms a plane on a CPU, and a crosshair step in the three-view layout moves
three or four planes. So once that layout shows colour, the whole MRI is colorized in the
background exactly as ``mricolor colorize`` and File ▸ Export write it
(`viewer.export.colorize_volume`: the Colorizer decides how the model sees each slice), on a
thread below the live network's priority. From then on every plane's colour, in every layout, is
cut from that volume as the MRI is (`jobs.colorize` with `ColorizeRequest.colour`: a trilinear
cut of milliseconds on the network's worker, which no longer runs the network) until the study,
network or output changes. The views then also agree with each other and with the export: a voxel
has one colour wherever it is shown. Zoomed-in detail is still colorized at the screen's pixel size
(`viewer.detail`).
"""
from __future__ import annotations

import threading

from PyQt6.QtCore import QObject, pyqtSignal

from core.planes import volume_tensor
from core.volume import Volume
from viewer.export import Cancelled, colorize_volume
from viewer.session import Session
from viewer.worker import LatestWinsWorker

#: Scheduling niceness of the colorizing thread: below the live network's (`WORKER_NICE["model"]`),
#: so planes asked for now are colorized first while the volume is made.
VOLUME_NICE = 6
#: Largest MRI colorized whole (voxels): the volume and the float copy its cuts need take 15 bytes
#: a voxel (1 GB at this size); a larger MRI stays live.
MAX_VOXELS = 64_000_000


class ColourVolume(QObject):
    """The session's MRI colorized by its network and output, made in the background on `request`.

    ``ready`` once made (and ``enabled``); `usable` is then what the planes' requests cut from. Emits
    ``progressed(per mille)`` while colorizing, ``changed()`` when the volume becomes ready or
    is dropped, i.e. when where the planes' colour comes from changes, and ``failed(message)`` when
    a colorization stops on an error (the planes stay live).
    """

    progressed = pyqtSignal(int)
    changed = pyqtSignal()
    failed = pyqtSignal(str)

    def __init__(self, session: Session, parent: QObject | None = None):
        super().__init__(parent)
        self.session = session
        self.enabled = True
        self.volume: Volume | None = None
        self.failure: str | None = None  # why the last colorization stopped without a volume
        self._generation = 0
        self._cancel: threading.Event | None = None
        self._worker = LatestWinsWorker(self._colorize, "mricolor-volume", nice=VOLUME_NICE)
        self._worker.finished.connect(self._on_done)
        self._worker.failed.connect(self._on_failed)
        session.study_opened.connect(lambda _study: self.drop())
        session.network_changed.connect(lambda _network: self.drop())
        session.state.output_changed.connect(lambda _output: self.drop())

    @property
    def ready(self) -> bool:
        return self.enabled and self.volume is not None

    @property
    def running(self) -> bool:
        return self._cancel is not None

    def set_enabled(self, enabled: bool) -> None:
        """Cut planes from the volume (True) or colorize every plane live; off also cancels the
        colorization under way (it would only be thrown away)."""
        if enabled == self.enabled:
            return
        self.enabled = enabled
        if not enabled:
            self._stop_running()
        if self.volume is not None:
            self.changed.emit()

    def request(self) -> None:
        """Start colorizing the volume unless it is made, under way, switched off or failed for
        this study, network and output, or there is no study or network."""
        session = self.session
        if (not self.enabled or self.volume is not None or self.running or self.failure is not None
                or not session.ready):
            return
        voxels = session.study.mri.array.size
        if voxels > MAX_VOXELS:
            self.failure = f"the MRI has {voxels:,} voxels, more than the {MAX_VOXELS:,} colorized whole"
            self.failed.emit(self.failure)
            return
        self._generation += 1
        self._cancel = threading.Event()
        self._worker.submit(self._generation, (session.study.mri, session.network.colorizer,
                                               session.state.output, self._cancel))

    def drop(self) -> None:
        """Forget the volume (it belonged to another study, network or output) and cancel one under way."""
        self._stop_running()
        had = self.volume is not None
        self.volume = None
        self.failure = None
        if had and self.enabled:
            self.changed.emit()

    @property
    def usable(self) -> Volume | None:
        """The volume to cut planes' colour from (`jobs.ColorizeRequest.colour`), None while not ready."""
        return self.volume if self.ready else None

    def stop(self) -> None:
        """Cancel a colorization under way and end the thread (the window closes)."""
        self._stop_running()
        self._worker.stop()

    def _stop_running(self) -> None:
        self._generation += 1  # whatever the running one returns is dropped
        if self._cancel is not None:
            self._cancel.set()
            self._cancel = None

    def _colorize(self, job: tuple) -> Volume | None:
        """Worker thread: the export's colorization, then the float copy that the first cut would
        otherwise make while the user waits for it (None: cancelled)."""
        mri, colorizer, output, cancel = job
        try:
            volume = colorize_volume(mri, colorizer, output, lambda done: self.progressed.emit(int(1000 * done)),
                                     cancel)
        except Cancelled:
            return None
        volume_tensor(volume)
        return volume

    def _on_done(self, generation: int, volume: Volume | None) -> None:
        if generation != self._generation:
            return
        self._cancel = None
        if volume is None:
            return
        self.volume = volume
        if self.enabled:
            self.changed.emit()

    def _on_failed(self, generation: int, message: str) -> None:
        """The planes stay live; a cancelled colorization is not a failure."""
        if generation != self._generation:
            return
        self._cancel = None
        self.failure = message
        self.failed.emit(message)

