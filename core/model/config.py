"""The sections of a preset and the preset files in ``resources/presets`` that hold them.

A preset is one JSON object with a section per concern: ``model`` (the architecture, consumed by
``core.model.networks.build_networks``), ``loss`` (weights of the objective, ``core.model.losses``),
``optim`` (Adam settings), ``train`` (the schedule of a training run) and, optionally, ``augment``
(the training planes' augmentation, ``core.dataset.Augment``). Each section is a frozen
`core.model.section.Section` dataclass that refuses unknown keys and bad values.

The ablations of the paper (A1–A5, docs/training.md) are named sets of overrides applied to a
preset: they change which networks are *built* (no dead branches) and which loss terms are computed.
How a run joins the sections and overrides them is `core.model.run_config`.
"""
from __future__ import annotations

import copy
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from core.errors import InputError
from core.jsonfile import read_json_object
from core.model.section import Section, check_positive_int

UPSAMPLE_MODES = ("deconv", "resize_conv")
SKIP_GATES = ("se", "conv")
SEGMENTATION_INPUTS = ("c_prime", "reconstruction", "none")
ADVERSARIAL_MODES = ("bce", "lsgan")
PRECISIONS = ("auto", "fp32", "bf16")
#: Budget keys of which the U-Net pre-training has its own copy in ``train``, prefixed ``seg_``.
PER_TASK_KEYS = ("batch_size", "epochs", "max_steps", "max_minutes")


def _tuple_of_ints(value: Any, name: str, length: int | None = None) -> tuple[int, ...]:
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, int) and v > 0 for v in value):
        raise ValueError(f"{name} must be a list of positive integers, got {value!r}")
    if length is not None and len(value) != length:
        raise ValueError(f"{name} needs {length} entries, got {len(value)}")
    return tuple(value)


@dataclass(frozen=True)
class ModelConfig(Section):
    """Architecture switches and widths of every network (docs/training.md).

    ``widths`` are the generator's channels at full, half and quarter resolution (the authors'
    code: 128→256→512). ``multiscale_widths`` are the three convs of the m/2 and m/4 branches;
    their summed output (last entry) is concatenated with the full-resolution branch at H/4.
    ``separable`` turns every k×k convolution whose input is a feature map (not the image) into a
    depthwise + pointwise pair — the lever that makes the ``lite`` preset fast on a CPU.
    Ablations: ``dual_decoder`` False removes the c' decoder and its gates (A3, A4);
    ``skip_gate`` "conv" replaces every SE gate on a skip by a 1×1 convolution (A5);
    ``segmentation`` picks what the frozen U-Net sees: c' (full model), the reconstructed
    cryosection (A4) or nothing, in which case no U-Net is built (A2, A3).
    """

    name: ClassVar[str] = "model"

    widths: tuple[int, int, int] = (16, 64, 128)
    multiscale_widths: tuple[int, int, int] = (16, 32, 64)
    n_blocks: int = 4
    se_reduction: int = 16
    separable: bool = True
    upsample: str = "resize_conv"
    dual_decoder: bool = True
    skip_gate: str = "se"
    segmentation: str = "c_prime"
    disc_widths: tuple[int, int, int, int, int] = (32, 64, 64, 64, 64)
    unet_widths: tuple[int, ...] = (16, 32, 64, 128)
    num_classes: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "widths", _tuple_of_ints(self.widths, "widths", 3))
        object.__setattr__(self, "multiscale_widths",
                           _tuple_of_ints(self.multiscale_widths, "multiscale_widths", 3))
        object.__setattr__(self, "disc_widths", _tuple_of_ints(self.disc_widths, "disc_widths", 5))
        object.__setattr__(self, "unet_widths", _tuple_of_ints(self.unet_widths, "unet_widths"))
        if len(self.unet_widths) < 2:
            raise ValueError("unet_widths needs at least two levels")
        if not isinstance(self.n_blocks, int) or self.n_blocks < 0:
            raise ValueError(f"n_blocks must be a non-negative integer, got {self.n_blocks!r}")
        if not isinstance(self.se_reduction, int) or self.se_reduction < 1:
            raise ValueError(f"se_reduction must be a positive integer, got {self.se_reduction!r}")
        for name, allowed in (("upsample", UPSAMPLE_MODES), ("skip_gate", SKIP_GATES),
                              ("segmentation", SEGMENTATION_INPUTS)):
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} must be one of {allowed}, got {getattr(self, name)!r}")
        if self.segmentation == "c_prime" and not self.dual_decoder:
            raise ValueError("segmentation on c' needs the c' decoder (dual_decoder true)")
        if self.num_classes is not None and (not isinstance(self.num_classes, int) or self.num_classes < 2):
            raise ValueError(f"num_classes must be an integer ≥ 2, got {self.num_classes!r}")

    @property
    def generator_outputs(self) -> tuple[str, ...]:
        """Names of G_m→ĉ's outputs, main first."""
        return ("c_hat", "c_prime") if self.dual_decoder else ("c_hat",)


