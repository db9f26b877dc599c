"""Building blocks shared by the generators and the U-Net.

Convolutions followed by instance or batch norm carry no bias: the norm subtracts the mean, so a
bias there would be a parameter that never receives a gradient (a dead branch under DDP).
"""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint


def recomputed(fn: Callable[..., torch.Tensor], *args: torch.Tensor, enabled: bool) -> torch.Tensor:
    """``fn(*args)``, with ``enabled`` and gradients on keeping only its inputs and recomputing the
    rest during backward (activation checkpointing, non-reentrant: works under DDP and autocast)."""
    if enabled and torch.is_grad_enabled():
        return checkpoint(fn, *args, use_reentrant=False)
    return fn(*args)


class SeparableConv2d(nn.Module):
    """Depthwise k×k + pointwise 1×1, the depthwise part on the narrower side.

    Going narrow→wide runs the depthwise conv on the input, wide→narrow runs the pointwise conv
    first; either way the k×k cost is paid on min(in, out) channels. The receptive field and the
    output size are those of the dense ``Conv2d(in, out, k, stride, padding)`` it replaces.
    """

    def __init__(self, in_ch: int, out_ch: int, kernel: int, stride: int = 1, padding: int = 0,
                 padding_mode: str = "zeros", bias: bool = True):
        super().__init__()
        dw_ch = min(in_ch, out_ch)
        depthwise = nn.Conv2d(dw_ch, dw_ch, kernel, stride, padding, groups=dw_ch, bias=False,
                              padding_mode=padding_mode)
        pointwise = nn.Conv2d(in_ch, out_ch, 1, bias=bias)
        self.body = nn.Sequential(depthwise, pointwise) if in_ch <= out_ch else nn.Sequential(pointwise, depthwise)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


def conv(in_ch: int, out_ch: int, kernel: int, stride: int = 1, *, separable: bool = False,
         bias: bool = False) -> nn.Module:
    """A 'same'-padded k×k convolution with reflect padding (as CycleGAN, against border
    artefacts), optionally separable.

    Separable is applied only to feature maps (more than 4 input channels): on a 1- or 3-channel
    image a depthwise conv would throw away cross-channel mixing for no saving.
    """
    padding = kernel // 2
    mode = "reflect" if padding else "zeros"
    if separable and kernel > 1 and in_ch > 4:
        return SeparableConv2d(in_ch, out_ch, kernel, stride, padding, mode, bias)
    return nn.Conv2d(in_ch, out_ch, kernel, stride, padding, bias=bias, padding_mode=mode)


def instance_norm(channels: int) -> nn.GroupNorm:
    """Instance norm without affine parameters, computed as GroupNorm with one channel per group.

    Identical maths to ``nn.InstanceNorm2d(channels)`` (no running statistics, so train and eval
    agree), but PyTorch's CPU kernel for it is 4–7× faster, which matters at full resolution.
    """
    return nn.GroupNorm(channels, channels, affine=False)


def conv_in_relu(in_ch: int, out_ch: int, kernel: int, stride: int = 1, *, separable: bool = False) -> nn.Sequential:
    """conv → InstanceNorm → ReLU, the generators' basic unit."""
    return nn.Sequential(conv(in_ch, out_ch, kernel, stride, separable=separable),
                         instance_norm(out_ch), nn.ReLU(inplace=True))


