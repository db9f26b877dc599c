"""Write the phantom montages for the docs: MRI | cryosection | labels, and the clinical scans.

    python benchmarks/make_phantom_figures.py [--seed 0] [--size default] [--out docs/images]
    python benchmarks/make_phantom_figures.py --scans    # 1 mm head, its brain-only variant, a thorax

The clinical scans show MRI | cryosection | true colorization in axial, coronal and sagittal
planes through the head (phantom_head.png, phantom_head_brain_only.png) and one region scan
(phantom_region_thorax.png).

Every panel is the same physical plane (LPS mm) sampled from its own volume, so the MRI shows the
MRI's geometry and the cryosection and labels the cryosection's: the difference between them is
the misalignment registration has to undo. PNGs are palette-quantised to stay small.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw
from scipy import ndimage as ndi

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.atomic import atomic_path  # noqa: E402
from core.phantom import make_subject  # noqa: E402
from core.volume import Volume  # noqa: E402

PIXEL_MM = 2.0
AXIAL_Z = (1640.0, 1330.0, 1210.0, 1110.0, 1040.0, 900.0)  # head, chest ×2, abdomen ×2, pelvis
HALF_WIDTH_MM, HALF_DEPTH_MM = 270.0, 150.0  # crop to the body


def sample(volume: Volume, points: np.ndarray, order: int) -> np.ndarray:
    """``volume`` at physical points (h, w, 3): nearest for labels, linear for images."""
    idx = volume.physical_to_index(points)[..., ::-1]  # (z, y, x)
    coords = np.moveaxis(idx, -1, 0)
    arr = volume.array
    if arr.ndim == 3:
        return ndi.map_coordinates(arr, coords, order=order, mode="constant", cval=0)
    return np.stack([ndi.map_coordinates(arr[..., c], coords, order=order, mode="constant", cval=0)
                     for c in range(arr.shape[3])], axis=-1)


def panels(subject, points: np.ndarray, truth: bool = False) -> list[np.ndarray]:
    """The three RGB panels of one plane: MRI, cryosection, and the labels or (``truth``) the true
    colorization."""
    mri = np.clip(sample(subject.mri, points, 1) * 255, 0, 255).astype(np.uint8)
    third = (np.clip(sample(subject.true_colorization, points, 1), 0, 255).astype(np.uint8) if truth
             else subject.label_table.color_lut()[sample(subject.labels, points, 0).astype(np.intp)])
    return [np.repeat(mri[..., None], 3, axis=-1),
            np.clip(sample(subject.cryo, points, 1), 0, 255).astype(np.uint8), third]


def scan_figure(subject, cuts: list[tuple[int, float]], pixel_mm: float, path: Path) -> None:
    """One row per cut (axis 0 sagittal at x, 1 coronal at y, 2 axial at z; mm) over the MRI's extent."""
    global PIXEL_MM
    PIXEL_MM = pixel_mm
    lo = subject.mri.index_to_physical(np.zeros(3))
    hi = subject.mri.index_to_physical(np.array(subject.mri.size_xyz, dtype=np.float64) - 1)
    lo, hi = np.minimum(lo, hi), np.maximum(lo, hi)
    spans = {2: (0, 1), 1: (0, 2), 0: (1, 2)}
    rows = []
    for axis, at in cuts:
        u, v = spans[axis]
        pts = plane(lo[u], hi[u], lo[v], hi[v], (axis, at), (u, v))
        rows.append(panels(subject, pts[::-1] if axis == 2 else pts, truth=True))
    height = max(r[0].shape[0] for r in rows)
    rows = [[np.pad(p, ((0, height - p.shape[0]), (0, 0), (0, 0)), constant_values=255) for p in r] for r in rows]
    width = max(r[0].shape[1] for r in rows)
    rows = [[np.pad(p, ((0, 0), (0, width - p.shape[1]), (0, 0)), constant_values=255) for p in r] for r in rows]
    save(montage(rows, ["MRI (T1w)", "cryosection", "true colorization"]), path)


