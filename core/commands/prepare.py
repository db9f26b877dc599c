"""Build a training dataset: registered volumes plus a seeded manifest of planes split into train/test.

With --phantom, generates phantom subjects, registers each and splits by subject (default: train
on 0-3, test on 4). With --mri/--cryo/--labels, registers one real body and splits its planes
(--test-fraction). --materialise also writes every slice as PNG into {mri,cryo,seg}/ folders.
"""
from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("out", help="dataset folder to create (replaced as a whole when the run succeeds)")
    source = parser.add_argument_group("phantom bodies (split by subject)")
    source.add_argument("--phantom", action="store_true", help="generate and register phantom subjects")
    source.add_argument("--subjects", default="0-3", help="training subject seeds, e.g. 0-3 (default) or 0,2,5-7")
    source.add_argument("--test-subjects", default="4", help="test subject seeds (default 4)")
    source.add_argument("--size", choices=("default", "small"), default="default",
                        help="phantom size (small: a coarse body for quick trials and tests)")
    source.add_argument("--pairs", choices=("registered", "truth"), default="registered",
                        help="registered: each MRI registered to its cryosection (the paper's pairs, default); "
                             "truth: each phantom scan paired with its true colorization on its own grid, "
                             "no registration")
    source.add_argument("--scans", nargs="+", default=None, metavar="KIND",
                        help="with --pairs truth: kinds of scan per seed: body, small, head (1 mm), head-brain "
                             "(1 mm, skull-stripped) (default: body)")
    source.add_argument("--variants", type=int, default=0,
                        help="with --pairs truth: random scan variants per training scan (region, sequence, "
                             "bias, noise, skull-stripping, voxel size, orientation), beside the plain scan")
    real = parser.add_argument_group("one real body (split by plane)")
    real.add_argument("--mri", help="MRI volume")
    real.add_argument("--cryo", help="RGB cryosection volume")
    real.add_argument("--labels", help="labels on the cryosection grid")
    real.add_argument("--label-table", help="label table CSV/JSON (default: the labels' .labels.csv sidecar)")
    real.add_argument("--mask", help="body mask on the cryosection grid (default: found from the colours)")
    real.add_argument("--test-fraction", type=float, default=0.2, help="share of planes held out for testing")
    planes = parser.add_argument_group("planes")
    planes.add_argument("--planes", type=int, default=12000, help="planes in total, spread evenly over bodies")
    # the defaults of core.dataset.manifest.PlaneSettings, not imported here: it would pull in torch
    planes.add_argument("--plane-size", type=int, default=256, help="pixels per side (default 256)")
    planes.add_argument("--pixel-mm", type=float, default=1.5, help="pixel size in mm (default 1.5)")
    planes.add_argument("--min-foreground", type=float, default=0.4,
                        help="reject planes with less of the body than this share (default 0.4)")
    planes.add_argument("--seed", type=int, default=0, help="seed of the planes and the split")
    reg = parser.add_argument_group("registration")
    reg.add_argument("--params", nargs="+", metavar="FILE", help="elastix parameter files, one per stage")
    reg.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                     help="override an elastix parameter in every stage")
    reg.add_argument("--threads", type=int, help="CPU threads for elastix")
    reg.add_argument("--force", action="store_true",
                     help="keep a registration even when no stage passes the quality checks (by default a "
                          "failing B-spline stage falls back to the rigid result, with a warning)")
    parser.add_argument("--materialise", action="store_true", help="also write the slices as PNG images")


def _bodies(args: argparse.Namespace):
    from core.dataset.build import Body, parse_ids, phantom_bodies
    from core.errors import InputError
    from core.io import read_volume

    if args.phantom:
        if args.mri or args.cryo or args.labels:
            raise InputError("--phantom", "builds from phantom subjects; drop --mri/--cryo/--labels")
        train, test = parse_ids(args.subjects), parse_ids(args.test_subjects, "test subjects")
        if args.pairs == "truth":
            from core.dataset.scans import scan_bodies

            return scan_bodies(train, test, tuple(args.scans or ("body",)), args.variants, data_seed=args.seed)
        if args.scans or args.variants:
            raise InputError("--scans", "kinds of scan and variants need --pairs truth (registration pairs whole bodies)")
        return phantom_bodies(train, test, args.size)
    if args.pairs == "truth":
        raise InputError("--pairs", "truth pairs need a phantom (--phantom): a real body has no true colorization")
    if not (args.mri and args.cryo and args.labels):
        raise InputError("prepare", "give --phantom, or a real body with --mri, --cryo and --labels")

    def load() -> Body:
        labels = read_volume(args.labels, expect="labels", label_table=args.label_table)
        if not labels.is_labels:
            raise InputError(args.labels, "has no label table: give --label-table or a <name>.labels.csv sidecar")
        mask = read_volume(args.mask, expect="scalar") if args.mask else None
        return Body("body", read_volume(args.mri, expect="scalar"), read_volume(args.cryo, expect="rgb"), labels,
                    {"source": "files", "mri": str(args.mri), "cryo": str(args.cryo), "labels": str(args.labels)},
                    mask=mask)

    return [(load, "mixed")]


def run(args: argparse.Namespace) -> int:
    from core.commands.register import parse_overrides, progress_printer
    from core.dataset.build import build_dataset
    from core.dataset.manifest import PlaneSettings
    from core.dataset.materialise import materialise
    from core.errors import InputError
    from core.registration import load_stages

    if args.planes < 1:
        raise InputError("--planes", f"must be at least 1, got {args.planes}")
    settings = PlaneSettings(args.plane_size, args.plane_size, args.pixel_mm, args.min_foreground)
    registration = {"stages": load_stages(args.params, parse_overrides(args.set)), "threads": args.threads,
                    "strict": not args.force}
    say = progress_printer()
    manifest = build_dataset(args.out, _bodies(args), planes=args.planes, settings=settings, seed=args.seed,
                             test_fraction=args.test_fraction, registration=registration, progress=say)
    if args.materialise:
        from tqdm import tqdm

        say("writing slices as PNG")
        with tqdm(total=len(manifest), unit="slice") as bar:
            materialise(args.out, manifest, progress=lambda done, total: bar.update(done - bar.n))
    train, test = len(manifest.indices("train")), len(manifest.indices("test"))
    print(f"{args.out}: {len(manifest.subjects)} subject(s), {train} training and {test} test planes "
          f"({settings.width}×{settings.height} at {settings.pixel_mm} mm), split by {manifest.split_by}")
    for subject in manifest.subjects:
        how = subject.metadata.get("registration", "none (paired with its truth)")
        print(f"  {subject.id} ({subject.split}): registration {how}")
    return 0
