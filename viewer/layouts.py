"""The central area's layouts: the comparison (MRI | colorized | cryosection of one plane) and
three linked orthogonal views with the current plane.

Both layouts show the one `ViewerState`: the comparison its plane, the three-view layout the
axial, coronal and sagittal planes through its crosshair plus that plane (which the crosshair
always lies on). A click in an orthogonal view moves the crosshair there, so the other two
views and the current plane pass through the clicked point; switching layouts changes no
plane. The choice is remembered in the settings.
"""
from __future__ import annotations

import numpy as np
from PyQt6.QtCore import QObject, pyqtSignal
from PyQt6.QtGui import QAction, QKeySequence
from PyQt6.QtWidgets import QStackedWidget

from core.planes import ORIENTATIONS, Plane
from viewer.detail import ZoomDetail, run_detail
from viewer import jobs
from viewer.jobs import Colorized
from viewer.ortho import VIEWS, OrthoPanels, OrthoPipeline
from viewer.panels import ImagePanels
from viewer.pipeline import WORKER_NICE, PlanePipeline
from viewer.session import Session
from viewer.settings import ViewerSettings
from viewer.worker import KeyedLatestWinsWorker

#: Layout name → what the View menu calls it.
LAYOUTS = {"comparison": "MRI | colorized | cryosection", "three": "axial, coronal, sagittal and current plane"}


