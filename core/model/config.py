"""The sections of a preset and the preset files in ``resources/presets`` that hold them.

A preset is one JSON object with a section per concern: ``model`` (the architecture, consumed by
``core.model.networks.build_networks``), ``loss`` (weights of the objective, ``core.model.losses``),
``optim`` (Adam settings), ``train`` (the schedule of a training run) and, optionally, ``augment``
(the training planes' augmentation); the last two are `core.model.train_config`'s. Each section
is a frozen `core.model.section.Section` dataclass that refuses unknown keys and bad values.

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
from core.model.section import Section

UPSAMPLE_MODES = ("deconv", "resize_conv")
SKIP_GATES = ("se", "conv")
SEGMENTATION_INPUTS = ("c_prime", "reconstruction", "none")
ADVERSARIAL_MODES = ("bce", "lsgan")
L1_SPACES = ("rgb", "lab")


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
    checkpointing: bool = False

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
    ``body_only`` scores the colorizations inside the body only: where the labels are background,
    ĉ and c' take the target's own pixels before any loss sees them, as the Colorizer paints the
    background outside the body at inference. The network is then never asked to tell air in the
    body (lungs, bowel gas) from the air around it, which a 128-pixel plane often cannot see;
    False keeps the paper's objective over the whole plane.
    ``l1_balance`` (p ≥ 0) weights L1(c', c) per pixel by its tissue, w_k = (median f / f_k)^p
    (median-frequency balancing over the training planes, capped at 10 before the power): the
    small tissues (bone, bowel, blood, CSF) that a plain L1 lets the large ones outvote get their
    colour's share; 0 keeps every pixel equal.
    ``l1_space`` is where L1(c', c) measures colour: "rgb" (the channels as stored) or "lab"
    (CIE L*a*b* / 100, `core.imaging.rgb_to_lab`), the space of ΔE00, the score the product is
    judged by. In RGB a hue error (blue-grey CSF painted warm grey) costs less than a slight
    change of lightness; in L*a*b* it costs more, as in ΔE.
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
    body_only: bool = False
    l1_balance: float = 0.0
    l1_space: str = "rgb"

    def __post_init__(self) -> None:
        if self.adversarial not in ADVERSARIAL_MODES:
            raise ValueError(f"adversarial must be one of {ADVERSARIAL_MODES}, got {self.adversarial!r}")
        if self.l1_space not in L1_SPACES:
            raise ValueError(f"l1_space must be one of {L1_SPACES}, got {self.l1_space!r}")
        windows = _tuple_of_ints(self.ssim_windows, "ssim_windows")
        if not windows or any(w % 2 == 0 for w in windows):
            raise ValueError(f"ssim_windows must be odd sizes, got {self.ssim_windows!r}")
        object.__setattr__(self, "ssim_windows", windows)
        if self.class_weights is not None:
            object.__setattr__(self, "class_weights", tuple(float(w) for w in self.class_weights))
        for name in ("lambda_adv", "lambda_rec", "lambda_ssim", "lambda_seg", "lambda_l1_c_prime", "l1_balance"):
            if not isinstance(getattr(self, name), (int, float)) or getattr(self, name) < 0:
                raise ValueError(f"{name} must be a non-negative number, got {getattr(self, name)!r}")


@dataclass(frozen=True)
class OptimConfig(Section):
    """Adam settings of the generators and of the discriminators (the U-Net's are ``train.seg_lr``:
    S is pre-trained on its own and stays frozen while the GAN trains).

    ``decay_steps`` > 0 lowers both learning rates linearly from ``lr_g``/``lr_d`` at the run's
    first step to 0 at step ``decay_steps`` (the reference CycleGAN's linear decay, as one line
    over the run's steps; a resumed run goes on along it, a run started with ``--init-from``
    starts it again). A run that ends at constant rates stops wherever Adam's noise left it;
    a decayed end settles it. 0 keeps the rates constant, as the paper trains.
    """

    name: ClassVar[str] = "optim"

    lr_g: float = 2e-4
    lr_d: float = 2e-4
    betas: tuple[float, float] = (0.5, 0.999)
    decay_steps: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "betas", tuple(float(b) for b in self.betas))
        if len(self.betas) != 2:
            raise ValueError(f"betas needs two numbers, got {self.betas!r}")
        if isinstance(self.decay_steps, bool) or not isinstance(self.decay_steps, int) or self.decay_steps < 0:
            raise ValueError(f"decay_steps must be a whole number ≥ 0, got {self.decay_steps!r}")

    def rate_factor(self, step: int) -> float:
        """The fraction of ``lr_g``/``lr_d`` that step ``step`` (1 = the run's first) trains at."""
        if self.decay_steps == 0:
            return 1.0
        return max(0.0, 1.0 - (step - 1) / self.decay_steps)


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
