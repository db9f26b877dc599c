"""Training throughput: samples per second of one full colorization step (G step + D step + EMA,
the exact ``ColorizationTask.step`` the training loop runs), for ``lite`` at 128×128 and ``paper``
at 256×256, against a reference CycleGAN step run in the same process.

The reference is the classic CycleGAN step (junyanz/pytorch-CycleGAN-and-pix2pix): two ResNet-9
generators (1→3 and 3→1 channels, 64 filters), two 70×70 PatchGAN discriminators, LSGAN and
λ = 10 cycle losses, Adam — the same four-network structure without SSIM, segmentation or the
second decoder. On CUDA both run with bf16 autocast, as training does.

    python benchmarks/bench_training.py            # CPU (and CUDA when present)
    python benchmarks/bench_training.py --quick    # fewer repeats, paper at batch 1 only

Timings are the median and best of the repeats after one warm-up step; on a shared machine the
best is the closer estimate of the step's own cost, and ``--threads 1`` avoids the collapse of
multi-threaded kernels when other jobs hold the cores.
"""
from __future__ import annotations

import argparse
import dataclasses
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_networks import resnet9_generator  # noqa: E402
from core.model.checkpoint import save_checkpoint  # noqa: E402
from core.labels import Label, LabelTable  # noqa: E402
from core.model.networks import build_segmentation  # noqa: E402
from core.training.colorization import ColorizationTask  # noqa: E402
from core.model.run_config import resolve  # noqa: E402
from core.dataset.plane_data import PlaneData  # noqa: E402
from core.training.distributed import Context  # noqa: E402
from core.training.task import autocast  # noqa: E402

CLASSES = 20  # about the phantom's tissue count


def random_planes(count: int, size: int, seed: int = 0) -> list[dict[str, torch.Tensor]]:
    g = torch.Generator().manual_seed(seed)
    return [{"mri": torch.rand(1, size, size, generator=g), "cryo": torch.rand(3, size, size, generator=g),
             "labels": torch.randint(0, CLASSES, (size, size), generator=g)} for _ in range(count)]


def labels() -> LabelTable:
    return LabelTable([Label(i, f"tissue {i}", "body", (10 * i, 255 - 10 * i, 128)) for i in range(CLASSES)])


def timed(step, batches: list, device: torch.device, repeats: int) -> list[float]:
    """Samples per second of each repeat, after one warm-up step."""
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    step(batches[0])
    sync()
    rates = []
    for i in range(repeats):
        batch = batches[(i + 1) % len(batches)]
        start = time.perf_counter()
        step(batch)
        sync()
        rates.append(len(batch["mri"]) / (time.perf_counter() - start))
    return rates


def colorization_step(preset: str, size: int, batch: int, device: torch.device, folder: Path):
    """``ColorizationTask.step`` of ``preset`` (with an untrained frozen U-Net), and batches."""
    cfg = resolve(preset, overrides={"image_size": size, "batch_size": batch, "ema_decay": 0.999})
    table = labels()
    seg = build_segmentation(cfg.preset.model, CLASSES)
    seg_path = save_checkpoint(folder / f"{preset}-seg.safetensors", {"seg": seg},
                               dataclasses.replace(cfg.preset.model, num_classes=CLASSES), label_table=table)
    ctx = Context(device=device)
    planes = random_planes(2 * batch, size)
    task = ColorizationTask(cfg, ctx, PlaneData(planes, planes[:1], table), seg_path)
    task.distribute(ctx)
    batches = [{k: torch.stack([p[k] for p in planes[i:i + batch]]).to(device) for k in planes[0]}
               for i in (0, batch)]
    counter = iter(range(1, 10 ** 9))
    return (lambda b: task.step(b, next(counter))), batches, cfg


