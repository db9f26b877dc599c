"""The image discriminator: five 4×4 convs, global average pooling, a linear layer to one logit.

Global pooling makes the logit independent of the input size (64, 128, 256 all work) and the
linear head is the paper's; the loss applies the sigmoid (BCE with logits), which is safe under
autocast, or uses the logit directly (LSGAN).
"""
from __future__ import annotations

import torch
from torch import nn

from core.model.networks.blocks import instance_norm


class Discriminator(nn.Module):
    """C(d0, s2) → C(d1, s2, IN) → C(d2, s2, IN) → C(d3, s1, IN) → C(d4, s1) → pool → linear.

    Instance norm sits on the three middle convs, as in the authors' code; the last conv keeps a
    bias and no norm, because a per-channel mean taken right after instance norm is zero and
    pooling would then see only the shape of the distribution.
    """

    def __init__(self, in_ch: int, widths: tuple[int, int, int, int, int]):
        super().__init__()
        d0, d1, d2, d3, d4 = widths
        layers: list[nn.Module] = [nn.Conv2d(in_ch, d0, 4, 2, 1), nn.LeakyReLU(0.2, inplace=True)]
        for cin, cout, stride in ((d0, d1, 2), (d1, d2, 2), (d2, d3, 1)):
            layers += [nn.Conv2d(cin, cout, 4, stride, 1, bias=False), instance_norm(cout),
                       nn.LeakyReLU(0.2, inplace=True)]
        layers += [nn.Conv2d(d3, d4, 4, 1, 1), nn.LeakyReLU(0.2, inplace=True)]
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(d4, 1)
        self.in_channels = in_ch

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        """Logits of shape (N,): real > 0 > fake once trained."""
        return self.head(self.features(image).mean(dim=(2, 3))).squeeze(1)
