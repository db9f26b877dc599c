"""Opening files, the phantom and checkpoints in the background, into the session.

Reading a volume, framing an MRI and loading a network take from a fraction of a second to
several seconds, so they run on the `BackgroundTasks` thread and only their results reach the
session, on the UI thread. The window/level of each study is remembered between sessions (by
its path, or the phantom's name) and restored when it is opened again.
"""
from __future__ import annotations

from pathlib import Path

from PyQt6.QtCore import QObject, pyqtSignal

from core.volume import Volume
from viewer import study as studies
from viewer.framing import Framing, framing as frame_mri
from viewer.network import CHECKPOINT_SUFFIXES, LoadedNetwork, load_network
from viewer.session import Session
from viewer.settings import ViewerSettings
from viewer.study import Study
from viewer.worker import BackgroundTasks


class Loader(QObject):
    """Loads into ``session`` on ``tasks``; the window shows what it reports.

    Emits ``busy(text)`` (the status bar's busy field), ``message(text, ms)`` (a status
    message), ``opened(kind, path)`` (a file the user opened: the recent-files list) and
    ``failed(title, message)``.
    """

    busy = pyqtSignal(str)
    message = pyqtSignal(str, int)  # text, milliseconds on screen (0: until the next message)
    opened = pyqtSignal(str, str)
    failed = pyqtSignal(str, str)

    def __init__(self, session: Session, settings: ViewerSettings, tasks: BackgroundTasks,
                 parent: QObject | None = None):
        super().__init__(parent)
        self.session, self.settings, self.tasks = session, settings, tasks

    def open_study(self, study: Study, key: str | None = None, framing: Framing | None = None) -> None:
        """Show ``study`` now: framed (``framing`` computed on a loading thread, else here) at the
        window/level remembered for ``key`` (by default its name)."""
        self.remember_window()
        key = key or study.name
        framing = framing or frame_mri(study.mri, self.session.state.size)
        self.session.open_study(study, framing, key, self.settings.window_level(key))

    def remember_window(self) -> None:
        """Store the open study's window/level, to restore when it is opened again."""
        state = self.session.state
        if self.session.study_key:
            self.settings.set_window_level(self.session.study_key, state.window, state.level)

    def load_default(self, seed: int = 0, size: str = "default") -> None:
        """Load the built-in phantom (cached on disk after the first time)."""
        self.busy.emit("loading phantom…")
        self.tasks.submit(lambda: studies.prepared(studies.default_study(seed, size), self.session.state.size),
                          lambda ready: self.open_study(ready[0], framing=ready[1]),
                          lambda msg: self.failed.emit("Could not build the phantom", msg))

    def load_checkpoint(self, path: str | None = None, device: str | None = None) -> None:
        """Load a checkpoint (None: the shipped default, or an untrained network with a notice)."""
        self.busy.emit("loading model…")

        def done(network: LoadedNetwork) -> None:
            self.session.set_network(network)
            if path is not None:
                self.opened.emit("checkpoint", path)
        self.tasks.submit(lambda: load_network(path, device, warm_size=self.session.state.size), done,
                          lambda msg: self.failed.emit("Could not load the checkpoint", msg))

    def open_file(self, kind: str | None, path: str) -> None:
        """Open an MRI, cryosection, labels or checkpoint (kind None: decided from the file)."""
        path = str(path)
        if kind == "checkpoint" or (kind is None and path.lower().endswith(CHECKPOINT_SUFFIXES)):
            network = self.session.network
            self.load_checkpoint(path, None if network is None else str(network.colorizer.device))
            return
        table = None if self.session.study is None else self.session.study.label_table
        self.message.emit(f"loading {path}…", 0)
        self.tasks.submit(lambda: studies.read_file(kind, path, table, self.session.state.size),
                          lambda result: self._volume_read(*result, path),
                          lambda msg: self.failed.emit("Could not open the file", msg))

    def _volume_read(self, kind: str, volume: Volume, framing: Framing | None, path: str) -> None:
        self.opened.emit(kind, path)
        self.message.emit(f"opened {Path(path).name} as {studies.KINDS[kind]}", 5000)
        if kind == "mri":  # another body: the cryosection and labels shown so far no longer belong to it
            self.open_study(Study(volume, name=Path(path).name), path, framing)
        elif self.session.study is None:
            self.failed.emit("No MRI", f"{path}: open an MRI before a {studies.KINDS[kind]}")
        else:
            self.session.replace_volume(kind, volume)

    def move_network(self, device: str) -> None:
        """Run the network on ``device`` (a copy is made there; the current one serves meanwhile)."""
        network = self.session.network
        if network is None or network.colorizer.device.type == device:
            return
        self.busy.emit(f"moving the model to {device}…")
        self.tasks.submit(lambda: network.on(device), lambda moved: self.session.set_network(moved, keep_output=True),
                          lambda msg: self.failed.emit(f"Could not use {device}", msg))