class Layouts(QObject):
    """The stack of layouts in the central area, the three-view pipeline and their menu actions.

    ``actions``: switch layout (L) and colour in the three views (C: all four views at once), for
    the View menu. A click on a view's title switches that view alone between MRI and colour.
    """

    readout = pyqtSignal(str)  # position, MRI value and tissue under the mouse in a view ("" off the images)

    def __init__(self, panels: ImagePanels, session: Session, pipeline: PlanePipeline,
                 settings: ViewerSettings, parent: QObject | None = None):
        super().__init__(parent)
        self.session, self.settings, self.panels = session, settings, panels
        self.state = session.state
        self.ortho = OrthoPanels()
        self.ortho_pipeline = OrthoPipeline(session, pipeline.model_worker, pipeline.colour_volume, self,
                                            current_cut=lambda: (pipeline.plane, pipeline.mri_plane))
        self.stack = QStackedWidget()
        self.stack.addWidget(panels)
        self.stack.addWidget(self.ortho)
        self.current = "comparison"
        self._oblique: tuple[np.ndarray, Plane] | None = None  # the current plane's MRI cut and plane
        self._oblique_rgb: np.ndarray | None = None  # and its newest colorization
        self._cuts: dict[str, tuple[np.ndarray, Plane]] = {}  # per orthogonal view: its MRI cut and plane
        # Zoomed in, each view's visible region is re-cut at the screen's pixel size (viewer.detail),
        # on one worker below the network's for the planes themselves.
        self.detail_worker = KeyedLatestWinsWorker(run_detail, "mricolor-detail", nice=WORKER_NICE["model"] + 2)
        views = panels.panels
        self.details = {"comparison": ZoomDetail(session, views["mri"].view, {k: p.view for k, p in views.items()},
                                                 self.detail_worker, "comparison", self,
                                                 overlays={k: p.overlay for k, p in views.items() if p.overlay})}
        for name, panel in self.ortho.panels.items():
            self.details[name] = ZoomDetail(session, panel.view, {"mri": panel.view, "colorized": panel.view},
                                            self.detail_worker, name, self)
        self._connect(pipeline)
        switch = QAction("Switch layout (comparison / three views)", self)
        switch.setShortcut(QKeySequence("L"))
        switch.triggered.connect(lambda: self.set_layout("three" if self.current == "comparison" else "comparison"))
        colour = QAction("Colour in the three views (all; click a view's title for one)", self, checkable=True)
        colour.setShortcut(QKeySequence("C"))
        self.colour_action = colour
        whole = QAction("Colour from the colorized volume, once made (three views start it)", self, checkable=True)
        whole.setToolTip("Showing colour, the three-view layout colorizes the whole MRI in the background, as File ▸ "
                         "Export does; then every plane's colour is cut from it at once instead of running the "
                         "network. Off: every plane is colorized live.")
        volume = pipeline.colour_volume
        volume.set_enabled(str(settings.value("colour_volume", "true")).lower() == "true")
        whole.setChecked(volume.enabled)
        whole.toggled.connect(lambda on: (volume.set_enabled(on), settings.set_value("colour_volume", on),
                                          self.ortho_pipeline.update()))
        self.actions = [switch, colour, whole]
        self.view_colour = {view: False for view in VIEWS}
        saved_views = settings.value("three_view_colour_views")
        if saved_views is None:  # settings from before views had their own: the one switch for all
            coloured = VIEWS if str(settings.value("three_view_colour", "false")).lower() == "true" else ()
        else:
            coloured = [view for view in str(saved_views).split(",") if view in VIEWS]
        self.set_view_colour(VIEWS, False)
        self.set_view_colour(coloured, True)
        colour.triggered.connect(self.set_colour)
        self.ortho.title_clicked.connect(lambda view: self.set_view_colour((view,), not self.view_colour[view]))
        saved = settings.value("layout")
        self.set_layout(saved if saved in LAYOUTS else "comparison")

    def _connect(self, pipeline: PlanePipeline) -> None:
        ortho, work, state = self.ortho, self.ortho_pipeline, self.state
        work.cut.connect(self._on_cut)
        work.colorized.connect(lambda name, result: ortho.set_image(name, result.rgb, None))
        pipeline.mri_cut.connect(lambda _rid, mri, plane: self._on_oblique_cut(mri, plane))
        pipeline.colorized.connect(lambda _rid, result: self._on_oblique_colorized(result))
        state.crosshair_changed.connect(lambda _point: self._draw_crosshairs())
        state.window_changed.connect(lambda *_: self._on_window_changed())
        ortho.clicked.connect(self._on_click)
        ortho.hovered.connect(self._on_hover)
        ortho.scrolled.connect(self._on_scroll)
        pipeline.mri_cut.connect(lambda _rid, _mri, plane: self._detail_plane("comparison", plane))
        session = self.session
        session.study_opened.connect(lambda _study: [d.set_plane(None) for d in self.details.values()])
        session.network_changed.connect(lambda _network: [d.redo(("colorized",)) for d in self.details.values()])
        state.output_changed.connect(lambda _output: [d.redo(("colorized",)) for d in self.details.values()])
        session.volumes_changed.connect(lambda _study: [d.redo() for d in self.details.values()])
        state.overlay_changed.connect(self.details["comparison"].overlay_changed)

    # --- choices ---------------------------------------------------------------------------------
    def set_layout(self, name: str) -> None:
        """Show layout ``name`` ('comparison' or 'three'); the plane and crosshair stay as they are."""
        if name not in LAYOUTS:
            raise ValueError(f"layout must be one of {sorted(LAYOUTS)}, got {name!r}")
        self.current = name
        self.stack.setCurrentIndex(list(LAYOUTS).index(name))
        self.ortho_pipeline.set_enabled(name == "three")
        self.settings.set_value("layout", name)
        self._detail_plane("comparison", self.state.plane() if self.session.study is not None else None)
        for view in VIEWS:
            self._detail_plane(view, self._planes().get(view))

    def set_colour(self, colour: bool) -> None:
        """All four views show the colorization (True) or the MRI (View ▸ Colour, C)."""
        self.set_view_colour(VIEWS, colour)

    def set_view_colour(self, views, colour: bool) -> None:
        """``views`` (names of `VIEWS`) show the colorization (True) or the MRI; the others keep theirs."""
        for view in views:
            self.view_colour[view] = colour
            title = "current plane" if view == "oblique" else view
            self.ortho.set_title(view, f"{title} — {'colorized' if colour else 'MRI'}")
            self.details[view].set_kinds({"colorized"} if colour else {"mri"})
        self.ortho_pipeline.set_colour(colour, [view for view in views if view in ORIENTATIONS])
        if "oblique" in views:
            if colour and self._oblique_rgb is not None:
                self.ortho.set_image("oblique", self._oblique_rgb, None)
            elif self._oblique is not None:
                self.ortho.set_image("oblique", self._oblique[0], self.state.levels)
        every = all(self.view_colour.values())
        self.colour_action.setChecked(every)
        self.settings.set_value("three_view_colour", "true" if every else "false")
        self.settings.set_value("three_view_colour_views", ",".join(v for v in VIEWS if self.view_colour[v]))

    # --- what the views show ---------------------------------------------------------------------
    def _on_cut(self, name: str, mri: np.ndarray | None, plane: Plane, colour_follows: bool) -> None:
        self._cuts[name] = (mri, plane)  # no MRI cut (a colour view): cut on demand for the readout
        if mri is not None and (not colour_follows or name not in self.ortho.shapes):  # else the colour replaces it
            self.ortho.set_image(name, mri, self.state.levels)
        self.ortho.set_plane(name, plane, self.state.crosshair)
        self._detail_plane(name, plane)

    def _on_oblique_cut(self, mri: np.ndarray, plane: Plane) -> None:
        self._oblique = (mri, plane)
        if not self.view_colour["oblique"] or "oblique" not in self.ortho.shapes:
            self.ortho.set_image("oblique", mri, self.state.levels)
        self.ortho.set_plane("oblique", plane, self.state.crosshair)
        self._detail_plane("oblique", plane)

    def _detail_plane(self, view: str, plane: Plane | None) -> None:
        """The plane under ``view`` for its zoom detail (none while its layout is hidden)."""
        shown = self.current == ("comparison" if view == "comparison" else "three")
        self.details[view].set_plane(plane if shown else None)

    def _on_oblique_colorized(self, result: Colorized) -> None:
        self._oblique_rgb = result.rgb
        if self.view_colour["oblique"]:
            self.ortho.set_image("oblique", result.rgb, None)

    def _draw_crosshairs(self) -> None:
        for name, plane in self._planes().items():
            self.ortho.set_crosshair(name, plane, self.state.crosshair)

    def _planes(self) -> dict[str, Plane]:
        planes = dict(self.ortho_pipeline.planes)
        if self._oblique is not None:
            planes["oblique"] = self._oblique[1]
        return planes

    def _on_window_changed(self) -> None:
        for name in self._planes():
            if not self.view_colour[name]:
                self.ortho.set_levels(name, self.state.levels)

    # --- mouse -----------------------------------------------------------------------------------
    def _on_hover(self, name: str, row: float, col: float) -> None:
        cuts = {**self._cuts, **({"oblique": self._oblique} if self._oblique is not None else {})}
        if name not in cuts or self.session.study is None:
            self.readout.emit("")
            return
        mri, plane = cuts[name]
        if mri is None:
            mri = jobs.slice_mri(self.session.study, plane)
            self._cuts[name] = (mri, plane)
        self.readout.emit(f"{name}: {self.session.readout(mri, row, col, plane)}")

    def _on_click(self, name: str, row: float, col: float) -> None:
        """The crosshair (and with it the other views and the current plane) to the clicked point."""
        plane = self._planes().get(name)
        if plane is not None:
            self.state.set_crosshair(plane.pixel_to_physical(row, col))

    def _on_scroll(self, name: str, notches: float) -> None:
        """The wheel moves that view's plane: the crosshair along its normal (the current plane's
        view scrolls the current plane, as in the comparison layout)."""
        plane = self._planes().get(name)
        if plane is None:
            return
        if name == "oblique":
            self.state.scroll(notches)
            return
        step = self.state.frame.step_mm(plane.normal)
        self.state.set_crosshair(self.state.crosshair + notches * step * plane.normal)

    def reset_zoom(self) -> None:
        """Frame the planes again in both layouts (R; a new study)."""
        self.panels.reset_zoom()
        self.ortho.reset_zoom()

    @property
    def idle(self) -> bool:
        """True when the three views show their newest planes (always, in the comparison layout)."""
        return ((self.current != "three" or self.ortho_pipeline.idle)
                and all(detail.idle for detail in self.details.values()))

    def stop(self) -> None:
        self.ortho_pipeline.stop()
        for detail in self.details.values():
            detail.stop()
        self.detail_worker.stop()
