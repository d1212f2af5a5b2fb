"""The architectures memopt ships, written as plain ``torch.nn`` modules.

``ZOO`` maps a name to a :class:`ModelSpec`: how to build the module, its
example inputs and targets at a batch size, its training loss and the batch
sizes of the shipped instances. ``memopt build`` traces each one (on the
meta device: no weight is ever allocated) into inference and training
instances under ``instances/nn/``, so that solving them needs neither torch
nor onnx.

This package needs torch; it is loaded from its folder by
:func:`memopt.commands.build.load_zoo` (it is not part of the installed
``memopt`` package).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import torch
from torch.nn import functional as F

from .gpt2 import GPT2, gpt2_small
from .mobilenetv2 import MobileNetV2, mobilenet_v2
from .resnet import ResNet, resnet18, resnet50
from .unet import UNet, unet
from .vgg import VGG, vgg16
from .vit import ViT, vit_b16


@dataclass(frozen=True)
class ModelSpec:
    """A shipped architecture: builder, example inputs/targets per batch, loss, batch sizes."""

    name: str
    build: Callable[[], torch.nn.Module]
    inputs: Callable[[int], tuple]
    targets: Callable[[int], tuple]
    loss: Callable[..., Any]
    batches: tuple[int, ...]
    description: str


def _images(size: int) -> Callable[[int], tuple]:
    return lambda b: (torch.empty(b, 3, size, size, device="meta"),)


def _labels(b: int) -> tuple:
    return (torch.empty(b, dtype=torch.long, device="meta"),)


def _masks(size: int) -> Callable[[int], tuple]:
    return lambda b: (torch.empty(b, size, size, dtype=torch.long, device="meta"),)


GPT2_CONTEXT = 1024


def _tokens(b: int) -> tuple:
    return (torch.empty(b, GPT2_CONTEXT, dtype=torch.long, device="meta"),)


def _lm_loss(logits, targets):
    return F.cross_entropy(logits.reshape(-1, logits.size(-1)), targets.reshape(-1))


CNN_BATCHES = (1, 8, 32)
TRANSFORMER_BATCHES = (1, 8)

ZOO: dict[str, ModelSpec] = {s.name: s for s in [
    ModelSpec("resnet18", resnet18, _images(224), _labels, F.cross_entropy, CNN_BATCHES,
              "ResNet-18, 224x224 images, 1000 classes"),
    ModelSpec("resnet50", resnet50, _images(224), _labels, F.cross_entropy, CNN_BATCHES,
              "ResNet-50, 224x224 images, 1000 classes"),
    ModelSpec("vgg16", vgg16, _images(224), _labels, F.cross_entropy, CNN_BATCHES,
              "VGG-16 (configuration D), 224x224 images, 1000 classes"),
    ModelSpec("unet", unet, _images(256), _masks(256), F.cross_entropy, CNN_BATCHES,
              "U-Net, 64-1024 channels, 256x256 images, 2-class mask"),
    ModelSpec("mobilenetv2", mobilenet_v2, _images(224), _labels, F.cross_entropy, CNN_BATCHES,
              "MobileNetV2 (width 1.0), 224x224 images, 1000 classes"),
    ModelSpec("gpt2", gpt2_small, _tokens, _tokens, _lm_loss, TRANSFORMER_BATCHES,
              f"GPT-2 small (12 layers, d=768, 12 heads), {GPT2_CONTEXT} tokens"),
    ModelSpec("vit", vit_b16, _images(224), _labels, F.cross_entropy, TRANSFORMER_BATCHES,
              "ViT-B/16 (12 layers, d=768), 224x224 images, 1000 classes"),
]}

__all__ = ["ModelSpec", "ZOO", "GPT2", "MobileNetV2", "ResNet", "UNet", "VGG", "ViT",
           "gpt2_small", "mobilenet_v2", "resnet18", "resnet50", "unet", "vgg16", "vit_b16"]
