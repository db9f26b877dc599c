"""The menu bar and its keyboard shortcuts, the recent-files menu and the file dialogs.

Shortcuts follow 3D Slicer where it has one (arrows and Page keys scroll, R resets the view,
G toggles the label layer); they are window-wide, so they work whichever panel has the focus.
The menus are built from the commands they are given (`MenuCommands`), not from a window.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from PyQt6.QtGui import QAction, QKeySequence
from PyQt6.QtWidgets import QFileDialog, QMenu, QMenuBar, QMessageBox, QWidget

from core.inference.colorizer import SHIPPED_MODEL_NOTE
from viewer.state import ViewerState
from viewer.study import KINDS
_FILTERS = {
    "volume": "Volumes (*.nii *.nii.gz *.mha *.mhd *.nrrd *.nhdr *.dcm *.npy *.npz *.raw);;All files (*)",
    "checkpoint": "Checkpoints (*.pt *.pth *.ckpt *.safetensors);;All files (*)",
}
HELP = ("Wheel, ↑/↓, Page Up/Down: move the plane along its normal\n"
        "Ctrl+wheel or right-drag: zoom   ·   middle- or Shift+drag: pan   ·   R: reset zoom\n"
        "Left-drag on the MRI: window (horizontal) and level (vertical)\n"
        "1 / 2 / 3: axial / coronal / sagittal   ·   G: label overlay\n"
        "Click in the navigator: move the plane through that point\n"
        "L: comparison / three views   ·   C: colour in all the views   ·   click a view's title: MRI or colour in that view\n"
        "Click in a view of the three: move the crosshair there\n"
        "Drop files on the window to open them")


#: Help ▸ About: what the product is and, above all, what its shipped model is.
ABOUT = ("mricolor colorizes MRI with the anatomical colours of cryosection photographs, keeping the MRI's "
         "structure (Mathur et al., ISBI 2025, reimplemented).\n\n"
         f"About the colours: {SHIPPED_MODEL_NOTE[0].upper()}{SHIPPED_MODEL_NOTE[1:]}. They are a teaching "
         "and research aid, not a diagnosis.")


@dataclass(frozen=True)
class MenuCommands:
    """What the menus can do: ``open_file(kind, path)``, the phantom, the two exports (given the
    chosen path), reporting an error, resetting the zoom and quitting."""

    open_file: Callable[[str, str], object]
    open_phantom: Callable[[], object]
    export_png: Callable[[str], object]
    export_volume: Callable[[str], object]
    show_error: Callable[[str, str], object]
    reset_zoom: Callable[[], object]
    quit: Callable[[], object]


def kind_name(kind: str) -> str:
    return "checkpoint" if kind == "checkpoint" else KINDS.get(kind, kind)


def add_action(menu: QMenu, text: str, slot: Callable[[], object],
               shortcut: str | QKeySequence.StandardKey | None = None) -> QAction:
    """A menu entry calling ``slot()``, owned by ``menu``."""
    action = QAction(text, menu)
    if shortcut is not None:
        action.setShortcut(QKeySequence(shortcut))
    action.triggered.connect(lambda _checked=False: slot())
    menu.addAction(action)
    return action


def open_dialog(parent: QWidget, commands: MenuCommands, kind: str) -> None:
    """Ask for a file of ``kind`` and open it."""
    filters = _FILTERS["checkpoint" if kind == "checkpoint" else "volume"]
    path, _ = QFileDialog.getOpenFileName(parent, f"Open {kind_name(kind)}", "", filters)
    if path:
        commands.open_file(kind, path)


def build_menus(bar: QMenuBar, parent: QWidget, commands: MenuCommands, state: ViewerState,
                panel_toggles: list[QAction], layout_actions: tuple[QAction, ...] | list[QAction] = ()) -> QMenu:
    """File, View and Help menus on ``bar`` (dialogs open over ``parent``); ``panel_toggles`` show
    and hide the docks, ``layout_actions`` switch the central layout. Returns the recent-files menu
    (filled by `fill_recent`)."""
    file_menu = bar.addMenu("&File")
    for kind in (*KINDS, "checkpoint"):
        add_action(file_menu, f"Open {kind_name(kind)}…", lambda k=kind: open_dialog(parent, commands, k),
                   QKeySequence.StandardKey.Open if kind == "mri" else None)
    recent = file_menu.addMenu("Open recent")
    add_action(file_menu, "Open built-in phantom", commands.open_phantom)
    file_menu.addSeparator()
    add_action(file_menu, "Export panels as PNG…", lambda: _export_png(parent, commands), "Ctrl+E")
    add_action(file_menu, "Export colorized volume…", lambda: _export_volume(parent, commands), "Ctrl+Shift+E")
    file_menu.addSeparator()
    add_action(file_menu, "Quit", commands.quit, QKeySequence.StandardKey.Quit)

    view_menu = bar.addMenu("&View")
    for i, name in enumerate(("axial", "coronal", "sagittal")):
        add_action(view_menu, name.capitalize(), lambda n=name: state.set_orientation(n), str(i + 1))
    view_menu.addSeparator()
    for text, steps, keys in (("Next plane", 1, ("Up", "Right")), ("Previous plane", -1, ("Down", "Left")),
                              ("Forward 10 planes", 10, ("PgUp",)), ("Back 10 planes", -10, ("PgDown",))):
        action = add_action(view_menu, text, lambda s=steps: state.scroll(s))
        action.setShortcuts([QKeySequence(k) for k in keys])
    add_action(view_menu, "Reset zoom", commands.reset_zoom, "R")
    add_action(view_menu, "Toggle label overlay", lambda: state.set_overlay(visible=not state.overlay_visible), "G")
    view_menu.addSeparator()
    for action in layout_actions:
        view_menu.addAction(action)
    view_menu.addSeparator()
    for toggle in panel_toggles:
        view_menu.addAction(toggle)

    help_menu = bar.addMenu("&Help")
    add_action(help_menu, "Mouse and keys", lambda: QMessageBox.information(parent, "Mouse and keys", HELP), "F1")
    add_action(help_menu, "About mricolor", lambda: QMessageBox.about(parent, "About mricolor", ABOUT))
    return recent


def fill_recent(menu: QMenu, recent: list[tuple[str, str]], open_file: Callable[[str, str], object]) -> None:
    """List the (kind, path) pairs in ``menu``, newest first; choosing one calls ``open_file(kind, path)``."""
    menu.clear()
    for kind, path in recent:
        add_action(menu, f"{Path(path).name}  ({kind_name(kind)})  {path}", lambda k=kind, p=path: open_file(k, p))
    menu.setEnabled(bool(recent))


def _export_png(parent: QWidget, commands: MenuCommands) -> None:
    path, _ = QFileDialog.getSaveFileName(parent, "Export panels", "mricolor-panels.png", "PNG (*.png)")
    if path:
        try:
            commands.export_png(path)
        except (OSError, ValueError) as exc:
            commands.show_error(str(exc), "Export failed")


def _export_volume(parent: QWidget, commands: MenuCommands) -> None:
    path, _ = QFileDialog.getSaveFileName(parent, "Export colorized volume", "colorized.nii.gz",
                                          "NIfTI (*.nii.gz *.nii);;MetaImage (*.mha);;NRRD (*.nrrd)")
    if path:
        commands.export_volume(path)

