"""VGG-16 (Simonyan & Zisserman, "Very Deep Convolutional Networks for
Large-Scale Image Recognition", ICLR 2015), configuration D: thirteen 3×3
convolutions in five blocks separated by max pooling, then three fully
connected layers (4096, 4096, 1000) with dropout. 224×224 input.
"""

from __future__ import annotations

from torch import nn

CONFIG_D = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"]


class VGG(nn.Module):
    def __init__(self, config=CONFIG_D, num_classes: int = 1000, hidden: int = 4096):
        # hidden: width of the two hidden fully connected layers (smaller ones make test-size networks);
        # the classifier reads the last block's channels on a 7x7 grid (224 / 2**5 for configuration D)
        super().__init__()
        layers: list[nn.Module] = []
        cin = 3
        for c in config:
            if c == "M":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                layers += [nn.Conv2d(cin, c, 3, padding=1), nn.ReLU()]
                cin = c
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(
            nn.Linear(cin * 7 * 7, hidden), nn.ReLU(), nn.Dropout(0.5),
            nn.Linear(hidden, hidden), nn.ReLU(), nn.Dropout(0.5),
            nn.Linear(hidden, num_classes))

    def forward(self, x):
        return self.classifier(self.features(x).flatten(1))


def vgg16(num_classes: int = 1000) -> VGG:
    return VGG(CONFIG_D, num_classes)
