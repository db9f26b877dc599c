"""Register an MRI to a cryosection (elastix: rigid, then B-spline) and write the aligned MRI.

Writes to OUT: the MRI on the cryosection grid, the body mask, the elastix transform files
(reusable), the deformation field and a report (JSON and text: times, metric values, Dice per
tissue when labels are given, target registration error with --truth). The rigid stage starts
from a pose found from the body masks, and geometry-dependent elastix settings follow the
volumes (docs/registration.md). When the B-spline stage fails its quality checks the rigid
result is written, with a warning; when no stage passes nothing is written unless --force.
"""
from __future__ import annotations

import argparse
import sys
import time


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--mri", required=True, help="MRI volume (moving image), any readable format")
    parser.add_argument("--cryo", required=True, help="RGB cryosection volume (fixed image)")
    parser.add_argument("--out", required=True, help="output folder (replaced as a whole when the run succeeds)")
    parser.add_argument("--params", nargs="+", metavar="FILE",
                        help="elastix parameter files, one per stage (default: the shipped rigid.txt bspline.txt)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override an elastix parameter in every stage, e.g. MaximumNumberOfIterations=64")
    parser.add_argument("--mask", help="body mask on the cryosection grid (default: found from the colours)")
    parser.add_argument("--labels", help="labels on the cryosection grid (for Dice per tissue)")
    parser.add_argument("--mri-labels", help="labels on the MRI grid (warped nearest-neighbour, for Dice)")
    parser.add_argument("--label-table", help="label table CSV/JSON for --labels/--mri-labels "
                                              "(default: their .labels.csv sidecars)")
    parser.add_argument("--truth", metavar="TRANSFORM_NPZ",
                        help="the phantom's known transform (transform.npz from `mricolor phantom`): adds the "
                             "target registration error before and after to the report")
    parser.add_argument("--threads", type=int, help="CPU threads for elastix (default: all available)")
    parser.add_argument("--spacing", type=float, metavar="MM",
                        help="registration grid spacing in mm (default: the MRI's coarsest spacing)")
    parser.add_argument("--init", choices=("frames", "center"), default="frames",
                        help="the rigid stage starts from the best of several poses found from the body masks "
                             "(centres of mass, principal axes); frames: the files' frames are one of them and "
                             "volumes that do not overlap are refused; center: the frames are not trusted")
    parser.add_argument("--no-moving-mask", action="store_true",
                        help="let elastix sample the MRI outside its body too (the MRI body mask is found by "
                             "thresholding; use this when that fails)")
    parser.add_argument("--force", action="store_true",
                        help="write a result even when no stage passes the quality checks (the last stage's; "
                             "the report lists why)")


def parse_overrides(items: list[str]) -> dict[str, list[str]]:
    """``KEY=VALUE [VALUE…]`` strings as elastix overrides (values split on spaces or commas)."""
    from core.errors import InputError

    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise InputError("--set", f"expects KEY=VALUE, got {item!r}")
        out[key.strip()] = value.replace(",", " ").split()
    return out


def progress_printer(stream=None):
    """A progress callback printing each stage with the seconds elapsed since the start (to stderr)."""
    start = time.perf_counter()

    def say(message: str) -> None:
        print(f"[{time.perf_counter() - start:6.1f} s] {message}", file=stream or sys.stderr, flush=True)

    return say


def run(args: argparse.Namespace) -> int:
    from core.errors import InputError
    from core.io import read_volume
    from core.registration import load_stages, register, report_text, save_result

    if (args.labels is None) != (args.mri_labels is None):
        raise InputError("--labels/--mri-labels", "give both (cryosection-grid and MRI-grid labels) or neither")
    stages = load_stages(args.params, parse_overrides(args.set))
    say = progress_printer()
    say("reading volumes")
    mri = read_volume(args.mri, expect="scalar")
    cryo = read_volume(args.cryo, expect="rgb")
    mask = read_volume(args.mask, expect="scalar") if args.mask else None
    labels = mri_labels = None
    if args.labels:
        labels = read_volume(args.labels, expect="labels", label_table=args.label_table)
        mri_labels = read_volume(args.mri_labels, expect="labels", label_table=args.label_table)
        for volume, path in ((labels, args.labels), (mri_labels, args.mri_labels)):
            if not volume.is_labels:
                raise InputError(path, "has no label table: give --label-table or a <name>.labels.csv sidecar")
    truth = None
    if args.truth:
        from core.phantom import PhantomTransform

        truth = PhantomTransform.load(args.truth).mri_to_cryo
    result = register(mri, cryo, stages=stages, mask=mask, threads=args.threads, registration_spacing=args.spacing,
                      init=args.init, mri_labels=mri_labels, labels=labels, truth=truth, strict=not args.force,
                      moving_mask=not args.no_moving_mask, progress=say)
    extra = {"mri_labels_registered": result.warp(mri_labels)} if mri_labels is not None else None
    say(f"writing {args.out}")
    save_result(result, args.out, extra)
    print(report_text(result.report), end="")
    return 0
