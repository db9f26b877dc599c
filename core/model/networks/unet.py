"""The cryosection segmentation network S: a U-Net (Ronneberger et al.) on RGB in [0, 1].

Pre-trained on (c, s), then frozen while the generators train: it turns the segmentation labels
into a loss on c' (or, in ablation A4, on the reconstructed cryosection). Batch norm is fine here
because S runs in eval mode once frozen.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from core.model.networks.blocks import upsample


def _double_conv(in_ch: int, out_ch: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_ch, out_ch, 3, padding=1, bias=False), nn.BatchNorm2d(out_ch), nn.ReLU(inplace=True),
        nn.Conv2d(out_ch, out_ch, 3, padding=1, bias=False), nn.BatchNorm2d(out_ch), nn.ReLU(inplace=True),
    )


class UNet(nn.Module):
    """Encoder widths ``widths`` (one max-pool between levels), mirrored decoder, 1×1 head.

    Any H, W works: where pooling floored an odd size the upsampled map is padded to its skip.
    """

    def __init__(self, num_classes: int, widths: tuple[int, ...], upsample_mode: str = "deconv", in_ch: int = 3):
        super().__init__()
        self.num_classes = num_classes
        self.inc = _double_conv(in_ch, widths[0])
        self.downs = nn.ModuleList([_double_conv(a, b) for a, b in zip(widths[:-1], widths[1:])])
        self.ups = nn.ModuleList([upsample(b, a, upsample_mode) for a, b in zip(widths[:-1], widths[1:])][::-1])
        self.merges = nn.ModuleList([_double_conv(2 * a, a) for a in widths[:-1]][::-1])
        self.head = nn.Conv2d(widths[0], num_classes, 1)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        """Class logits (N, num_classes, H, W)."""
        x = self.inc(image)
        skips = []
        for down in self.downs:
            skips.append(x)
            x = down(F.max_pool2d(x, 2))
        for up, merge, skip in zip(self.ups, self.merges, reversed(skips)):
            x = up(x)
            dy, dx = skip.shape[-2] - x.shape[-2], skip.shape[-1] - x.shape[-1]
            if dy or dx:
                x = F.pad(x, (dx // 2, dx - dx // 2, dy // 2, dy - dy // 2))
            x = merge(torch.cat([skip, x], dim=1))
        return self.head(x)
