"""Generate a phantom subject and write its volumes, labels and the truth between them.

Writes to OUT_DIR: mri.nii.gz (T1-weighted, float32), cryo.nii.gz (RGB uint8 cryosection),
labels.nii.gz (on the cryosection grid) and mri_labels.nii.gz (on the MRI grid), each with a
.labels.csv sidecar, true_colorization.nii.gz (the cryosection's colours in the MRI's geometry,
RGB uint8), tissues.csv (the label table), transform.npz (MRI → cryosection: a rigid 4×4 plus
two displacement lattices, see core.phantom.warp) and phantom.json (what was generated).

``--region head --mri-mm 1`` is a clinical 1 mm head; other options give the variety of real
scans (see docs/phantom.md).
"""
from __future__ import annotations

import argparse
import time


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("out_dir", metavar="OUT_DIR", help="folder to write into (created if missing)")
    parser.add_argument("--seed", type=int, default=0, help="subject number (default 0); seeds are different bodies")
    parser.add_argument("--size", default="default", help="small (5 mm, for tests) or default (2 mm cryosection)")
    parser.add_argument("--no-cache", action="store_true", help="generate afresh instead of using the cache")
    parser.add_argument("--region", default="body",
                        help="field of view: body (default), head (1 mm clinical head), thorax, abdomen, pelvis, limb")
    parser.add_argument("--mri-mm", type=float, nargs="+", metavar="MM",
                        help="MRI voxel size: one value (isotropic) or three (x y z), 0.5–8 mm "
                             "(default: 1 for the head, else the size's 3 3 4 or 7.5 7.5 10)")
    parser.add_argument("--sequence", help="T1 sequence: mprage or spin_echo (default: mprage for the head, "
                                           "else the body's spin-echo table)")
    parser.add_argument("--field", type=float, default=3.0, help="field strength for --sequence: 1.5 or 3 (T)")
    parser.add_argument("--brain-only", action="store_true", help="skull-stripped: MRI and truth 0 outside the brain")
    parser.add_argument("--orientation", default="LPS", help="how volumes are stored: LPS (default) or RAS")
    parser.add_argument("--nonlinearity", type=float, default=0.0,
                        help="strength of a random smooth intensity curve (0 = none, 0.3 = strong)")
    parser.add_argument("--bias", type=float, help="bias-field strength (default: drawn in 0.10–0.20)")
    parser.add_argument("--noise", type=float, help="Rician noise σ / muscle signal (default: drawn in 0.02–0.05)")


def run(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from core.atomic import write_text
    from core.io import write_volume
    from core.phantom import PHANTOM_VERSION, make_subject
    from core.phantom.subject import VOLUMES

    from core.phantom.subject import mri_spacing, grids

    start = time.perf_counter()
    mri_mm = None
    if args.mri_mm is not None:
        mri_mm = args.mri_mm[0] if len(args.mri_mm) == 1 else tuple(args.mri_mm)
    subject = make_subject(args.seed, args.size, cache=not args.no_cache, region=args.region, mri_mm=mri_mm,
                           sequence=args.sequence, field_t=args.field, brain_only=args.brain_only,
                           orientation=args.orientation, nonlinearity=args.nonlinearity, bias=args.bias,
                           noise=args.noise)
    print(f"phantom seed {subject.seed} ({subject.size}, {subject.options.region}) ready in "
          f"{time.perf_counter() - start:.1f} s")
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)

    def timed(path: Path, write) -> tuple[Path, float]:
        t = time.perf_counter()
        write(path)
        return path, time.perf_counter() - t

    written = [timed(out / f"{n}.nii.gz", lambda p, n=n: write_volume(getattr(subject, n), p)) for n in VOLUMES]
    written.append(timed(out / "tissues.csv", subject.label_table.write))
    written.append(timed(out / "transform.npz", subject.transform.save))
    info = {"version": PHANTOM_VERSION, "seed": subject.seed, "size": subject.size,
            "options": subject.options.to_dict(),
            "t1_sequence": subject.options.effective_sequence or "spin_echo_table",
            "cryo_spacing_mm": grids(subject.size, subject.options)[0].spacing[0],
            "mri_spacing_mm": list(mri_spacing(subject.size, subject.options)),
            "shapes_zyx": {n: list(getattr(subject, n).array.shape) for n in VOLUMES},
            "rigid_mri_to_cryo": subject.transform.rigid.tolist(),
            "rotation_deg": round(subject.transform.rotation_deg, 3)}
    written.append(timed(out / "phantom.json", lambda p: write_text(p, json.dumps(info, indent=1) + "\n")))
    for path, seconds in written:
        print(f"wrote {path} ({path.stat().st_size / 2**20:.1f} MiB, {seconds:.1f} s)")
    print(f"done in {time.perf_counter() - start:.1f} s")
    return 0
