"""What a training run adds to a preset's model, loss and optimiser sections: its schedule (the
``train`` section, `TrainConfig`) and its training planes' augmentation (``augment``, applied by
`core.dataset.Augment`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from core.model.outputs import NEEDS_CALIBRATION, OUTPUTS
from core.model.section import Section, check_positive_int

PRECISIONS = ("auto", "fp32", "bf16")
#: A training run exports no colour calibration (`python -m train calibrate` adds one).
SERVE_CHOICES = ("auto", *(name for name in OUTPUTS if name not in NEEDS_CALIBRATION))
#: Budget keys of which the U-Net pre-training has its own copy in ``train``, prefixed ``seg_``.
PER_TASK_KEYS = ("batch_size", "epochs", "max_steps", "max_minutes")


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
    exported model (0: off). ``precision`` "auto" means bf16 autocast on GPUs that run it natively (compute
    capability 8.0 on), fp32 elsewhere.
    ``serve`` is the output the exported checkpoint declares; "auto" picks the one with the lowest
    ΔE to the true colorization on the test planes when the data has it, else ĉ — or, with
    ``serve_volumes`` (phantom seeds such as "200-201", validation subjects neither trained nor
    tested on), the lowest body ΔE on whole volumes of those seeds as ``mricolor colorize`` paints
    them (`core.evaluation.volumes`), one volume per kind in ``serve_scans``.
    ``keep_exports`` also keeps each checkpoint's exported model as ``exports/model-<step>.safetensors``
    (the candidates a model is chosen from on validation volumes; otherwise each export replaces
    the last).
    ``check_sync`` gathers a checksum of every network from every process after each step and
    stops when they differ (a debug switch that proves gradients are all-reduced).
    ``micro_batch`` (colorization) runs each process's batch through the networks that many planes
    at a time and adds up their gradients before one optimiser step: the same global batch in the
    memory of a smaller one (None: the whole batch at once; it must divide ``batch_size``).
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
    keep_exports: bool = False
    sample_every: int = 200
    sample_count: int = 4
    log_every: int = 10
    ema_decay: float = 0.0
    seed: int = 0
    num_workers: int = 0
    precision: str = "auto"
    serve: str = "auto"
    serve_volumes: str | None = None
    serve_scans: tuple[str, ...] = ("body",)
    eval_planes: int | None = None
    check_sync: bool = False
    micro_batch: int | None = None
    seg_epochs: int = 5
    seg_max_steps: int | None = None
    seg_max_minutes: float | None = None
    seg_batch_size: int = 8
    seg_lr: float = 1e-3
    seg_class_balance: bool = False

    def __post_init__(self) -> None:
        check_positive_int(self, "image_size", "batch_size", "epochs", "checkpoint_every", "keep_checkpoints",
                           "sample_every", "sample_count", "log_every", "seg_epochs", "seg_batch_size")
        check_positive_int(self, "max_steps", "seg_max_steps", "eval_planes", "micro_batch", optional=True)
        if self.micro_batch is not None and self.batch_size % self.micro_batch:
            raise ValueError(f"micro_batch ({self.micro_batch}) must divide batch_size ({self.batch_size})")
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
        if self.serve not in SERVE_CHOICES:
            raise ValueError(f"serve must be one of {SERVE_CHOICES}, got {self.serve!r}")
        if isinstance(self.serve_scans, str) or not self.serve_scans:
            raise ValueError(f"serve_scans must be a list of scan kinds, got {self.serve_scans!r}")
        object.__setattr__(self, "serve_scans", tuple(str(s) for s in self.serve_scans))
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