@dataclass(frozen=True)
class LossConfig(Section):
    """Weights of the objective L = λ_adv·L_adv + λ_rec·L_rec + λ_ssim·L_ssim + λ_seg·L_seg.

    ``cycle`` False is ablation A1 (no reconstructions are even computed). ``lambda_rec`` is 10 in
    the authors' code and 1 in the paper's formula; each preset records its choice.
    ``lambda_l1_c_prime`` adds L1(c', c), a pull of c' towards the cryosection's colours without
    which c' is no colour image at all under the paper's weights (docs/default_model.md, "How it
    was trained"); 0 keeps the paper's objective.
    ``class_weights`` (one per class, or null) weight the segmentation cross-entropy.
    """

    name: ClassVar[str] = "loss"

    adversarial: str = "bce"
    lambda_adv: float = 1.0
    cycle: bool = True
    lambda_rec: float = 10.0
    ssim_windows: tuple[int, ...] = (3, 5, 7, 9)
    lambda_ssim: float = 1.0
    lambda_seg: float = 1.0
    class_weights: tuple[float, ...] | None = None
    lambda_l1_c_prime: float = 0.0

    def __post_init__(self) -> None:
        if self.adversarial not in ADVERSARIAL_MODES:
            raise ValueError(f"adversarial must be one of {ADVERSARIAL_MODES}, got {self.adversarial!r}")
        windows = _tuple_of_ints(self.ssim_windows, "ssim_windows")
        if not windows or any(w % 2 == 0 for w in windows):
            raise ValueError(f"ssim_windows must be odd sizes, got {self.ssim_windows!r}")
        object.__setattr__(self, "ssim_windows", windows)
        if self.class_weights is not None:
            object.__setattr__(self, "class_weights", tuple(float(w) for w in self.class_weights))
        for name in ("lambda_adv", "lambda_rec", "lambda_ssim", "lambda_seg", "lambda_l1_c_prime"):
            if not isinstance(getattr(self, name), (int, float)) or getattr(self, name) < 0:
                raise ValueError(f"{name} must be a non-negative number, got {getattr(self, name)!r}")


@dataclass(frozen=True)
class OptimConfig(Section):
    """Adam settings of the generators and of the discriminators (the U-Net's are ``train.seg_lr``:
    S is pre-trained on its own and stays frozen while the GAN trains)."""

    name: ClassVar[str] = "optim"

    lr_g: float = 2e-4
    lr_d: float = 2e-4
    betas: tuple[float, float] = (0.5, 0.999)

    def __post_init__(self) -> None:
        object.__setattr__(self, "betas", tuple(float(b) for b in self.betas))
        if len(self.betas) != 2:
            raise ValueError(f"betas needs two numbers, got {self.betas!r}")


@dataclass(frozen=True)
class Schedule:
    """How long and how often one task trains: its batch and budget, and the run's cadence."""

    batch_size: int
    epochs: int
    max_steps: int | None
    max_minutes: float | None
    checkpoint_every: int
    sample_every: int
    log_every: int
    keep_checkpoints: int = 2


