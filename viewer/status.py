"""The status bar: what the workers are doing, the device, milliseconds per colorization, frames per second."""
from __future__ import annotations

import time
from collections import deque

from PyQt6.QtCore import Qt, QTimer
from PyQt6.QtWidgets import QLabel, QStatusBar


class StatusBar(QStatusBar):
    """Permanent fields on the right (busy state, device, ms/plane, fps); messages on the left.

    The frame rate counts colorized planes shown in the last second, so it reads what the user
    sees while scrolling and falls to "–" when the plane rests.
    """

    def __init__(self, parent=None):
        super().__init__(parent)
        self.busy, self.device, self.ms, self.fps = (QLabel() for _ in range(4))
        for label, sample in ((self.busy, "colorization failed"), (self.device, "device: cuda:0"),
                              (self.ms, "0000 ms/plane (½ res)"), (self.fps, "00 fps")):
            label.setMinimumWidth(label.fontMetrics().horizontalAdvance(sample) + 8)
            self.addPermanentWidget(label)
        self.busy.setText("loading…")
        self.fps.setText("– fps")
        self._shown: deque[float] = deque(maxlen=240)
        self._timer = QTimer(self, interval=500)
        self._timer.timeout.connect(self._update_fps)
        self._timer.start()

    def showMessage(self, text: str, timeout: int = 0) -> None:  # noqa: N802 (Qt's name)
        """A message elided in the middle to the room left of the permanent fields (a long path
        or error no longer runs under them); the whole text is the tooltip."""
        fields = sum(label.width() for label in (self.busy, self.device, self.ms, self.fps))
        room = max(120, self.width() - fields - 40)
        self.setToolTip(text)
        super().showMessage(self.fontMetrics().elidedText(text, Qt.TextElideMode.ElideMiddle, room), timeout)

    def set_busy(self, text: str) -> None:
        self.busy.setText(text)

    def set_device(self, device: str) -> None:
        self.device.setText(f"device: {device}")

    def frame_shown(self, ms: float, preview: bool = False, from_volume: bool = False) -> None:
        """A colorized plane reached the screen; the model took ``ms`` for it (at half resolution
        for a ``preview``), or the cut from the colorized volume did (``from_volume``)."""
        self._shown.append(time.perf_counter())
        self.ms.setText(f"{ms:.0f} ms/plane" + (" (½ res)" if preview else " (volume)" if from_volume else ""))
        self.ms.setToolTip("cut from the whole volume colorized in the background (no network)" if from_volume
                           else "the network's time for this plane")

    def _update_fps(self) -> None:
        now = time.perf_counter()
        recent = sum(1 for t in self._shown if now - t <= 1.0)
        self.fps.setText(f"{recent} fps" if recent else "– fps")

    def stop(self) -> None:
        self._timer.stop()
