"""Exports: the three panels as one PNG, and the whole MRI volume colorized (`colorize_volume` has no Qt).

Both write atomically (a temporary name renamed into place), so a cancelled or failed export
never leaves half a file. The volume export runs on a worker thread, slice batch by slice batch,
and checks a cancel flag between batches (a running torch forward cannot be interrupted).
"""
from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Callable

import numpy as np
from PyQt6.QtCore import pyqtSignal
from PyQt6.QtWidgets import QProgressDialog

from core.atomic import atomic_path
from core.errors import InputError
from core.volume import Volume
from viewer.jobs import to_uint8, to_unit
from viewer.model import colorize_planes

_BATCH = 8


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


def colorize_volume(mri: Volume, colorizer, output: str, value_range: tuple[float, float],
                    progress: Callable[[float], None] | None = None,
                    cancel: threading.Event | None = None) -> Volume:
    """Colorize every axial slice of the MRI grid: an RGB uint8 volume with the MRI's physical frame."""
    depth = mri.array.shape[0]
    out = np.empty((*mri.array.shape[:3], 3), dtype=np.uint8)
    for start in range(0, depth, _BATCH):
        if cancel is not None and cancel.is_set():
            raise Cancelled()
        stop = min(start + _BATCH, depth)
        batch = to_unit(mri.array[start:stop].astype(np.float32), value_range)
        out[start:stop] = to_uint8(colorize_planes(colorizer, batch, output))
        if progress is not None:
            progress(stop / depth)
    return mri.with_array(out, label_table=None)


def export_volume(mri: Volume, colorizer, output: str, value_range: tuple[float, float],
                  path: str | os.PathLike, progress: Callable[[float], None] | None = None,
                  cancel: threading.Event | None = None) -> Path:
    """Colorize the MRI and write it to ``path`` (format from the suffix, via `core.io.write_volume`)."""
    from core.io import write_volume

    volume = colorize_volume(mri, colorizer, output, value_range, progress, cancel)
    if cancel is not None and cancel.is_set():
        raise Cancelled()
    return write_volume(volume, path)