@dataclass(frozen=True)
class TrainConfig(Section):
    """Schedule and bookkeeping of a training run.

    ``batch_size`` is per process (the authors' 28 was per GPU); the global batch is
    ``batch_size × world size`` and is logged. The run stops after ``epochs`` passes over the
    training planes, at ``max_steps`` optimiser steps or after ``max_minutes`` of training
    (checkpointed like a normal end), whichever comes first. ``ema_decay`` > 0
    keeps an exponential moving average of G_m→ĉ's weights, used for samples, evaluation and the
    exported model (0: off). ``precision`` "auto" means bf16 autocast on CUDA, fp32 elsewhere.
    ``serve`` is the output the exported checkpoint declares; "auto" picks the one with the lowest
    ΔE to the true colorization on the test planes when the data has it, else ĉ.
    ``check_sync`` gathers a checksum of every network from every process after each step and
    stops when they differ (a debug switch that proves gradients are all-reduced).
    The ``seg_*`` keys are the U-Net pre-training's own batch, budget and learning rate (see
    `schedule`); ``seg_class_balance`` weights its cross-entropy by median frequency (unless
    ``loss.class_weights`` are given).
    """

    name: ClassVar[str] = "train"

    image_size: int = 128
    batch_size: int = 4
    epochs: int = 10
    max_steps: int | None = None
    max_minutes: float | None = None
    checkpoint_every: int = 500
    keep_checkpoints: int = 2
    sample_every: int = 200
    sample_count: int = 4
    log_every: int = 10
    ema_decay: float = 0.0
    seed: int = 0
    num_workers: int = 0
    precision: str = "auto"
    serve: str = "auto"
    eval_planes: int | None = None
    check_sync: bool = False
    seg_epochs: int = 5
    seg_max_steps: int | None = None
    seg_max_minutes: float | None = None
    seg_batch_size: int = 8
    seg_lr: float = 1e-3
    seg_class_balance: bool = False

    def __post_init__(self) -> None:
        check_positive_int(self, "image_size", "batch_size", "epochs", "checkpoint_every", "keep_checkpoints",
                           "sample_every", "sample_count", "log_every", "seg_epochs", "seg_batch_size")
        check_positive_int(self, "max_steps", "seg_max_steps", "eval_planes", optional=True)
        for name in ("max_minutes", "seg_max_minutes"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, (int, float)) or isinstance(value, bool) or value <= 0):
                raise ValueError(f"{name} must be a positive number or null, got {value!r}")
        if self.image_size % 4:
            raise ValueError(f"image_size must be divisible by 4 (the generators halve twice), got {self.image_size}")
        if not 0.0 <= self.ema_decay < 1.0:
            raise ValueError(f"ema_decay must be in [0, 1), got {self.ema_decay!r}")
        if not isinstance(self.num_workers, int) or self.num_workers < 0:
            raise ValueError(f"num_workers must be a non-negative integer, got {self.num_workers!r}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {self.precision!r}")
        if self.serve not in serve_choices():
            raise ValueError(f"serve must be one of {serve_choices()}, got {self.serve!r}")
        if not self.seg_lr > 0:
            raise ValueError(f"seg_lr must be positive, got {self.seg_lr!r}")

    def schedule(self, task: str) -> Schedule:
        """The schedule of ``task`` ("segmentation" or "colorization"): its own batch and budget
        (``seg_*`` for the U-Net), the cadence of checkpoints, samples and logs shared."""
        return Schedule(**{name: getattr(self, task_key(task, name)) for name in PER_TASK_KEYS},
                        checkpoint_every=self.checkpoint_every, sample_every=self.sample_every,
                        log_every=self.log_every, keep_checkpoints=self.keep_checkpoints)


def task_key(task: str, name: str) -> str:
    """The ``train`` key holding budget ``name`` of ``task``: ``seg_epochs`` for the U-Net's epochs."""
    return f"seg_{name}" if task == "segmentation" and name in PER_TASK_KEYS else name


def serve_choices() -> tuple[str, ...]:
    """What ``train.serve`` may name: "auto" or an output of the catalogue (imported here, since
    `core.model.outputs` itself imports this module)."""
    from core.model.outputs import OUTPUTS

    return ("auto", *OUTPUTS)


