"""What the viewer has open, as plain Python objects (no Qt): the study, its framing, the network
and the viewer state.

Opening a study replaces everything tied to the one before it at once, and announces it, so
that every observer (the plane pipeline, the panels, the navigator, the metrics) drops what
belonged to the old study in one place instead of each remembering to. Tests drive a session
without a window.
"""
from __future__ import annotations

import numpy as np

from core.planes import Plane
from core.volume import Volume
from viewer import jobs
from viewer.framing import Framing
from viewer.network import LoadedNetwork
from viewer.state import Signal, ViewerState
from viewer.study import Study, label_at


class Session:
    """The open study, its framing and the network, with the `ViewerState` that shows them.

    Events (`Signal`, callbacks run in the caller's thread):

    - ``study_opened(study)``: a new MRI; the old one's planes, metrics, cursor and zoom are void.
      The state's window/level is set before and its frame after it (``plane_changed`` follows);
    - ``volumes_changed(study)``: the cryosection or labels of the open study were replaced;
    - ``network_changed(network)``: another network (or the same on another device); the output
      it shows is set afterwards, through the state's ``output_changed`` where it differs.
    """

    def __init__(self, size: int = 256):
        self.state = ViewerState(size=size)
        self.study: Study | None = None
        self.study_key = ""
        self.framing: Framing | None = None
        self.network: LoadedNetwork | None = None
        self.study_opened = Signal()
        self.volumes_changed = Signal()
        self.network_changed = Signal()

    @property
    def ready(self) -> bool:
        """True once there is both a study to cut planes from and a network to colorize them."""
        return self.study is not None and self.network is not None

    @property
    def value_range(self) -> tuple[float, float]:
        """The MRI intensities mapped to the network's [0, 1] input."""
        return (0.0, 1.0) if self.framing is None else self.framing.value_range

    def open_study(self, study: Study, framing: Framing, key: str | None = None,
                   window_level: tuple[float, float] | None = None) -> None:
        """Show ``study`` (``key``, by default its name, is what its window/level is remembered by)
        at ``window_level``, by default its framing's first preset, recentred on its body."""
        self.study, self.study_key, self.framing = study, key or study.name, framing
        if window_level is None or not plausible_window(window_level, framing.value_range):
            window_level = next(iter(framing.presets.values()))
        self.state.set_window(*window_level)
        self.study_opened.emit(study)
        self.state.set_frame(framing.frame)

    def replace_volume(self, kind: str, volume) -> None:
        """Replace the open study's cryosection or labels (``kind`` 'cryo' or 'labels')."""
        if self.study is None:
            raise ValueError("there is no MRI to add a cryosection or labels to")
        self.study = self.study.with_volume(kind, volume)
        self.volumes_changed.emit(self.study)

    def set_network(self, network: LoadedNetwork, keep_output: bool = False) -> None:
        """Colorize with ``network``; it shows the output its checkpoint declares unless ``keep_output``
        (and the current output is one it offers)."""
        offered = network.colorizer.outputs
        state = self.state
        output = state.output if keep_output and state.output in offered else network.colorizer.serve
        self.network = network
        self.network_changed.emit(network)
        state.set_output(output)

    def colorize_request(self, plane: Plane, mri_plane: np.ndarray | None = None,
                         preview: bool = False, cut_later: bool = False,
                         colour: Volume | None = None) -> jobs.ColorizeRequest:
        """What the network gets for ``plane`` (its MRI cut is made here unless given, or, with
        ``cut_later``, by the worker); with ``colour`` (the colorized volume) the colour is cut
        from it instead, at full resolution (no preview)."""
        if mri_plane is None and not cut_later:
            mri_plane = jobs.slice_mri(self.study, plane)
        body_level = None if self.framing is None else self.framing.body_level
        mri01 = None if mri_plane is None else jobs.to_unit(mri_plane, self.value_range)
        return jobs.ColorizeRequest(mri01, self.network.colorizer, self.state.output, self.study.mri, plane,
                                    preview and colour is None, body_level, self.value_range, colour)

    def readout(self, mri_plane: np.ndarray, row: float, col: float, plane: Plane | None = None) -> str:
        """Position (mm, LPS), MRI value and tissue name at pixel (row, col) of ``plane`` (by default
        the current plane), whose MRI cut is ``mri_plane``."""
        point = (plane or self.state.plane()).pixel_to_physical(row, col)
        r, c = (int(np.clip(round(v), 0, n - 1)) for v, n in zip((row, col), mri_plane.shape))
        parts = [f"({point[0]:.1f}, {point[1]:.1f}, {point[2]:.1f}) mm LPS", f"MRI {mri_plane[r, c]:.4g}"]
        labels = self.study.labels
        if labels is not None:
            label_id = label_at(labels, point)
            parts.append("outside the labels" if label_id is None
                         else labels.label_table.name(label_id).replace("_", " "))
        return "  ·  ".join(parts)


def plausible_window(window_level: tuple[float, float], value_range: tuple[float, float]) -> bool:
    """Whether a remembered window/level still shows this MRI: finite, a window between 1 % and
    10× its intensity range, a level within a range's width of it (else a bad manual setting
    would come back at every start and show a black or white panel)."""
    window, level = window_level
    lo, hi = value_range
    span = max(hi - lo, 1e-12)
    return bool(np.isfinite(window) and np.isfinite(level) and 0.01 * span <= window <= 10 * span
                and lo - span <= level <= hi + span)
