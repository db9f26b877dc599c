"""Colorizing MRI planes with a trained G_m→ĉ: the one place that decides how the model sees a plane.

``Colorizer`` hides everything a caller should not have to know: the best device, eval mode,
padding to a multiple of 4 and cropping back, batching, fp16/bf16 autocast on CUDA, the
array/tensor conversions, and, through `colorize_planes`, the pixel size the model was trained at
(from its checkpoint), the crop to the body and the background outside it, and the resampling back to
the caller's grid. The viewer, ``mricolor colorize`` (`core.inference.volume`) and the evaluation
all call `colorize_planes`, so a plane looks the same everywhere. It serves the output its
checkpoint declares (ĉ, c' or a fusion, see `core.model.outputs`) and any of the others on request;
a checkpoint that carries a colour calibration (`core.model.calibration`) also offers ``calibrated``.
"""
from __future__ import annotations

import copy
import os
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from core.devices import best_device
from core.errors import InputError
from core.inference import crop
from core.inference.fusion import GUIDE_RADIUS, fuse, mri_guided
from core.labels import LabelTable
from core.model.calibration import ColourCalibration
from core.model.checkpoint import CHECKPOINT_FILE, check_serve, load_checkpoint
from core.model.config import ModelConfig, load_preset
from core.model.networks import Generator, build_generator
from core.model.outputs import OUTPUTS, available

#: Where the shipped default checkpoint lives (``resources.path(DEFAULT_CHECKPOINT)``).
DEFAULT_CHECKPOINT = f"default_model/{CHECKPOINT_FILE}"
PRECISIONS = ("auto", "fp32", "fp16", "bf16")
#: What the shipped model is, said wherever it colours a user's scan (command line, viewer).
SHIPPED_MODEL_NOTE = ("the shipped model learnt from synthetic phantoms (procedural bodies with simulated T1 MRI "
                      "and cryosections), not from real cryosection photographs; on a real scan its colours are "
                      "the phantom's tissue palette, guessed from the MRI's contrast")
#: In-plane pixel size (mm) assumed for checkpoints that do not record the one they were trained at.
DEFAULT_PIXEL_MM = 2.0
#: Inputs are planes in [0, 1]; this much overshoot (interpolation ringing) is clamped, more is
#: taken as un-normalised intensities and refused.
RANGE_TOLERANCE = 0.01
#: Planes per forward when ``max_batch`` is not given. On a CPU the time per plane *grows* with
#: the batch (a 256² full-resolution feature map of the lite model is 8 MB; a few fit in cache,
#: sixteen do not: benchmarks/bench_networks.py), on a GPU batches fill the device.
CPU_BATCH = 2
GPU_BATCH = 16
#: Smallest plane the generator runs on: its H/4 features must still be reflect-padded.
MIN_SIZE = 8

Outputs = str | Sequence[str] | None


def default_palette() -> LabelTable:
    """The shipped tissue table (``resources/tissues.csv``): colours for models that carry none."""
    from resources import path as resource_path

    return LabelTable.read(resource_path("tissues.csv"))


def recorded_pixel_mm(extra: dict) -> float | None:
    """The positive, finite ``pixel_mm`` a checkpoint's metadata records, or None."""
    try:
        value = float(extra.get("pixel_mm"))
    except (TypeError, ValueError):
        return None
    return value if np.isfinite(value) and value > 0 else None


def autocast_dtype(device: torch.device, precision: str) -> torch.dtype | None:
    """fp16/bf16 only on CUDA (on CPU they are slower, on MPS patchy). "auto" picks bf16 (no
    overflow) from compute capability 8.0 (Ampere) on, where it runs natively; older cards (T4,
    V100) emulate bf16, slower than fp16, so they get fp16."""
    if device.type != "cuda" or precision == "fp32":
        return None
    if precision == "auto":
        return torch.bfloat16 if torch.cuda.get_device_capability(device) >= (8, 0) else torch.float16
    return torch.bfloat16 if precision == "bf16" else torch.float16