@dataclass(frozen=True)
class AugmentConfig(Section):
    """Probabilities and ranges of the training planes' augmentation (`core.dataset.Augment`
    applies them). A preset without the section trains without augmentation."""

    name: ClassVar[str] = "augment"

    flip_horizontal: float = 0.5  # probability of mirroring left/right (u → −u)
    flip_vertical: float = 0.0  # probability of mirroring up/down (v → −v)
    rotate_deg: float = 10.0  # in-plane rotation drawn uniformly in ±rotate_deg
    mri_gain: float = 0.1  # MRI multiplied by 1 ± gain
    mri_gamma: float = 0.15  # MRI raised to exp(±gamma)
    mri_offset: float = 0.03  # MRI shifted by ± offset inside the body
    mri_noise: float = 0.01  # Gaussian noise σ added to the MRI

    def __post_init__(self) -> None:
        for name in ("flip_horizontal", "flip_vertical"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"{name} is a probability in [0, 1], got {getattr(self, name)}")
        for name in ("rotate_deg", "mri_gain", "mri_gamma", "mri_offset", "mri_noise"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative, got {getattr(self, name)}")


#: Overrides per ablation of the paper (docs/training.md); see ``apply_ablation``.
ABLATIONS: dict[str, dict[str, dict[str, Any]]] = {
    "A1": {"loss": {"cycle": False}},
    "A2": {"model": {"segmentation": "none"}},
    "A3": {"model": {"segmentation": "none", "dual_decoder": False}},
    "A4": {"model": {"segmentation": "reconstruction", "dual_decoder": False}},
    "A5": {"model": {"skip_gate": "conv"}},
}


@dataclass(frozen=True)
class Preset:
    """A resolved preset: typed model/loss/optim sections plus the raw file for other sections."""

    name: str
    model: ModelConfig
    loss: LossConfig
    optim: OptimConfig
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def from_dict(cls, data: dict[str, Any], name: str = "custom", source: str | None = None) -> "Preset":
        """Build from a preset mapping; bad content raises ``InputError`` naming ``source``."""
        try:
            return cls(name=str(data.get("name", name)),
                       model=ModelConfig.from_dict(data.get("model", {})),
                       loss=LossConfig.from_dict(data.get("loss", {})),
                       optim=OptimConfig.from_dict(data.get("optim", {})),
                       raw=copy.deepcopy(data))
        except (TypeError, ValueError) as exc:
            raise InputError(source or name, f"invalid preset: {exc}") from None

    def to_dict(self) -> dict[str, Any]:
        """The whole preset (other sections kept) with the typed sections resolved."""
        out = copy.deepcopy(self.raw)
        out.update(name=self.name, model=self.model.to_dict(), loss=self.loss.to_dict(),
                   optim=self.optim.to_dict())
        return out


def apply_ablation(data: dict[str, Any], ablation: str | None) -> dict[str, Any]:
    """Return a copy of a preset mapping with ablation ``A1``…``A5`` applied (None: unchanged)."""
    out = copy.deepcopy(data)
    if ablation is None:
        return out
    if ablation not in ABLATIONS:
        raise InputError(None, f"unknown ablation {ablation!r}; choose one of {', '.join(ABLATIONS)}")
    for section, overrides in ABLATIONS[ablation].items():
        out.setdefault(section, {}).update(overrides)
    out["ablation"] = ablation
    return out


def preset_path(name: str | os.PathLike) -> Path:
    """A shipped preset name (``paper``, ``lite``, ``tiny``) or a path to a preset JSON file."""
    from resources import path as resource_path

    candidate = Path(name)
    if candidate.suffix.lower() == ".json" or candidate.exists():
        return candidate
    return resource_path(f"presets/{name}.json")


def load_preset_dict(name: str | os.PathLike) -> dict[str, Any]:
    """The raw mapping of a preset file, for callers that add or override sections."""
    p = preset_path(name)
    if not p.is_file():
        raise InputError(p, "preset not found (shipped presets: paper, lite, tiny)")
    return read_json_object(p, "preset")


def load_preset(name: str | os.PathLike, ablation: str | None = None) -> Preset:
    """Load a preset by name or path, optionally with an ablation applied."""
    p = preset_path(name)
    data = apply_ablation(load_preset_dict(p), ablation)
    return Preset.from_dict(data, name=Path(p).stem, source=str(p))
