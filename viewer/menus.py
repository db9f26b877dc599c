"""The menu bar and its keyboard shortcuts, the recent-files menu and the file dialogs.

Shortcuts follow 3D Slicer where it has one (arrows and Page keys scroll, R resets the view,
G toggles the label layer); they are window-wide, so they work whichever panel has the focus.
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Callable

from PyQt6.QtGui import QAction, QKeySequence
from PyQt6.QtWidgets import QFileDialog, QMenu, QMessageBox

from viewer.data import KINDS

if TYPE_CHECKING:  # pragma: no cover
    from viewer.main_window import MainWindow

CHECKPOINT_SUFFIXES = (".pt", ".pth", ".ckpt", ".safetensors")
_FILTERS = {
    "volume": "Volumes (*.nii *.nii.gz *.mha *.mhd *.nrrd *.nhdr *.dcm *.npy *.npz *.raw);;All files (*)",
    "checkpoint": "Checkpoints (*.pt *.pth *.ckpt *.safetensors);;All files (*)",
}
HELP = ("Wheel, ↑/↓, Page Up/Down: move the plane along its normal\n"
        "Ctrl+wheel or right-drag: zoom   ·   middle- or Shift+drag: pan   ·   R: reset zoom\n"
        "Left-drag on the MRI: window (horizontal) and level (vertical)\n"
        "1 / 2 / 3: axial / coronal / sagittal   ·   G: label overlay\n"
        "Click in the navigator: move the plane through that point\n"
        "Drop files on the window to open them")


def kind_name(kind: str) -> str:
    return "checkpoint" if kind == "checkpoint" else KINDS.get(kind, kind)


def add_action(window: "MainWindow", menu: QMenu, text: str, slot: Callable[[], object],
               shortcut: str | QKeySequence.StandardKey | None = None) -> QAction:
    action = QAction(text, window)
    if shortcut is not None:
        action.setShortcut(QKeySequence(shortcut))
    action.triggered.connect(lambda _checked=False: slot())
    menu.addAction(action)
    return action


def open_dialog(window: "MainWindow", kind: str) -> None:
    """Ask for a file of ``kind`` and open it."""
    filters = _FILTERS["checkpoint" if kind == "checkpoint" else "volume"]
    path, _ = QFileDialog.getOpenFileName(window, f"Open {kind_name(kind)}", "", filters)
    if path:
        window.open_file(kind, path)


def build_menus(window: "MainWindow") -> QMenu:
    """File, View and Help menus on ``window``; returns the recent-files menu (filled by `fill_recent`)."""
    bar = window.menuBar()
    file_menu = bar.addMenu("&File")
    for kind in (*KINDS, "checkpoint"):
        add_action(window, file_menu, f"Open {kind_name(kind)}…", lambda k=kind: open_dialog(window, k),
                   QKeySequence.StandardKey.Open if kind == "mri" else None)
    recent = file_menu.addMenu("Open recent")
    add_action(window, file_menu, "Open built-in phantom", window.load_default)
    file_menu.addSeparator()
    add_action(window, file_menu, "Export panels as PNG…", lambda: _export_png(window), "Ctrl+E")
    add_action(window, file_menu, "Export colorized volume…", lambda: _export_volume(window), "Ctrl+Shift+E")
    file_menu.addSeparator()
    add_action(window, file_menu, "Quit", window.close, QKeySequence.StandardKey.Quit)

    state = window.state
    view_menu = bar.addMenu("&View")
    for i, name in enumerate(("axial", "coronal", "sagittal")):
        add_action(window, view_menu, name.capitalize(), lambda n=name: state.set_orientation(n), str(i + 1))
    view_menu.addSeparator()
    for text, steps, keys in (("Next plane", 1, ("Up", "Right")), ("Previous plane", -1, ("Down", "Left")),
                              ("Forward 10 planes", 10, ("PgUp",)), ("Back 10 planes", -10, ("PgDown",))):
        action = add_action(window, view_menu, text, lambda s=steps: state.scroll(s))
        action.setShortcuts([QKeySequence(k) for k in keys])
    add_action(window, view_menu, "Reset zoom", window.panels.reset_zoom, "R")
    add_action(window, view_menu, "Toggle label overlay", lambda: state.set_overlay(visible=not state.overlay_visible),
               "G")
    view_menu.addSeparator()
    for dock in window.docks.values():
        view_menu.addAction(dock.toggleViewAction())

    help_menu = bar.addMenu("&Help")
    add_action(window, help_menu, "Mouse and keys", lambda: QMessageBox.information(window, "Mouse and keys", HELP),
               "F1")
    return recent


def fill_recent(window: "MainWindow", menu: QMenu, recent: list[tuple[str, str]]) -> None:
    menu.clear()
    for kind, path in recent:
        add_action(window, menu, f"{Path(path).name}  ({kind_name(kind)})  {path}",
                   lambda k=kind, p=path: window.open_file(k, p))
    menu.setEnabled(bool(recent))


def _export_png(window: "MainWindow") -> None:
    path, _ = QFileDialog.getSaveFileName(window, "Export panels", "mricolor-panels.png", "PNG (*.png)")
    if path:
        try:
            window.export_png(path)
        except (OSError, ValueError) as exc:
            window.show_error(str(exc), "Export failed")


def _export_volume(window: "MainWindow") -> None:
    path, _ = QFileDialog.getSaveFileName(window, "Export colorized volume", "colorized.nii.gz",
                                          "NIfTI (*.nii.gz *.nii);;MetaImage (*.mha);;NRRD (*.nrrd)")
    if path:
        window.export_volume(path)