class Colorizer:
    """Colorize MRI planes (values in [0, 1]) with G_m→ĉ on the best device.

    Build it with ``from_checkpoint`` (trained weights) or ``untrained`` (random weights of a
    preset). ``outputs`` lists what it can return: ``c_hat``, and with a c' decoder also
    ``c_prime``, ``fused`` and ``guided`` (`core.model.outputs`). ``pixel_mm`` is the in-plane
    pixel size the model was trained at (None: it runs at whatever pixel size it is given).
    ``colorize`` runs the network on planes as given; ``colorize_planes`` is the path every user
    of a model takes (crop, resampling, air).
    """

    def __init__(self, generator: Generator, config: ModelConfig, *, serve: str = "c_hat",
                 device: str | torch.device | None = None, max_batch: int | None = None, precision: str = "auto",
                 label_table: LabelTable | None = None, source: str | None = None, pixel_mm: float | None = None,
                 calibration: ColourCalibration | None = None):
        check_serve(serve, config, calibration is not None)
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
        if pixel_mm is not None and not (np.isfinite(pixel_mm) and pixel_mm > 0):
            raise InputError("pixel size", f"must be a positive number of mm, got {pixel_mm}")
        self.device = torch.device(device) if device is not None else best_device()
        if max_batch is None:
            max_batch = CPU_BATCH if self.device.type == "cpu" else GPU_BATCH
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        self.config, self.serve, self.max_batch = config, serve, int(max_batch)
        self.label_table, self.source = label_table, source
        self.pixel_mm = None if pixel_mm is None else float(pixel_mm)
        self.precision = precision
        self.autocast_dtype = autocast_dtype(self.device, precision)
        self.generator = generator.eval().requires_grad_(False).to(self.device)
        if self.device.type in ("cpu", "cuda"):
            self.generator.to(memory_format=torch.channels_last)
        self.calibration = (None if calibration is None
                            else calibration.eval().requires_grad_(False).to(self.device))
        self._background: torch.Tensor | None = None

    @property
    def outputs(self) -> tuple[str, ...]:
        return available(self.config, self.calibration is not None)

    def to(self, device: str | torch.device) -> "Colorizer":
        """A copy of this colorizer on ``device``, with that device's default batch; this one keeps
        serving meanwhile (the generator is copied, not moved: a worker may be running it)."""
        return Colorizer(copy.deepcopy(self.generator), self.config, serve=self.serve, device=device,
                         precision=self.precision, label_table=self.label_table, source=self.source,
                         pixel_mm=self.pixel_mm, calibration=copy.deepcopy(self.calibration))

    @classmethod
    def from_checkpoint(cls, path: str | os.PathLike | None = None, device: str | torch.device | None = None,
                        *, pixel_mm: float | None = None, **options) -> "Colorizer":
        """Load G_m→ĉ from a checkpoint file or folder; None: the shipped default checkpoint.

        The model's pixel size is ``pixel_mm`` when given, else the one its checkpoint records,
        else ``DEFAULT_PIXEL_MM``. ``options`` go to the constructor (``max_batch``,
        ``precision``). A missing, foreign or mismatched checkpoint raises ``InputError``.
        """
        if path is None:
            from resources import path as resource_path

            path = resource_path(DEFAULT_CHECKPOINT)
            if not path.is_file():
                raise InputError(path, "no default checkpoint is shipped: pass a checkpoint path, "
                                       "or use Colorizer.untrained() for a randomly initialised model")
        ckpt = load_checkpoint(path)
        generator = ckpt.build("g_mc")
        calibration = ckpt.build("calib") if "calib" in ckpt.networks else None
        return cls(generator, ckpt.config, serve=ckpt.serve, device=device, label_table=ckpt.label_table,
                   source=str(ckpt.path), pixel_mm=pixel_mm or recorded_pixel_mm(ckpt.extra) or DEFAULT_PIXEL_MM,
                   calibration=calibration, **options)

    @classmethod
    def untrained(cls, preset: str = "lite", seed: int = 0, device: str | torch.device | None = None,
                  **options) -> "Colorizer":
        """A Colorizer with the random initial weights of ``preset`` (reproducible by ``seed``)."""
        config = load_preset(preset).model
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            generator = build_generator(config, "colorization")
        return cls(generator, config, device=device, source=f"untrained {preset} (seed {seed})", **options)

    # --- the plane path every caller takes ------------------------------------------------------
    def colorize_planes(self, planes: np.ndarray | torch.Tensor, pixel_mm=None, outputs: Outputs = None, *,
                        body: np.ndarray | None = None, detail: float = 1.0):
        """Colorize planes of ``pixel_mm`` pixels (one number or (rows, cols) mm; None: the
        model's own) as the model was trained to see them, on the planes' own grid and detail.

        The planes are resampled to the model's pixel size (times ``1 / detail``: 0.5 is a
        quick preview at half the resolution), colorized and resampled back; the ``guided``
        output's MRI-guided filter then runs at the planes' own resolution, so its edges are the
        input's. ``body`` ((h, w) for all planes, or (N, h, w)): the network sees only the body's
        box plus a margin (`core.inference.crop`), and every pixel outside the body takes the
        palette's background colour (`background`), the same in every plane; a plane with no
        body is all background. None: every pixel goes through the network.
        Input and output types as in `colorize` (numpy (N, h, w) → float32 (N, h, w, 3)).
        """
        names = self._names(outputs)
        batch, single = self._as_batch(planes)
        scale = self._scale(pixel_mm) * detail
        n, h, w = batch.shape[0], *batch.shape[-2:]
        box, inside = (slice(None), slice(None)), None
        if body is not None:
            mask = np.asarray(body, dtype=bool)
            inside = torch.from_numpy(np.broadcast_to(mask, (n, h, w))[:, None].copy()).to(self.device)
            box = crop.body_box(mask.reshape(-1, h, w).any(axis=0), scale)
        results = {name: self.background[None, :, None, None].expand(n, 3, h, w).clone() for name in names}
        if box is not None:
            part = batch[..., box[0], box[1]]
            part_body = None if inside is None else inside[..., box[0], box[1]]
            with torch.inference_mode():
                for name, rgb in self._colorize_part(part, scale, names, part_body, pixel_mm).items():
                    results[name][..., box[0], box[1]] = rgb
                    if inside is not None:
                        results[name] = torch.where(inside, results[name], self.background[None, :, None, None])
        return self._convert(results, planes, names, outputs, single)

    def _colorize_part(self, part: torch.Tensor, scale: np.ndarray, names: list[str],
                       body: torch.Tensor | None = None, pixel_mm=None) -> dict[str, torch.Tensor]:
        """(N, 1, h, w) planes of ``pixel_mm`` (None: the model's) run at ``scale`` model pixels
        per plane pixel and brought back to (N, 3, h, w); ``guided`` refined at the planes' own
        resolution, its fits over ``body`` ((N, 1, h, w), None: every pixel), and ``calibrated``
        corrected from it there."""
        refined = ("guided", "calibrated")
        network = list(dict.fromkeys("c_prime" if name in refined else name for name in names))
        raw = self._run(crop.resize(part, crop.model_size(tuple(part.shape[-2:]), scale)).clamp_(0.0, 1.0), network)
        out = {name: crop.resize(raw[name], tuple(part.shape[-2:])).clamp_(0.0, 1.0) for name in network}
        if any(name in refined for name in names):
            out["guided"] = mri_guided(out["c_prime"], part, tuple(max(1, round(GUIDE_RADIUS / f)) for f in scale), body)
        if "calibrated" in names:
            out["calibrated"] = self.calibration(out["guided"], out["c_prime"], part, body,
                                                 self.pixel_mm or DEFAULT_PIXEL_MM if pixel_mm is None else pixel_mm)
        return {name: out[name] for name in names}

    def _scale(self, pixel_mm) -> np.ndarray:
        """Model pixels per plane pixel, (rows, cols), for planes of ``pixel_mm``."""
        if pixel_mm is None or self.pixel_mm is None:
            return np.ones(2)
        return np.broadcast_to(np.asarray(pixel_mm, dtype=np.float64), (2,)) / self.pixel_mm

    @property
    def background(self) -> torch.Tensor:
        """(3,) RGB in [0, 1] of the palette's background (label 0 of the checkpoint's label table,
        else of the shipped tissue table), on the model's device: the colour of everything
        outside the body."""
        if self._background is None:
            table = self.label_table if self.label_table is not None and 0 in self.label_table else default_palette()
            self._background = torch.tensor(table[0].color, dtype=torch.float32, device=self.device) / 255.0
        return self._background

    def colorize(self, mri_planes: np.ndarray | torch.Tensor, outputs: Outputs = None):
        """Run the network on planes given as (H, W), (N, H, W) or (N, 1, H, W), numpy or torch,
        at their own pixel size and framing (`colorize_planes` is the path that frames them).

        numpy in → numpy float32 RGB in [0, 1] shaped (H, W, 3) or (N, H, W, 3);
        torch in → float32 tensor (3, H, W) or (N, 3, H, W) on the input's device.
        ``outputs``: None → the served output; a name → that output; a sequence of names → a
        dict name → result. Float inputs must lie in [0, 1]; uint8 is scaled by 1/255.
        """
        names = self._names(outputs)
        batch, single = self._as_batch(mri_planes)
        return self._convert(self._run(batch, names), mri_planes, names, outputs, single)

    def _names(self, outputs: Outputs) -> list[str]:
        names = [self.serve] if outputs is None else [outputs] if isinstance(outputs, str) else list(outputs)
        bad = [n for n in names if n not in self.outputs]
        if bad or not names:
            raise InputError("outputs", f"unknown output(s) {bad}; this model offers {', '.join(self.outputs)}")
        return names

    @staticmethod
    def _convert(results: dict[str, torch.Tensor], given, names: list[str], outputs: Outputs, single: bool):
        """Results in the caller's type (see `colorize`): one output, or a dict for a sequence."""
        if isinstance(given, torch.Tensor):
            converted = {n: (r[0] if single else r).to(given.device) for n, r in results.items()}
        else:
            converted = {n: _to_numpy_rgb(r, single) for n, r in results.items()}
        return converted[names[0]] if outputs is None or isinstance(outputs, str) else converted

    def _as_batch(self, planes) -> tuple[torch.Tensor, bool]:
        """(N, 1, H, W) float32 on the model's device, and whether the input was a single plane."""
        if isinstance(planes, np.ndarray):
            if planes.dtype == np.uint8:
                planes = planes.astype(np.float32) / 255.0
            elif not np.issubdtype(planes.dtype, np.floating):
                raise InputError("mri_planes", f"expected float values in [0, 1] (or uint8), got dtype {planes.dtype}")
            tensor = torch.from_numpy(np.ascontiguousarray(planes, dtype=np.float32))
        elif isinstance(planes, torch.Tensor):
            if planes.dtype == torch.uint8:
                tensor = planes.float() / 255.0
            elif not planes.is_floating_point():
                raise InputError("mri_planes", f"expected float values in [0, 1] (or uint8), got dtype {planes.dtype}")
            else:
                tensor = planes.float()
        else:
            raise InputError("mri_planes", f"expected a numpy array or torch tensor, got {type(planes).__name__}")
        shape = tuple(tensor.shape)
        if tensor.dim() == 2:
            tensor = tensor[None, None]
        elif tensor.dim() == 3:
            tensor = tensor[:, None]
        elif tensor.dim() != 4 or tensor.shape[1] != 1:
            raise InputError("mri_planes", f"expected shape (H, W), (N, H, W) or (N, 1, H, W), got {shape}")
        if tensor.shape[0] == 0 or min(tensor.shape[-2:]) < 1:
            raise InputError("mri_planes", f"empty input of shape {shape}")
        tensor = tensor.to(self.device, non_blocking=True)
        lo, hi = torch.aminmax(tensor)
        lo, hi = float(lo), float(hi)
        if not (np.isfinite(lo) and np.isfinite(hi)):
            raise InputError("mri_planes", "input contains NaN or infinite values")
        if lo < -RANGE_TOLERANCE or hi > 1 + RANGE_TOLERANCE:
            raise InputError("mri_planes", f"values must be normalised to [0, 1], got [{lo:.4g}, {hi:.4g}]")
        return tensor.clamp_(0.0, 1.0), len(shape) == 2

    @torch.inference_mode()
    def _run(self, batch: torch.Tensor, names: list[str]) -> dict[str, torch.Tensor]:
        """Pad to a multiple of 4 and at least ``MIN_SIZE`` (reflect, or replicate where the plane
        is too small to reflect), run in chunks of ``max_batch``, crop back. Returns float32
        (N, 3, H, W) per requested output."""
        h, w = batch.shape[-2:]
        ph, pw = max(-h % 4, MIN_SIZE - h), max(-w % 4, MIN_SIZE - w)
        pad = (pw // 2, pw - pw // 2, ph // 2, ph - ph // 2)
        mode = "reflect" if max(pad) < min(h, w) else "replicate"
        padded = F.pad(batch, pad, mode=mode) if ph or pw else batch
        chunks: dict[str, list[torch.Tensor]] = {n: [] for n in names}
        decoders = tuple(sorted({d for n in names for d in OUTPUTS[n].decoders}))
        for start in range(0, padded.shape[0], self.max_batch):
            x = padded[start:start + self.max_batch].contiguous(memory_format=torch.channels_last)
            with torch.autocast(self.device.type, dtype=self.autocast_dtype or torch.float32,
                                enabled=self.autocast_dtype is not None):
                out = self.generator(x, decoders)
            out = {k: v.float() for k, v in out.items()}
            if "fused" in names:
                out["fused"] = fuse(out["c_hat"], out["c_prime"])
            out = {k: v[..., pad[2]:pad[2] + h, pad[0]:pad[0] + w] for k, v in out.items()}
            if "guided" in names or "calibrated" in names:   # on the plane itself: the padding is no edge of the MRI
                plane = batch[start:start + self.max_batch].float()
                out["guided"] = mri_guided(out["c_prime"], plane)
                if "calibrated" in names:
                    out["calibrated"] = self.calibration(out["guided"], out["c_prime"], plane, None,
                                                         self.pixel_mm or DEFAULT_PIXEL_MM)
            for n in names:
                chunks[n].append(out[n].contiguous())
        return {n: torch.cat(parts) for n, parts in chunks.items()}


def _to_numpy_rgb(rgb: torch.Tensor, single: bool) -> np.ndarray:
    """(N, 3, H, W) tensor → float32 (N, H, W, 3) array, or (H, W, 3) for a single plane."""
    array = rgb.permute(0, 2, 3, 1).cpu().numpy().astype(np.float32, copy=False)
    return array[0] if single else array
