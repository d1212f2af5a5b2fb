"""Every architecture of the zoo at a test size: narrow, shallow, small images and sequences.

Each factory takes the batch size and returns ``(module, example_inputs,
targets, loss_fn)`` with real tensors (seeded), the form ``memopt run
models/tiny.py:NAME`` expects. The sizes keep the activations, not the
weights, the larger part of a step's memory (as at real sizes), so budgets
well below the traced order's peak are feasible; a step runs in
milliseconds on a CPU. ``TINY`` maps the zoo's architectures to them (the
zoo's other entries — ``gpt2-medium``, ``llama-1b``, ``llama-70b`` — are
other sizes of the same architectures).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from .gpt2 import GPT2
from .llama import Llama
from .mobilenetv2 import MobileNetV2
from .resnet import BasicBlock, Bottleneck, ResNet
from .unet import UNet
from .vgg import VGG
from .vit import ViT

Step = tuple[nn.Module, tuple, tuple, Callable[..., Any]]


def _images(batch: int, size: int, classes: int, seed: int = 0) -> tuple[tuple, tuple]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, 3, size, size, generator=g)
    y = torch.randint(0, classes, (batch,), generator=g)
    return (x,), (y,)


def _built(build: Callable[[], nn.Module], seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return build()


def resnet18(batch: int = 2) -> Step:
    m = _built(lambda: ResNet(BasicBlock, [2, 2, 2, 2], num_classes=10, widths=(4, 8, 16, 32)))
    return (m, *_images(batch, 64, 10), F.cross_entropy)


def resnet50(batch: int = 2) -> Step:
    m = _built(lambda: ResNet(Bottleneck, [1, 1, 1, 1], num_classes=10, widths=(4, 8, 8, 16)))
    return (m, *_images(batch, 64, 10), F.cross_entropy)


def vgg16(batch: int = 2) -> Step:
    m = _built(lambda: VGG([8, 8, "M", 16, 16, "M", 16, "M"], num_classes=10, hidden=32))
    return (m, *_images(batch, 56, 10), F.cross_entropy)


def unet(batch: int = 2) -> Step:
    m = _built(lambda: UNet(3, 2, base=4))
    g = torch.Generator().manual_seed(0)
    x = torch.randn(batch, 3, 32, 32, generator=g)
    y = torch.randint(0, 2, (batch, 32, 32), generator=g)
    return m, (x,), (y,), F.cross_entropy


def mobilenetv2(batch: int = 2) -> Step:
    m = _built(lambda: MobileNetV2(num_classes=10, width=0.25))
    return (m, *_images(batch, 64, 10), F.cross_entropy)


def _lm_loss(logits, targets):
    return F.cross_entropy(logits.reshape(-1, logits.size(-1)), targets.reshape(-1))


def gpt2(batch: int = 2) -> Step:
    m = _built(lambda: GPT2(vocab=64, n_ctx=32, d=16, n_layer=2, n_head=2))
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 64, (batch, 32), generator=g)
    y = torch.randint(0, 64, (batch, 32), generator=g)
    return m, (x,), (y,), _lm_loss


def llama(batch: int = 2) -> Step:
    m = _built(lambda: Llama(vocab=64, n_ctx=32, d=16, n_layer=2, n_head=2, n_kv_head=1, hidden=32))
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 64, (batch, 32), generator=g)
    y = torch.randint(0, 64, (batch, 32), generator=g)
    return m, (x,), (y,), _lm_loss


def vit(batch: int = 2) -> Step:
    m = _built(lambda: ViT(image=32, patch=4, d=16, n_layer=2, n_head=2, num_classes=10))
    return (m, *_images(batch, 32, 10), F.cross_entropy)


TINY: dict[str, Callable[[int], Step]] = {
    "resnet18": resnet18, "resnet50": resnet50, "vgg16": vgg16, "unet": unet, "mobilenetv2": mobilenetv2,
    "gpt2": gpt2, "vit": vit, "llama": llama,
}

__all__ = ["TINY", "gpt2", "llama", "mobilenetv2", "resnet18", "resnet50", "unet", "vgg16", "vit"]
