"""The generators: a multiscale encoder, an SE bottleneck and one or two decoders.

G_m→ĉ has two decoders with their own weights: c' (pseudo-cryosection) and ĉ (colorized MRI).
At every decoder resolution the c' decoder's features pass an SE gate and are added into the ĉ
decoder, so the colours that segmentation and SSIM(c, c') teach the c' decoder reach ĉ; the
encoder's skips into each decoder are SE-gated too (docs/method.md). G_c→m̂ is the same generator with
one decoder. Outputs go through a sigmoid: images live in [0, 1].
"""
from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from core.model.networks.blocks import (MultiscaleBranches, SEResidualBlock, conv, conv_in_relu, instance_norm,
                                        recomputed, skip_gate, upsample)


class MultiscaleEncoder(nn.Module):
    """Full-resolution branch (with skips at H and H/2) + m/2, m/4 branches fused at H/4.

    The full-resolution branch is c7s1-w0, then two stride-2 convs to w1 and w2 (the authors'
    layout). At H/4 the summed m/2 + m/4 features are concatenated with it and a 1×1 conv brings
    the width back to w2 for the SE bottleneck.
    """

    def __init__(self, in_ch: int, widths: tuple[int, int, int], ms_widths: tuple[int, int, int],
                 n_blocks: int, reduction: int, separable: bool, checkpointing: bool = False):
        super().__init__()
        w0, w1, w2 = widths
        self.stem = conv_in_relu(in_ch, w0, 7)
        self.down1 = conv_in_relu(w0, w1, 3, 2, separable=separable)
        self.down2 = conv_in_relu(w1, w2, 3, 2, separable=separable)
        self.multiscale = MultiscaleBranches(in_ch, ms_widths, separable)
        self.fuse = conv_in_relu(w2 + ms_widths[2], w2, 1)
        self.bottleneck = nn.Sequential(*[SEResidualBlock(w2, reduction, separable, checkpointing)
                                          for _ in range(n_blocks)])

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Return the bottleneck feature (H/4) and the skips [H/2, H] in decoding order."""
        e0 = self.stem(image)
        e1 = self.down1(e0)
        main = self.down2(e1)
        x = self.fuse(torch.cat([main, self.multiscale(image)], dim=1))
        return self.bottleneck(x), [e1, e0]


class Decoder(nn.Module):
    """Two ×2 up stages (w2→w1→w0) with gated encoder skips, then c7s1-out and a sigmoid.

    With ``cross`` True each stage also takes a partner decoder's features at the same
    resolution through its own gate (the c' → ĉ link); those partner features are passed to
    ``forward``. The stage features are returned so a partner can be fed from them.
    ``checkpointing`` recomputes each stage in the backward pass (see `recomputed`).
    """

    def __init__(self, out_ch: int, widths: tuple[int, int, int], upsample_mode: str, gate: str,
                 reduction: int, separable: bool, cross: bool, checkpointing: bool = False):
        super().__init__()
        self.checkpointing = checkpointing
        w0, w1, w2 = widths
        self.ups = nn.ModuleList([
            nn.Sequential(upsample(w2, w1, upsample_mode, separable=separable), instance_norm(w1), nn.ReLU(inplace=True)),
            nn.Sequential(upsample(w1, w0, upsample_mode, separable=separable), instance_norm(w0), nn.ReLU(inplace=True)),
        ])
        self.skip_gates = nn.ModuleList([skip_gate(w1, gate, reduction), skip_gate(w0, gate, reduction)])
        self.cross_gates = (nn.ModuleList([skip_gate(w1, gate, reduction), skip_gate(w0, gate, reduction)])
                            if cross else None)
        self.head = conv(w0, out_ch, 7, separable=separable, bias=True)

    def forward(self, x: torch.Tensor, skips: list[torch.Tensor],
                partner: list[torch.Tensor] | None = None) -> tuple[torch.Tensor, list[torch.Tensor]]:
        features = []
        for i in range(len(self.ups)):
            inputs = (x, skips[i]) if self.cross_gates is None else (x, skips[i], partner[i])
            x = recomputed(self._stage(i), *inputs, enabled=self.checkpointing)
            features.append(x)
        return torch.sigmoid(self.head(x)), features

    def _stage(self, i: int) -> Callable[..., torch.Tensor]:
        """Stage ``i`` as a function of its inputs: upsampled x + gated skip [+ gated partner]."""
        def run(x: torch.Tensor, skip: torch.Tensor, partner: torch.Tensor | None = None) -> torch.Tensor:
            x = self.ups[i](x) + self.skip_gates[i](skip)
            return x if partner is None else x + self.cross_gates[i](partner)
        return run


class Generator(nn.Module):
    """Encoder + one decoder per output name; with two, the second feeds the first (c' → ĉ).

    ``forward`` returns a dict {output name: image (N, C, H, W) in [0, 1]} so callers (and the
    losses) address outputs by name whatever the ablation. H and W must be divisible by 4.
    """

    def __init__(self, in_ch: int, out_ch: int, output_names: tuple[str, ...], widths: tuple[int, int, int],
                 ms_widths: tuple[int, int, int], n_blocks: int, reduction: int, separable: bool,
                 upsample_mode: str, gate: str, *, checkpointing: bool = False):
        super().__init__()
        if len(output_names) not in (1, 2):
            raise ValueError("a generator has one or two decoders")
        self.in_channels, self.out_channels = in_ch, out_ch
        self.output_names = tuple(output_names)
        self.encoder = MultiscaleEncoder(in_ch, widths, ms_widths, n_blocks, reduction, separable, checkpointing)
        dual = len(output_names) == 2
        self.decoder = Decoder(out_ch, widths, upsample_mode, gate, reduction, separable, cross=dual,
                               checkpointing=checkpointing)
        self.aux_decoder = (Decoder(out_ch, widths, upsample_mode, gate, reduction, separable, cross=False,
                                    checkpointing=checkpointing) if dual else None)

    def forward(self, image: torch.Tensor, outputs: tuple[str, ...] | None = None) -> dict[str, torch.Tensor]:
        """``outputs``: the names wanted (None: all); asking for c' alone skips the ĉ decoder,
        which a served ``guided`` output does not need (a sixth of an inference's work)."""
        h, w = image.shape[-2:]
        if h % 4 or w % 4:
            raise ValueError(f"generator input height and width must be divisible by 4, got {h}×{w}")
        x, skips = self.encoder(image)
        if self.aux_decoder is None:
            out, _ = self.decoder(x, skips)
            return {self.output_names[0]: out}
        aux, aux_features = self.aux_decoder(x, skips)
        if outputs is not None and self.output_names[0] not in outputs:
            return {self.output_names[1]: aux}
        out, _ = self.decoder(x, skips, aux_features)
        return {self.output_names[0]: out, self.output_names[1]: aux}
