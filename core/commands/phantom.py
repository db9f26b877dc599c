"""Generate a phantom subject and write its volumes, labels and the truth between them.

Writes to OUT_DIR: mri.nii.gz (T1-weighted, float32), cryo.nii.gz (RGB uint8 cryosection),
labels.nii.gz (on the cryosection grid) and mri_labels.nii.gz (on the MRI grid), each with a
.labels.csv sidecar, true_colorization.nii.gz (the cryosection's colours in the MRI's geometry,
RGB uint8), tissues.csv (the label table), transform.npz (MRI → cryosection: a rigid 4×4 plus
two displacement lattices, see core.phantom.warp) and phantom.json (what was generated).
"""
from __future__ import annotations

import argparse
import time


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("out_dir", metavar="OUT_DIR", help="folder to write into (created if missing)")
    parser.add_argument("--seed", type=int, default=0, help="subject number (default 0); seeds are different bodies")
    parser.add_argument("--size", default="default", help="small (5 mm, for tests) or default (2 mm cryosection)")
    parser.add_argument("--no-cache", action="store_true", help="generate afresh instead of using the cache")


def run(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from core.atomic import write_text
    from core.io import write_volume
    from core.phantom import PHANTOM_VERSION, SIZES, make_subject
    from core.phantom.subject import VOLUMES

    start = time.perf_counter()
    subject = make_subject(args.seed, args.size, cache=not args.no_cache)
    print(f"phantom seed {subject.seed} ({subject.size}) ready in {time.perf_counter() - start:.1f} s")
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
            "cryo_spacing_mm": SIZES[subject.size].cryo_mm, "mri_spacing_mm": list(SIZES[subject.size].mri_mm),
            "shapes_zyx": {n: list(getattr(subject, n).array.shape) for n in VOLUMES},
            "rigid_mri_to_cryo": subject.transform.rigid.tolist(),
            "rotation_deg": round(subject.transform.rotation_deg, 3)}
    written.append(timed(out / "phantom.json", lambda p: write_text(p, json.dumps(info, indent=1) + "\n")))
    for path, seconds in written:
        print(f"wrote {path} ({path.stat().st_size / 2**20:.1f} MiB, {seconds:.1f} s)")
    print(f"done in {time.perf_counter() - start:.1f} s")
    return 0
