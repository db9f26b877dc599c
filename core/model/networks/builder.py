"""One builder for every network of the method, driven by ``core.model.config.ModelConfig``.

Ablations are switches in the config, and the builder creates only what a configuration uses:
A3/A4 build no c' decoder (nor its gates), A2/A3 build no segmentation net, A5 builds 1×1 convs
where the SE gates were. Every parameter built therefore takes part in the objective, which DDP
with ``find_unused_parameters=False`` requires.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Iterator

import torch
from torch import nn

from core.model.config import ModelConfig
from core.model.networks.discriminator import Discriminator
from core.model.networks.generators import Generator
from core.model.networks.unet import UNet


def build_generator(config: ModelConfig, role: str = "colorization") -> Generator:
    """G_m→ĉ (``role="colorization"``: 1 → 3 channels, outputs ĉ and, unless ablated, c')
    or G_c→m̂ (``role="grayscale"``: 3 → 1 channel, output m̂)."""
    if role == "colorization":
        in_ch, out_ch, names = 1, 3, config.generator_outputs
    elif role == "grayscale":
        in_ch, out_ch, names = 3, 1, ("m_hat",)
    else:
        raise ValueError(f"unknown generator role {role!r} (colorization or grayscale)")
    return Generator(in_ch, out_ch, names, config.widths, config.multiscale_widths, config.n_blocks,
                     config.se_reduction, config.separable, config.upsample, config.skip_gate,
                     checkpointing=config.checkpointing)


def build_discriminator(config: ModelConfig, in_channels: int) -> Discriminator:
    """D_c (``in_channels=3``) or D_m (``in_channels=1``)."""
    return Discriminator(in_channels, config.disc_widths)


def build_segmentation(config: ModelConfig, num_classes: int | None = None) -> UNet:
    """The cryosection U-Net; ``num_classes`` (from the label table) wins over the config's."""
    classes = num_classes if num_classes is not None else config.num_classes
    if classes is None:
        raise ValueError("the segmentation net needs num_classes (from the label table or the model config)")
    return UNet(classes, config.unet_widths, config.upsample)


@dataclass
class Networks:
    """The networks of one configuration. Fields may be swapped for DDP wrappers
    (``dataclasses.replace(nets, g_mc=DDP(nets.g_mc))``); ``seg`` is None when not built."""

    config: ModelConfig
    g_mc: nn.Module
    g_cm: nn.Module
    d_c: nn.Module
    d_m: nn.Module
    seg: nn.Module | None = None

    def modules(self) -> dict[str, nn.Module]:
        """Built networks by name (the names used in checkpoints)."""
        named = {"g_mc": self.g_mc, "g_cm": self.g_cm, "d_c": self.d_c, "d_m": self.d_m, "seg": self.seg}
        return {k: v for k, v in named.items() if v is not None}

    def generator_parameters(self) -> Iterator[nn.Parameter]:
        yield from self.g_mc.parameters()
        yield from self.g_cm.parameters()

    def discriminator_parameters(self) -> Iterator[nn.Parameter]:
        yield from self.d_c.parameters()
        yield from self.d_m.parameters()

    def to(self, device: torch.device | str) -> "Networks":
        for module in self.modules().values():
            module.to(device)
        return self

    def freeze_segmentation(self) -> None:
        """Put S in eval mode without gradients for colorization training: pre-trained on (c, s), it stays
        fixed there (the paper), and gradients only pass through it into the generators."""
        if self.seg is not None:
            self.seg.eval()
            self.seg.requires_grad_(False)


def build_networks(config: ModelConfig, num_classes: int | None = None, seed: int | None = None) -> Networks:
    """Build G_m→ĉ, G_c→m̂, D_c, D_m and (unless ablated) S; ``seed`` makes the init reproducible
    without touching the caller's global RNG."""
    def build() -> Networks:
        seg = build_segmentation(config, num_classes) if config.segmentation != "none" else None
        used = config if seg is None else dataclasses.replace(config, num_classes=seg.num_classes)
        return Networks(used, build_generator(config, "colorization"), build_generator(config, "grayscale"),
                        build_discriminator(config, 3), build_discriminator(config, 1), seg)

    if seed is None:
        return build()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build()
