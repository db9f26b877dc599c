"""Time `mricolor colorize` on the default phantom MRI (target: ≤ 60 s on a 2-core CPU, `lite`).

Figures: wall and process CPU seconds of the whole command path (read NIfTI, normalise, slice,
resample, colorize, write NIfTI) for each axis, and, as the reference measured in the same run,
the bare `Colorizer.colorize` time on the same slices already cut and normalised: their ratio
is the overhead of everything around the network. Uses the shipped checkpoint when there is one
(its recorded pixel size), else untrained `lite` weights at ``--pixel-mm`` (same compute).

    python benchmarks/bench_colorize.py [--axes axial coronal sagittal] [--pixel-mm 3] [--threads 2]
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
    args = parser.parse_args()

    import numpy as np
    import torch

    torch.set_num_threads(args.threads)
    from core.cli import main as cli
    from core.colorize_volume import DEFAULT_PIXEL_MM, checkpoint_pixel_mm, colorize_volume
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


if __name__ == "__main__":
    sys.exit(main())
