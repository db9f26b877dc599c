"""Time `mricolor colorize` on whole volumes (targets: the default phantom ≤ 60 s, a 1 mm head of
about 256³ ≤ 30 s, on a 2-core CPU).

Figures: wall and process CPU seconds of the whole command path (read NIfTI, normalise, find the
body, slice, resample, colorize, refine, write NIfTI) for each axis, and, as the reference
measured in the same run, the bare network time (`Colorizer.colorize`) over the same slices:
their ratio is the overhead of everything around the network. Uses the shipped checkpoint when
there is one (its recorded pixel size), else untrained `lite` weights (same compute).

    python benchmarks/bench_colorize.py [--volume default|head] [--axes axial coronal sagittal] [--threads 2]

``--volume head`` is phantom 100's head region as a 1 mm isotropic scan (a clinical head grid).

``--figure DIR --data DATASET``: PNG grids MRI | every output of the model | true colour |
cryosection on axial, coronal and sagittal planes of the dataset's first test subject.
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


def _colorizer(shipped: bool):
    from core.inference import Colorizer

    return Colorizer.from_checkpoint(device="cpu") if shipped else Colorizer.untrained("lite", device="cpu", pixel_mm=3.0)


def head_1mm():
    """Phantom 100 as a 1 mm isotropic head scan (the phantom's head region)."""
    from core.phantom import make_subject

    return make_subject(100, region="head", mri_mm=1.0).mri


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--volume", default="default", choices=["default", "head"])
    parser.add_argument("--axes", nargs="+", default=["axial"], choices=["axial", "coronal", "sagittal"])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--untrained", action="store_true", help="ignore the shipped checkpoint")
    parser.add_argument("--figure", type=Path, help="also: write plane grids of a test subject into this folder")
    parser.add_argument("--data", type=Path, help="dataset folder for --figure")
    parser.add_argument("--skip-timing", action="store_true", help="only the figure")
    args = parser.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    from core.cli import main as cli
    from core.inference import DEFAULT_CHECKPOINT
    from core.inference.volume import colorize_volume, slicing_axis
    from core.io import write_volume
    from core.phantom import make_subject
    from resources import path as resource_path

    shipped = resource_path(DEFAULT_CHECKPOINT).is_file() and not args.untrained
    if args.figure is not None:
        figure(args.figure, args.data, shipped)
    if args.skip_timing:
        return 0
    mri = head_1mm() if args.volume == "head" else make_subject(100, "default").mri
    colorizer = _colorizer(shipped)
    target = 30 if args.volume == "head" else 60
    print(f"{args.volume} MRI {mri.array.shape[::-1]} voxels (x, y, z) of {mri.spacing.tolist()} mm; "
          f"{'shipped checkpoint' if shipped else 'untrained lite'} at {colorizer.pixel_mm:g} mm pixels, output "
          f"{colorizer.serve}; {torch.get_num_threads()} threads, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}")
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "mri.nii.gz"
        write_volume(mri, src)
        model = ["--untrained", "lite", "--pixel-mm", "3"] if not shipped else []
        for axis in args.axes:
            out = Path(tmp) / f"rgb_{axis}.nii.gz"
            code, wall, cpu = timed(lambda: cli(["colorize", str(src), "--out", str(out), "--axis", axis,
                                                 "--device", "cpu", "--no-progress", *model]))
            assert code == 0
            network = _network_seconds(colorizer, lambda: colorize_volume(mri, colorizer, axis=axis))
            n = mri.array.shape[slicing_axis(mri, axis)]
            print(f"{axis:9s} {n:4d} slices: command {wall:6.1f} s wall, {cpu:6.1f} s CPU "
                  f"({'meets' if wall <= target else 'misses'} the {target} s target); network alone "
                  f"{network:6.1f} s (command / network = {wall / max(network, 1e-9):.2f}); "
                  f"{1000 * network / n:.0f} ms per slice")
    return 0


def _network_seconds(colorizer, run) -> float:
    """Seconds spent inside the generator's forward passes while ``run`` runs."""
    spent = [0.0]
    forward = colorizer.generator.forward

    def timed_forward(*a, **k):
        t = time.perf_counter()
        try:
            return forward(*a, **k)
        finally:
            spent[0] += time.perf_counter() - t
    colorizer.generator.forward = timed_forward
    try:
        run()
    finally:
        del colorizer.generator.forward
    return spent[0]


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