def scans(seed: int, out: Path) -> None:
    """The clinical head (and its skull-stripped variant) at 1 mm, and a 3 mm thorax."""
    from core.phantom.body import Z_CROWN

    for name, options in (("phantom_head.png", {}), ("phantom_head_brain_only.png", {"brain_only": True})):
        t = time.perf_counter()
        subject = make_subject(seed, region="head", mri_mm=1.0, **options)
        print(f"head seed {seed} {options} in {time.perf_counter() - t:.1f} s")
        cuts = [(2, Z_CROWN - 75.0), (2, Z_CROWN - 126.0), (1, 2.0), (0, 14.0)]
        scan_figure(subject, cuts, 0.8, out / name)
    subject = make_subject(seed, region="thorax", mri_mm=(1.5, 1.5, 4.0))
    scan_figure(subject, [(2, 1300.0), (1, 20.0), (0, -60.0)], 1.5, out / "phantom_region_thorax.png")


def montage(rows: list[list[np.ndarray]], titles: list[str]) -> Image.Image:
    gap = 4
    h = sum(r[0].shape[0] for r in rows) + gap * (len(rows) - 1) + 18
    w = sum(p.shape[1] for p in rows[0]) + gap * (len(rows[0]) - 1)
    canvas = np.full((h, w, 3), 255, dtype=np.uint8)
    y = 18
    for row in rows:
        x = 0
        for p in row:
            canvas[y:y + p.shape[0], x:x + p.shape[1]] = p
            x += p.shape[1] + gap
        y += row[0].shape[0] + gap
    img = Image.fromarray(canvas)
    draw = ImageDraw.Draw(img)
    x = 0
    for title, p in zip(titles, rows[0]):
        draw.text((x + 4, 3), title, fill=(0, 0, 0))
        x += p.shape[1] + gap
    return img


def plane(u0, u1, v0, v1, fixed: tuple[int, float], axes: tuple[int, int]) -> np.ndarray:
    """Physical points of an axis-aligned plane; rows run along -v (top = high v)."""
    us = np.arange(u0, u1, PIXEL_MM)
    vs = np.arange(v1, v0, -PIXEL_MM)
    pts = np.zeros((len(vs), len(us), 3))
    pts[..., axes[0]] = us[None, :]
    pts[..., axes[1]] = vs[:, None]
    pts[..., fixed[0]] = fixed[1]
    return pts


def save(img: Image.Image, path: Path) -> None:
    with atomic_path(path) as tmp:
        img.quantize(256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(tmp, format="PNG",
                                                                                            optimize=True)
    print(f"wrote {path} ({path.stat().st_size / 1024:.0f} KiB, {img.size[0]}×{img.size[1]})")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--size", default="default")
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "docs" / "images")
    ap.add_argument("--scans", action="store_true", help="the clinical head, brain-only head and thorax montages")
    args = ap.parse_args()
    if args.scans:
        scans(args.seed, args.out)
        return 0
    t = time.perf_counter()
    subject = make_subject(args.seed, args.size)
    print(f"subject seed {args.seed} ({args.size}) in {time.perf_counter() - t:.1f} s")
    titles = ["MRI (T1w)", "cryosection", "labels"]
    lo = subject.cryo.origin
    hi = subject.cryo.index_to_physical(np.array(subject.cryo.size_xyz) - 1)
    x0, x1 = max(lo[0], -HALF_WIDTH_MM), min(hi[0], HALF_WIDTH_MM)
    coronal = plane(x0, x1, lo[2], hi[2], (1, 20.0), (0, 2))
    save(montage([panels(subject, coronal)], titles), args.out / "phantom_coronal.png")
    y0, y1 = max(lo[1], -HALF_DEPTH_MM), min(hi[1], HALF_DEPTH_MM)
    rows = [panels(subject, plane(x0, x1, y0, y1, (2, z), (0, 1))[::-1]) for z in AXIAL_Z]
    save(montage(rows, titles), args.out / "phantom_axial.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
