"""Figures of unseen phantom scans colorized as `mricolor colorize` does: MRI | colour | truth | cryosection.

For each kind of scan (whole body, 1 mm head, skull-stripped 1 mm head) of one seed the model
never trained on, the whole MRI is colorized with the checkpoint's defaults; an axial, a coronal
and a sagittal plane through the centre of the body are then cut at the same physical place from
the MRI, the colorized volume, the true colorization (both on the MRI's grid) and the phantom's
cryosection (on its own grid, with the misalignment a registration would leave to undo).

    python benchmarks/make_volume_figures.py --seed 100 --out docs/images [--checkpoint DIR]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from core.imaging import to_uint8  # noqa: E402
from core.inference import Colorizer  # noqa: E402
from core.inference.volume import colorize_volume  # noqa: E402
from core.normalize import normalize  # noqa: E402
from core.phantom import make_subject  # noqa: E402
from core.phantom.scans import SCANS  # noqa: E402
from core.planes import Plane, sample  # noqa: E402

PANELS = ("MRI", "colorized", "true colour", "cryosection")


def planes_through(labels, pixel_mm: float, size: int) -> list[Plane]:
    """Axial, coronal, sagittal planes through the centre of the body's box, wide enough to hold it."""
    body = np.argwhere(labels.array > 0)
    lo, hi = body.min(axis=0)[::-1], body.max(axis=0)[::-1]  # (x, y, z) indices
    centre = labels.index_to_physical(((lo + hi) / 2.0)[None])[0]
    return [Plane.preset(o, centre, pixel_mm=pixel_mm, width=size, height=size) for o in ("axial", "coronal", "sagittal")]


def figure(kind: str, seed: int, colorizer: Colorizer) -> np.ndarray:
    size_name, options = SCANS[kind]
    subject = make_subject(seed, size_name, **options)
    colour = colorize_volume(subject.mri, colorizer)
    mri01 = normalize(subject.mri)[0]
    fine = min(subject.mri.spacing)
    extent = float(np.max(subject.mri.extent_mm))
    planes = planes_through(subject.mri_labels, fine, int(min(extent / fine, 400)))
    rows = []
    for plane in planes:
        m = sample(mri01, plane)[0, 0].numpy()
        cells = [np.repeat(m[..., None], 3, axis=-1)]
        cells += [sample(v, plane)[0].permute(1, 2, 0).numpy() for v in (colour, subject.true_colorization, subject.cryo)]
        rows.append(np.concatenate([np.pad(c, ((2, 2), (2, 2), (0, 0)), constant_values=1.0) for c in cells], axis=1))
    return to_uint8(np.concatenate(rows, axis=0))


def main() -> int:
    from skimage.io import imsave

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=100, help="an unseen phantom seed (default 100)")
    ap.add_argument("--checkpoint", default=None, help="model checkpoint (default: the shipped one)")
    ap.add_argument("--kinds", nargs="+", default=["body", "head", "head-brain"], choices=sorted(SCANS))
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "images")
    args = ap.parse_args()
    colorizer = Colorizer.from_checkpoint(args.checkpoint)
    args.out.mkdir(parents=True, exist_ok=True)
    for kind in args.kinds:
        path = args.out / f"unseen_{kind}_{args.seed}.png"
        imsave(path, figure(kind, args.seed, colorizer), check_contrast=False)
        print(f"{path}: rows axial, coronal, sagittal; columns {' | '.join(PANELS)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
