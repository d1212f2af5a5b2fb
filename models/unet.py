"""U-Net (Ronneberger, Fischer & Brox, "U-Net: Convolutional Networks for
Biomedical Image Segmentation", MICCAI 2015).

Four down-sampling levels (two 3×3 convolutions, then 2×2 max pooling) from
64 to 1024 channels, and four up-sampling levels (2×2 transposed
convolution, concatenation with the skip connection of the same level, two
3×3 convolutions). Convolutions are padded, with batch norm, so the mask has
the input's size. The long skip connections keep early activations alive
until the end of the forward pass: the textbook case for memory planning.
"""

from __future__ import annotations

import torch
from torch import nn


def _double_conv(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(),
        nn.Conv2d(cout, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU())


class Up(nn.Module):
    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.up = nn.ConvTranspose2d(cin, cout, 2, stride=2)
        self.conv = _double_conv(2 * cout, cout)

    def forward(self, x, skip):
        return self.conv(torch.cat([skip, self.up(x)], dim=1))


class UNet(nn.Module):
    def __init__(self, in_channels: int = 3, num_classes: int = 2, base: int = 64):
        super().__init__()
        w = [base * 2 ** k for k in range(5)]
        self.inc = _double_conv(in_channels, w[0])
        self.pool = nn.MaxPool2d(2)
        self.down = nn.ModuleList(_double_conv(w[k], w[k + 1]) for k in range(4))
        self.up = nn.ModuleList(Up(w[k + 1], w[k]) for k in reversed(range(4)))
        self.head = nn.Conv2d(w[0], num_classes, 1)

    def forward(self, x):
        skips = [self.inc(x)]
        for down in self.down:
            skips.append(down(self.pool(skips[-1])))
        y = skips.pop()
        for up in self.up:
            y = up(y, skips.pop())
        return self.head(y)


def unet(num_classes: int = 2) -> UNet:
    return UNet(3, num_classes)
