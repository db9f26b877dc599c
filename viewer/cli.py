"""Open the desktop viewer: any plane of an MRI, colorized live, beside the cryosection and the metrics.

With no arguments it opens the built-in phantom (its MRI, cryosection and labels) with the
default checkpoint. Mouse and keys: F1 in the viewer.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("mri", nargs="?", help="MRI volume (NIfTI, MHA, NRRD, DICOM folder…); default: the phantom")
    parser.add_argument("--cryo", help="cryosection RGB volume shown beside the MRI")
    parser.add_argument("--labels", help="label volume drawn over the cryosection (table: <stem>.labels.csv)")
    parser.add_argument("--checkpoint", help="model checkpoint; default: the shipped one (trained on synthetic "
                                             "phantoms; an untrained lite model, with a notice, if it is missing)")
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda", "mps"),
                        help="where the model runs (auto: CUDA, then MPS, then CPU)")
    parser.add_argument("--seed", type=int, default=0, help="phantom subject (without an MRI argument)")
    parser.add_argument("--phantom-size", default="default", choices=("default", "small"),
                        help="phantom grid size (without an MRI argument)")
    parser.add_argument("--size", type=int, default=256, help="plane size in pixels (multiple of 4)")
    parser.add_argument("--layout", choices=("comparison", "three"),
                        help="MRI | colorized | cryosection of one plane, or three orthogonal views and the "
                             "current plane (default: the layout used last; L switches)")
    parser.add_argument("--screenshot", metavar="OUT.png",
                        help="save the window once the first colorized plane is shown, then exit")
    parser.add_argument("--screenshot-timeout", type=float, default=180.0, metavar="S",
                        help="give up on --screenshot after this many seconds (exit status 1)")


def _check_display(screenshot: bool) -> None:
    """Without a display Qt aborts the process with a misleading message about xcb libraries:
    render off screen for ``--screenshot``, and otherwise say what to do."""
    if not sys.platform.startswith("linux") or os.environ.get("QT_QPA_PLATFORM"):
        return
    if os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"):
        return
    if screenshot:
        os.environ["QT_QPA_PLATFORM"] = "offscreen"
        return
    from core.errors import InputError

    raise InputError("display", "no display to open the window on: run it in a desktop session, "
                                "under xvfb-run, or with QT_QPA_PLATFORM=offscreen")


def run(args: argparse.Namespace) -> int:
    from core.errors import InputError

    if args.size < 16 or args.size % 4:
        raise InputError("--size", f"must be a multiple of 4 and at least 16, got {args.size}")
    for option, path in (("MRI", args.mri), ("--cryo", args.cryo), ("--labels", args.labels),
                         ("--checkpoint", args.checkpoint)):
        if path is not None and not Path(path).exists():
            raise InputError(path, f"{option} file or folder not found")
    _check_display(bool(args.screenshot))
    # The model, slicer and metrics threads share the cores with the UI: OpenMP threads that
    # spin-wait between operations steal them (metrics took 5× longer under load). Set before
    # torch loads its OpenMP runtime; a user's own setting wins.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    from viewer.app import run as run_app

    return run_app(args)


def main(argv: list[str] | None = None) -> int:
    """``python -m viewer``: the same arguments as ``mricolor view``."""
    from core.cli import main as mricolor_main

    return mricolor_main(["view", *(sys.argv[1:] if argv is None else argv)])