def patch_discriminator(in_ch: int) -> nn.Sequential:
    """CycleGAN's 70×70 PatchGAN: C64 (no norm) - C128 - C256 - C512 (stride 1) - 1."""
    layers: list[nn.Module] = [nn.Conv2d(in_ch, 64, 4, 2, 1), nn.LeakyReLU(0.2, True)]
    for a, b, stride in ((64, 128, 2), (128, 256, 2), (256, 512, 1)):
        layers += [nn.Conv2d(a, b, 4, stride, 1), nn.InstanceNorm2d(b), nn.LeakyReLU(0.2, True)]
    layers.append(nn.Conv2d(512, 1, 4, 1, 1))
    return nn.Sequential(*layers)


def cyclegan_step(size: int, batch: int, device: torch.device):
    """The reference: one CycleGAN optimisation step (G_A, G_B, D_A, D_B) on MRI ↔ cryosection."""
    g_a, g_b = resnet9_generator(1, 3).to(device), resnet9_generator(3, 1).to(device)
    d_a, d_b = patch_discriminator(3).to(device), patch_discriminator(1).to(device)
    opt_g = torch.optim.Adam([*g_a.parameters(), *g_b.parameters()], 2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam([*d_a.parameters(), *d_b.parameters()], 2e-4, betas=(0.5, 0.999))
    ctx = Context(device=device)

    def lsgan(pred: torch.Tensor, real: bool) -> torch.Tensor:
        return F.mse_loss(pred.float(), torch.full_like(pred.float(), float(real)))

    def step(b: dict[str, torch.Tensor]) -> None:
        m, c = b["mri"] * 2 - 1, b["cryo"] * 2 - 1
        d_a.requires_grad_(False), d_b.requires_grad_(False)
        with autocast(ctx, "auto"):
            fake_c, fake_m = g_a(m), g_b(c)
            loss_g = (lsgan(d_a(fake_c), True) + lsgan(d_b(fake_m), True)
                      + 10 * F.l1_loss(g_b(fake_c).float(), m) + 10 * F.l1_loss(g_a(fake_m).float(), c))
        opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        opt_g.step()
        d_a.requires_grad_(True), d_b.requires_grad_(True)
        with autocast(ctx, "auto"):
            loss_d = 0.5 * (lsgan(d_a(c), True) + lsgan(d_a(fake_c.detach()), False)
                            + lsgan(d_b(m), True) + lsgan(d_b(fake_m.detach()), False))
        opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        opt_d.step()

    planes = random_planes(2 * batch, size)
    batches = [{k: torch.stack([p[k] for p in planes[i:i + batch]]).to(device) for k in ("mri", "cryo")}
               for i in (0, batch)]
    return step, batches


def report(name: str, rates: list[float], reference: float | None = None) -> float:
    median, best = statistics.median(rates), max(rates)
    ratio = f"   {best / reference:5.2f}× the CycleGAN step" if reference else ""
    print(f"  {name:<42} {median:8.2f} samples/s median, {best:8.2f} best{ratio}", flush=True)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer repeats; paper only at batch 1 on the CPU")
    parser.add_argument("--repeats", type=int, default=None, help="timed steps per configuration")
    parser.add_argument("--threads", type=int, help="CPU threads (default: torch's choice)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    devices = [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
    print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads")
    with tempfile.TemporaryDirectory() as tmp:
        for device in devices:
            cpu = device.type == "cpu"
            repeats = args.repeats or (3 if args.quick else 8 if cpu else 20)
            print(f"\n{device} ({torch.cuda.get_device_name(device) if not cpu else 'fp32'}"
                  f"{'' if cpu else ', bf16 autocast'}):")
            # (preset, size, batch): the preset's own per-device batch where it fits the device.
            plans = [("lite", 128, 4), ("paper", 256, 1 if cpu else 28)]
            for preset, size, batch in plans:
                reps = max(2, repeats // 2) if size == 256 and cpu else repeats
                ref_step, ref_batches = cyclegan_step(size, batch, device)
                reference = report(f"CycleGAN ResNet-9 step, {size}², batch {batch}",
                                   timed(ref_step, ref_batches, device, reps))
                step, batches, _ = colorization_step(preset, size, batch, device, Path(tmp))
                report(f"{preset} colorization step, {size}², batch {batch}", timed(step, batches, device, reps),
                       reference)
                del step, batches, ref_step, ref_batches
                if device.type == "cuda":
                    torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
