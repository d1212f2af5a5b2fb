"""MobileNetV2 (Sandler, Howard, Zhu, Zhmoginov & Chen, "MobileNetV2:
Inverted Residuals and Linear Bottlenecks", CVPR 2018), width 1.0.

Inverted residual blocks: a 1×1 expansion (factor t), a 3×3 depthwise
convolution, a linear 1×1 projection, with a residual connection when the
shape is kept. ReLU6 activations; 224×224 input, 1000 classes.
"""

from __future__ import annotations

from torch import nn

# (expansion t, channels c, repeats n, first stride s), Table 2 of the paper
SETTINGS = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)]


def _conv_bn(cin: int, cout: int, k: int, stride: int = 1, groups: int = 1, act: bool = True) -> nn.Sequential:
    layers = [nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False), nn.BatchNorm2d(cout)]
    if act:
        layers.append(nn.ReLU6())
    return nn.Sequential(*layers)


class InvertedResidual(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int, t: int):
        super().__init__()
        hidden = cin * t
        layers = [] if t == 1 else [_conv_bn(cin, hidden, 1)]
        layers += [_conv_bn(hidden, hidden, 3, stride, groups=hidden), _conv_bn(hidden, cout, 1, act=False)]
        self.block = nn.Sequential(*layers)
        self.residual = stride == 1 and cin == cout

    def forward(self, x):
        y = self.block(x)
        return x + y if self.residual else y


class MobileNetV2(nn.Module):
    def __init__(self, num_classes: int = 1000, width: float = 1.0):
        super().__init__()

        def ch(c: int) -> int:  # channels at the width multiplier (1.0: the paper's network)
            return max(1, round(c * width))

        layers: list[nn.Module] = [_conv_bn(3, ch(32), 3, 2)]
        cin = ch(32)
        for t, c, n, s in SETTINGS:
            for k in range(n):
                layers.append(InvertedResidual(cin, ch(c), s if k == 0 else 1, t))
                cin = ch(c)
        layers.append(_conv_bn(cin, ch(1280), 1))
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(ch(1280), num_classes))

    def forward(self, x):
        return self.classifier(self.pool(self.features(x)).flatten(1))


def mobilenet_v2(num_classes: int = 1000) -> MobileNetV2:
    return MobileNetV2(num_classes)
