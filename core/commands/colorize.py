"""Colorize a whole MRI volume slice by slice and write an RGB volume in the MRI's frame.

The MRI is normalised robustly (0 → 0, the 99.5th percentile inside the body → 1), each slice
is resampled in-plane to the pixel size the model was trained at, colorized, resampled back and
written as uint8 RGB on the MRI's own grid (same spacing, origin and direction). The output
format follows OUT's extension (.nii, .nii.gz, .mha, .mhd, .nrrd). Without --checkpoint the
shipped default model is used.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from core.model.outputs import OUTPUTS

AXIS_CHOICES = ("axial", "coronal", "sagittal")
OUT_SUFFIXES = (".nii", ".nii.gz", ".mha", ".mhd", ".nrrd")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("mri", metavar="MRI", help="MRI volume (NIfTI, MHA, NRRD, DICOM folder…)")
    parser.add_argument("--out", required=True, help="RGB volume to write (.nii.gz, .nii, .mha, .mhd, .nrrd)")
    parser.add_argument("--checkpoint", metavar="CK", help="model checkpoint file or folder (default: the shipped model)")
    parser.add_argument("--untrained", nargs="?", const="lite", metavar="PRESET",
                        help="use randomly initialised weights of PRESET (default lite): for testing only")
    parser.add_argument("--axis", default="axial", choices=AXIS_CHOICES, help="slicing orientation (default axial)")
    parser.add_argument("--output", default=None, metavar="NAME",
                        help="which output to write: " + ", ".join(f"{k} ({o.description})" for k, o in OUTPUTS.items())
                             + " (default: the one the checkpoint serves)")
    parser.add_argument("--device", default=None, help="cpu, cuda, cuda:N, mps (default: the best available)")
    parser.add_argument("--batch-size", type=int, default=8, help="slices per batch (default 8)")
    parser.add_argument("--pixel-mm", type=float, default=None,
                        help="in-plane pixel size the model expects (default: from the checkpoint, else 2 mm)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def _out_suffix(path: Path) -> str:
    name = path.name.lower()
    return ".nii.gz" if name.endswith(".nii.gz") else path.suffix.lower()


def check_out(out: Path, mri: Path) -> None:
    """Refuse an output path that cannot be written, before any work is done."""
    from core.errors import InputError

    if out.is_dir():
        raise InputError(out, "is a folder; give a file name such as colorized.nii.gz")
    if _out_suffix(out) not in OUT_SUFFIXES:
        raise InputError(out, f"unsupported output format; use one of {', '.join(OUT_SUFFIXES)}")
    try:
        if out.resolve() == mri.resolve():
            raise InputError(out, "is the input MRI itself; choose another output file")
    except OSError:
        pass
    parent = out.parent if str(out.parent) else Path(".")
    existing = parent
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise InputError(out, f"cannot be written: {existing} is not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise InputError(out, f"cannot be written: no permission to write in {existing}")
    if out.exists() and not os.access(out, os.W_OK):
        raise InputError(out, "cannot be written: the file exists and is read-only")


def run(args: argparse.Namespace) -> int:
    from core.errors import InputError

    out, mri_path = Path(args.out), Path(args.mri)
    check_out(out, mri_path)
    if args.output is not None and args.output not in OUTPUTS:
        raise InputError("--output", f"unknown output {args.output!r}; use one of {', '.join(OUTPUTS)}")
    if args.batch_size < 1:
        raise InputError("--batch-size", f"must be at least 1, got {args.batch_size}")
    if args.pixel_mm is not None and not args.pixel_mm > 0:
        raise InputError("--pixel-mm", f"must be positive, got {args.pixel_mm}")
    if args.untrained and args.checkpoint:
        raise InputError("--untrained", "give either --checkpoint or --untrained, not both")

    from core.devices import parse_device
    from core.inference.colorizer import DEFAULT_PIXEL_MM, SHIPPED_MODEL_NOTE, Colorizer
    from core.io import read_volume, write_volume

    start = time.perf_counter()
    mri = read_volume(mri_path, expect="scalar")
    device = parse_device(args.device)
    if args.untrained:
        try:
            colorizer = Colorizer.untrained(args.untrained, device=device, pixel_mm=args.pixel_mm or DEFAULT_PIXEL_MM)
        except (ValueError, OSError) as exc:
            raise InputError("--untrained", str(exc)) from None
    else:
        try:
            colorizer = Colorizer.from_checkpoint(args.checkpoint, device=device, pixel_mm=args.pixel_mm)
        except InputError as exc:
            if args.checkpoint is None:
                raise InputError(exc.source, "no shipped default model was found; pass --checkpoint CK "
                                             "(or --untrained to test with random weights)") from None
            raise
    if args.output is not None and args.output not in colorizer.outputs:
        raise InputError("--output", f"this model offers {', '.join(colorizer.outputs)}, not {args.output!r}")
    output = args.output or colorizer.serve
    print(f"{mri_path}: {mri.array.shape[::-1]} voxels of {[round(float(s), 3) for s in mri.spacing]} mm; "
          f"model {colorizer.source} on {colorizer.device}, output {output}, {args.axis} slices "
          f"resampled to {colorizer.pixel_mm:g} mm pixels", file=sys.stderr)
    if args.checkpoint is None and not args.untrained:
        print(f"note: {SHIPPED_MODEL_NOTE}", file=sys.stderr)

    from tqdm import tqdm

    from core.inference.volume import colorize_volume, slicing_axis

    n = mri.array.shape[slicing_axis(mri, args.axis)]
    with tqdm(total=n, unit="slice", desc="colorize", disable=args.no_progress, file=sys.stderr) as bar:
        def progress(done: int) -> None:
            bar.update(done - bar.n)

        rgb = colorize_volume(mri, colorizer, axis=args.axis, output=output, batch_size=args.batch_size,
                              progress=progress)
    try:
        write_volume(rgb, out)
    except PermissionError:
        raise InputError(out, "cannot be written: permission denied") from None
    except OSError as exc:
        raise InputError(out, f"cannot be written ({exc.strerror or exc})") from None
    print(f"wrote {out} ({n} slices in {time.perf_counter() - start:.1f} s)", file=sys.stderr)
    return 0
