"""Starting the viewer: the QApplication, logging, the exception hook and ``--screenshot``.

PyQt6 aborts the whole process when an exception escapes a slot (exit 134), so an exception
hook is installed first: it logs the traceback and shows it in a message box, and the viewer
carries on. ``--screenshot`` waits for the first colorized plane (and its metrics), saves the
window and quits — the README's image and the visual checks come from it.
"""
from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import traceback
from pathlib import Path

from PyQt6.QtCore import QSettings, QTimer
from PyQt6.QtWidgets import QApplication

from viewer.main_window import MainWindow
from viewer.settings import APPLICATION, ORGANIZATION, ViewerSettings

log = logging.getLogger("mricolor.viewer")

_SCREENSHOT_SIZE = (1600, 900)
_METRICS_WAIT_MS = 30000


def configure_logging(stderr: bool = True) -> Path | None:
    """Log to ``viewer.log`` in the user's log folder (None if it cannot be created) and, unless
    ``stderr`` is False (``--screenshot``, whose console output is one line), to stderr."""
    import platformdirs

    handlers: list[logging.Handler] = [logging.StreamHandler()] if stderr else []
    log_file = None
    try:
        folder = Path(platformdirs.user_log_dir("mricolor"))
        folder.mkdir(parents=True, exist_ok=True)
        log_file = folder / "viewer.log"
        handlers.append(logging.FileHandler(log_file, encoding="utf-8"))
    except OSError:
        log_file = None
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s",
                        handlers=handlers)
    return log_file


def install_excepthook(window: MainWindow) -> None:
    """Route unexpected exceptions to the log and a message box instead of ending the process."""
    def hook(exc_type, exc, tb) -> None:
        if issubclass(exc_type, KeyboardInterrupt):
            QApplication.quit()
            return
        log.error("unexpected error:\n%s", "".join(traceback.format_exception(exc_type, exc, tb)))
        window.show_error(f"{exc_type.__name__}: {exc}\n\n(details in the log)", "Unexpected error")
    sys.excepthook = hook


def _screenshot_when_ready(app: QApplication, window: MainWindow, out: Path, timeout_s: float) -> None:
    """Save the window once the first colorized plane (and then its metrics) is on screen, then quit."""
    done = {"saved": False}

    def save(status: int) -> None:
        if done["saved"]:
            return
        done["saved"] = True
        from viewer.export import save_png

        written = save_png(window, out)
        print(f"screenshot: {written}" + ("" if status == 0 else " (incomplete: see the log)"))
        window.close()
        app.exit(status)

    def first_colorized(_rid: int, _result: object) -> None:
        pipeline.colorized.disconnect(first_colorized)
        size = window.state.size
        window.point_at(size / 2, size / 2)  # show the crosshair and the readout too
        study = window.session.study
        if study is not None and study.cryo is not None and pipeline.shown["metrics"] == 0:
            pipeline.metrics_ready.connect(lambda _r, _v: QTimer.singleShot(300, lambda: save(0)))
            QTimer.singleShot(_METRICS_WAIT_MS, lambda: save(0))
        else:
            QTimer.singleShot(300, lambda: save(0))

    def fail(message: str) -> None:
        """A file that cannot be shown: one line naming it and the problem, exit 2, no picture."""
        if done["saved"]:
            return
        done["saved"] = True
        print(f"mricolor view: error: {message.splitlines()[0]}", file=sys.stderr)
        window.close()
        app.exit(2)

    pipeline = window.pipeline
    pipeline.colorized.connect(first_colorized)
    window.error_shown.connect(fail)
    QTimer.singleShot(int(timeout_s * 1000), lambda: save(1))


def run(args: argparse.Namespace) -> int:
    """Open the viewer on the given files, or on the built-in phantom; returns the exit status."""
    configure_logging(stderr=not args.screenshot)
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setOrganizationName(ORGANIZATION)
    app.setApplicationName(APPLICATION)
    settings = None
    if args.screenshot:  # a fixed layout, not the user's remembered one
        ini = Path(tempfile.mkdtemp(prefix="mricolor-screenshot-")) / "viewer.ini"
        settings = ViewerSettings(QSettings(str(ini), QSettings.Format.IniFormat))
    window = MainWindow(settings=settings, size=args.size)
    app.aboutToQuit.connect(window.shutdown)
    if args.layout:
        window.layouts.set_layout(args.layout)
    install_excepthook(window)
    if args.screenshot or window.settings.value("geometry") is None:
        window.resize(*_SCREENSHOT_SIZE)
    if args.screenshot:
        _screenshot_when_ready(app, window, Path(args.screenshot), args.screenshot_timeout)
    window.show()
    loader = window.loader
    if args.mri:
        loader.open_file("mri", args.mri)
    else:
        loader.load_default(args.seed, args.phantom_size)
    for kind in ("cryo", "labels"):
        if getattr(args, kind):
            loader.open_file(kind, getattr(args, kind))
    loader.load_checkpoint(args.checkpoint, None if args.device == "auto" else args.device)
    return app.exec()