class SqueezeExcitation(nn.Module):
    """Channel gate of Hu et al.: x · σ(W₂ ReLU(W₁ avgpool(x))) (the paper's compression-activation).

    The hidden width is channels // reduction but at least 4, so narrow presets keep a usable gate.
    """

    def __init__(self, channels: int, reduction: int = 16):
        super().__init__()
        hidden = max(channels // reduction, 4)
        self.fc1 = nn.Conv2d(channels, hidden, 1)
        self.fc2 = nn.Conv2d(hidden, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = F.adaptive_avg_pool2d(x, 1)
        return x * torch.sigmoid(self.fc2(F.relu(self.fc1(w), inplace=True)))


def skip_gate(channels: int, kind: str, reduction: int) -> nn.Module:
    """The module on a skip connection: SE gate (the method) or a plain 1×1 conv (ablation A5).

    A 1×1 conv is the fair "conventional" stand-in: like SE it mixes no space, but its channel
    weighting is a fixed matrix instead of one computed from the image's global context.
    """
    if kind == "se":
        return SqueezeExcitation(channels, reduction)
    if kind == "conv":
        return nn.Conv2d(channels, channels, 1)
    raise ValueError(f"unknown skip gate {kind!r}")


class SEResidualBlock(nn.Module):
    """Bottleneck block: x + SE(IN(conv(ReLU(IN(conv(x)))))), the SE-ResNet basic block;
    ``checkpointing`` recomputes its body in the backward pass (see `recomputed`)."""

    def __init__(self, channels: int, reduction: int = 16, separable: bool = False, checkpointing: bool = False):
        super().__init__()
        self.checkpointing = checkpointing
        self.body = nn.Sequential(
            conv_in_relu(channels, channels, 3, separable=separable),
            conv(channels, channels, 3, separable=separable),
            instance_norm(channels),
            SqueezeExcitation(channels, reduction),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + recomputed(self.body, x, enabled=self.checkpointing)


class ResizeConv(nn.Module):
    """×2 nearest-neighbour upsampling then a 3×3 conv: no checkerboard (Odena et al., distill.pub).

    When separable, the pointwise half runs before the upsampling (it commutes with nearest
    resizing exactly) so only the cheap depthwise conv runs at the higher resolution.
    """

    def __init__(self, in_ch: int, out_ch: int, separable: bool = False):
        super().__init__()
        self.separable = separable and in_ch > 4
        if self.separable:
            self.pointwise = nn.Conv2d(in_ch, out_ch, 1, bias=False)
            self.conv = nn.Conv2d(out_ch, out_ch, 3, padding=1, groups=out_ch, bias=False, padding_mode="reflect")
        else:
            self.conv = nn.Conv2d(in_ch, out_ch, 3, padding=1, bias=False, padding_mode="reflect")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.separable:
            x = self.pointwise(x)
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


def upsample(in_ch: int, out_ch: int, mode: str, *, separable: bool = False) -> nn.Module:
    """×2 upsampling convolution: ``deconv`` (transposed 3×3, the authors' code) or ``resize_conv``.

    No bias: every caller follows it with a norm (or, in the U-Net, a conv + batch norm).
    """
    if mode == "resize_conv":
        return ResizeConv(in_ch, out_ch, separable)
    if mode == "deconv":
        if separable and in_ch > 4:
            return nn.Sequential(nn.Conv2d(in_ch, out_ch, 1, bias=False),
                                 nn.ConvTranspose2d(out_ch, out_ch, 3, 2, 1, output_padding=1, groups=out_ch,
                                                    bias=False))
        return nn.ConvTranspose2d(in_ch, out_ch, 3, 2, 1, output_padding=1, bias=False)
    raise ValueError(f"unknown upsampling mode {mode!r}")


class MultiscaleBranches(nn.Module):
    """The m/2 and m/4 branches of the multiscale input module, summed at H/4.

    Each branch is three 3×3 convs with ReLU (no norm, as in the authors' code); the m/2 branch
    strides its last conv so both land on H/4, where they are summed. The caller concatenates the
    sum with the full-resolution branch (the paper's fusion order). Downsampling is area
    averaging: exact for H, W divisible by 4, antialiased, and cheap.
    """

    def __init__(self, in_ch: int, widths: tuple[int, int, int], separable: bool = False):
        super().__init__()
        self.branch2 = self._branch(in_ch, widths, last_stride=2, separable=separable)
        self.branch4 = self._branch(in_ch, widths, last_stride=1, separable=separable)

    @staticmethod
    def _branch(in_ch: int, widths: tuple[int, int, int], last_stride: int, separable: bool) -> nn.Sequential:
        a, b, c = widths
        return nn.Sequential(
            conv(in_ch, a, 3, bias=True), nn.ReLU(inplace=True),
            conv(a, b, 3, separable=separable, bias=True), nn.ReLU(inplace=True),
            conv(b, c, 3, last_stride, separable=separable, bias=True), nn.ReLU(inplace=True),
        )

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.branch2(F.avg_pool2d(image, 2)) + self.branch4(F.avg_pool2d(image, 4))
