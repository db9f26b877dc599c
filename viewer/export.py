"""Exports: the three panels as one PNG, and the whole MRI volume colorized (by `core.inference.volume`, no Qt).

Both write atomically (a temporary name renamed into place), so a cancelled or failed export
never leaves half a file. The volume export runs on a worker thread, slice batch by slice batch,
and checks a cancel flag between batches (a running torch forward cannot be interrupted).
"""
from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Callable

from PyQt6.QtCore import QObject, pyqtSignal
from PyQt6.QtWidgets import QProgressDialog, QWidget

from core.atomic import atomic_path
from core.errors import InputError
from core.inference import Colorizer
from core.inference.volume import colorize_volume as core_colorize_volume
from core.inference.volume import slicing_axis
from core.volume import Volume
from viewer.worker import BackgroundTasks


class Cancelled(Exception):
    """The user cancelled an export; nothing was written."""


class ExportProgress(QProgressDialog):
    """The progress dialog of a volume export, with the cancel flag the export thread checks.

    ``report`` may be called from the export thread: the value reaches the dialog through a
    queued signal, since widgets are touched on the UI thread only.
    """

    progressed = pyqtSignal(int)

    def __init__(self, parent=None):
        super().__init__("Colorizing the volume…", "Cancel", 0, 1000, parent)
        self.setWindowTitle("Export colorized volume")
        self.setMinimumDuration(0)
        self.setAutoClose(False)
        self.setAutoReset(False)
        self.cancelled = threading.Event()
        self.canceled.connect(self.cancelled.set)
        self.progressed.connect(self.setValue)

    def report(self, fraction: float) -> None:
        self.progressed.emit(int(fraction * 1000))


def save_png(widget, path: str | os.PathLike) -> Path:
    """Render ``widget`` (the panels) to a PNG at ``path``, atomically."""
    path = Path(path)
    if path.suffix.lower() != ".png":
        path = path.with_suffix(".png")
    image = widget.grab().toImage()
    with atomic_path(path) as tmp:
        if not image.save(str(tmp), "PNG"):
            raise InputError(path, "could not write the PNG (folder writable? disk full?)")
    return path


def colorize_volume(mri: Volume, colorizer: Colorizer, output: str,
                    progress: Callable[[float], None] | None = None,
                    cancel: threading.Event | None = None) -> Volume:
    """The MRI colorized axially exactly as ``mricolor colorize`` does it (`core.inference.volume`:
    its normalisation, the model's pixel size, the body crop), reporting progress as a fraction
    and stopping with `Cancelled` between batches once ``cancel`` is set."""
    total = mri.array.shape[slicing_axis(mri, "axial")]

    def report(done: int) -> None:
        if progress is not None:
            progress(done / total)
        if cancel is not None and cancel.is_set():
            raise Cancelled()
    if cancel is not None and cancel.is_set():
        raise Cancelled()
    return core_colorize_volume(mri, colorizer, axis="axial", output=output, progress=report)


def export_volume(mri: Volume, colorizer: Colorizer, output: str, path: str | os.PathLike,
                  progress: Callable[[float], None] | None = None,
                  cancel: threading.Event | None = None) -> Path:
    """Colorize the MRI and write it to ``path`` (format from the suffix, via `core.io.write_volume`)."""
    from core.io import write_volume

    volume = colorize_volume(mri, colorizer, output, progress, cancel)
    if cancel is not None and cancel.is_set():
        raise Cancelled()
    return write_volume(volume, path)


class VolumeExports(QObject):
    """Volume exports running on ``tasks``, each with its progress dialog over ``parent``.

    Emits ``message(text)`` when one is written or cancelled and ``failed(title, message)`` when
    one fails; `cancel_all` (on quit) stops the running ones between batches.
    """

    message = pyqtSignal(str)
    failed = pyqtSignal(str, str)

    def __init__(self, parent: QWidget, tasks: BackgroundTasks):
        super().__init__(parent)
        self._parent, self._tasks = parent, tasks
        self._running: list[threading.Event] = []  # cancel flags

    def start(self, mri: Volume, colorizer: Colorizer, output: str, path: str | os.PathLike) -> ExportProgress:
        """Colorize ``mri`` into ``path`` in the background; returns the (shown) progress dialog."""
        dialog = ExportProgress(self._parent)
        self._running.append(dialog.cancelled)

        def ended() -> None:
            self._running.remove(dialog.cancelled)
            dialog.close()

        def finished(written: Path) -> None:
            ended()
            self.message.emit(f"wrote {written}")

        def failed(message: str) -> None:
            ended()
            if dialog.cancelled.is_set():
                self.message.emit("export cancelled; nothing was written")
            else:
                self.failed.emit("Export failed", message)
        self._tasks.submit(lambda: export_volume(mri, colorizer, output, path, dialog.report, dialog.cancelled),
                           finished, failed)
        dialog.show()
        return dialog

    def cancel_all(self) -> None:
        for cancel in self._running:
            cancel.set()
