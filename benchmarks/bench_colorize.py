"""Time `mricolor colorize` on the default phantom MRI (target: ≤ 60 s on a 2-core CPU, `lite`).

Figures: wall and process CPU seconds of the whole command path (read NIfTI, normalise, slice,
resample, colorize, write NIfTI) for each axis, and, as the reference measured in the same run,
the bare `Colorizer.colorize` time on the same slices already cut and normalised: their ratio
is the overhead of everything around the network. Uses the shipped checkpoint when there is one
(its recorded pixel size), else untrained `lite` weights at ``--pixel-mm`` (same compute).

    python benchmarks/bench_colorize.py [--axes axial coronal sagittal] [--pixel-mm 3] [--threads 2]

Two checks of the shipped model ride along (they are what docs/default_model.md reports):

- ``--truth-seed 4``: colorize that phantom's whole MRI (axial, with and without the body crop)
  and give the mean CIEDE2000 ΔE to its true colorization over the body's voxels;
- ``--figure DIR --data DATASET``: PNG grids MRI | every output of the model | true colour | cryosection on
  axial, coronal and sagittal planes of the dataset's first test subject (registered volumes).
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def timed(fn):
    w, c = time.perf_counter(), time.process_time()
    result = fn()
    return result, time.perf_counter() - w, time.process_time() - c


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--axes", nargs="+", default=["axial"], choices=["axial", "coronal", "sagittal"])
    parser.add_argument("--pixel-mm", type=float, default=None, help="override the model's pixel size")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--untrained", action="store_true", help="ignore the shipped checkpoint")
    parser.add_argument("--truth-seed", type=int, help="also: whole-volume ΔE to this phantom's true colorization")
    parser.add_argument("--figure", type=Path, help="also: write plane grids of a test subject into this folder")
    parser.add_argument("--data", type=Path, help="dataset folder for --figure")
    parser.add_argument("--skip-timing", action="store_true", help="only the checks")
    args = parser.parse_args()

    import numpy as np
    import torch

    torch.set_num_threads(args.threads)
    from core.cli import main as cli
    from core.inference.volume import DEFAULT_PIXEL_MM, checkpoint_pixel_mm, colorize_volume
    from core.inference import DEFAULT_CHECKPOINT, Colorizer
    from core.io import write_volume
    from core.normalize import normalize
    from core.phantom import make_subject
    from resources import path as resource_path

    shipped = resource_path(DEFAULT_CHECKPOINT).is_file() and not args.untrained
    pixel_mm = args.pixel_mm or (checkpoint_pixel_mm(None) if shipped else None) or DEFAULT_PIXEL_MM
    mri = make_subject(0, "default").mri
    print(f"default phantom MRI {mri.array.shape[::-1]} voxels (x, y, z) of {mri.spacing.tolist()} mm; "
          f"{'shipped checkpoint' if shipped else 'untrained lite'} at {pixel_mm:g} mm pixels; "
          f"{torch.get_num_threads()} threads, {os.cpu_count()} CPUs visible, load {os.getloadavg()[0]:.1f}")
    if args.truth_seed is not None:
        volume_delta_e(args.truth_seed, shipped, pixel_mm)
    if args.figure is not None:
        figure(args.figure, args.data, shipped)
    if args.skip_timing:
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "mri.nii.gz"
        write_volume(mri, src)
        model = ["--untrained", "lite"] if not shipped else []
        for axis in args.axes:
            out = Path(tmp) / f"rgb_{axis}.nii.gz"
            code, wall, cpu = timed(lambda: cli(["colorize", str(src), "--out", str(out), "--axis", axis,
                                                 "--device", "cpu", "--no-progress", "--pixel-mm", str(pixel_mm),
                                                 *model]))
            assert code == 0
            # reference: the bare network on the same slices, cut and normalised beforehand
            colorizer = Colorizer.from_checkpoint(device="cpu") if shipped else Colorizer.untrained("lite", device="cpu")

            class Bare:
                outputs, serve, device = colorizer.outputs, colorizer.serve, colorizer.device
                seconds = 0.0

                def colorize(self, x, output=None):
                    t = time.perf_counter()
                    r = colorizer.colorize(x, output)
                    Bare.seconds += time.perf_counter() - t
                    return r

            norm = normalize(mri)[0]
            bare = Bare()
            _, inner_wall, _ = timed(lambda: colorize_volume(norm, bare, axis=axis, pixel_mm=pixel_mm, normalized=True))
            n = mri.array.shape[{"axial": 0, "coronal": 1, "sagittal": 2}[axis]]
            print(f"{axis:9s} {n:4d} slices: command {wall:6.1f} s wall, {cpu:6.1f} s CPU "
                  f"({'meets' if wall <= 60 else 'misses'} the 60 s target); network alone {bare.seconds:6.1f} s "
                  f"(command / network = {wall / max(bare.seconds, 1e-9):.2f}); "
                  f"{1000 * bare.seconds / n:.0f} ms per slice")
    return 0


def _colorizer(shipped: bool):
    from core.inference import Colorizer

    return Colorizer.from_checkpoint(device="cpu") if shipped else Colorizer.untrained("lite", device="cpu")


def volume_delta_e(seed: int, shipped: bool, pixel_mm: float) -> None:
    """Mean CIEDE2000 ΔE over the body between `colorize_volume` and the true colorization."""
    import numpy as np
    from skimage.color import deltaE_ciede2000, rgb2lab

    from core.inference.volume import colorize_volume
    from core.phantom import make_subject

    subject = make_subject(seed, "default")
    body = subject.mri_labels.array != 0
    truth = subject.true_colorization.array[body].astype(np.float64)[:, None] / 255
    colorizer = _colorizer(shipped)
    for output in colorizer.outputs:
        for crop in (True, False):
            t = time.perf_counter()
            rgb = colorize_volume(subject.mri, colorizer, output=output, pixel_mm=pixel_mm, crop=crop)
            seconds = time.perf_counter() - t
            got = rgb.array[body].astype(np.float64)[:, None] / 255
            de = deltaE_ciede2000(rgb2lab(got, channel_axis=-1), rgb2lab(truth, channel_axis=-1), channel_axis=-1)
            print(f"phantom {seed} whole MRI, axial, {output:7s} crop={'on ' if crop else 'off'}: "
                  f"mean ΔE to the true colorization over {body.sum():,} body voxels {de.mean():.2f} ({seconds:.0f} s)")


def figure(folder: Path, data: Path, shipped: bool) -> None:
    """MRI | every output of the model | true colour | cryosection grids, one PNG per orientation."""
    import json

    import numpy as np

    from core.io import read_volume
    from core.planes import Plane, sample
    from core.training.samples import sample_grid, save_png

    if data is None:
        raise SystemExit("--figure needs --data DATASET")
    manifest = json.loads((data / "dataset.json").read_text(encoding="utf-8"))
    entry = next(s for s in manifest["subjects"] if s["split"] == "test")
    vols = {k: read_volume(data / entry["volumes"][k]) for k in ("mri", "cryo", "truth", "mask")}
    mask = vols["mask"].array != 0
    zyx = np.argwhere(mask)
    lo, hi = zyx.min(axis=0), zyx.max(axis=0)
    colorizer = _colorizer(shipped)
    pixel = float(manifest["plane"]["pixel_mm"])
    folder.mkdir(parents=True, exist_ok=True)
    layouts = {"axial": (0, (0.3, 0.55, 0.75), 128, 96), "coronal": (1, (0.4, 0.5, 0.6), 112, 240),
               "sagittal": (2, (0.35, 0.5, 0.65), 96, 240)}
    for orientation, (axis, fractions, width, height) in layouts.items():
        planes = []
        for f in fractions:
            index = (lo + hi) / 2.0
            index[axis] = lo[axis] + f * (hi[axis] - lo[axis])
            centre = vols["mri"].index_to_physical(index[::-1])
            planes.append(Plane.preset(orientation, centre, pixel_mm=pixel, width=width, height=height))
        mri = sample(vols["mri"], planes)  # (N, 1, H, W)
        out = colorizer.colorize(mri.clamp(0, 1), list(colorizer.outputs))
        columns = {"MRI": mri, **{name: out[name] for name in colorizer.outputs},
                   "true colour": sample(vols["truth"], planes), "cryosection": sample(vols["cryo"], planes)}
        path = folder / f"default_model_{orientation}.png"
        save_png(sample_grid(columns), path)
        print(f"wrote {path}")


if __name__ == "__main__":
    sys.exit(main())
