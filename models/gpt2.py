"""A GPT-2-style decoder-only transformer (Radford et al., "Language Models
are Unsupervised Multitask Learners", 2019).

Token and learned position embeddings, ``n_layer`` pre-norm blocks (causal
multi-head self-attention written out as q·kᵀ, mask, softmax, ·v — the
attention matrix is materialised, as in the original — and a 4× GELU MLP),
a final layer norm and a language-model head tied to the token embedding. (Buffers are sliced
with ``narrow``: torch.fx cannot trace a Python slice whose bound is traced.)
The default configuration is GPT-2 small (124M parameters); :func:`gpt2_medium`
is GPT-2 medium (355M).
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F


class CausalSelfAttention(nn.Module):
    def __init__(self, d: int, n_head: int, n_ctx: int):
        super().__init__()
        self.n_head = n_head
        self.qkv = nn.Linear(d, 3 * d)
        self.proj = nn.Linear(d, d)
        self.register_buffer("masked", torch.ones(n_ctx, n_ctx, dtype=torch.bool).triu(1))

    def forward(self, x):
        B, T, C = x.size(0), x.size(1), x.size(2)
        hs = C // self.n_head
        q, k, v = self.qkv(x).split(C, dim=2)
        q = q.view(B, T, self.n_head, hs).transpose(1, 2)
        k = k.view(B, T, self.n_head, hs).transpose(1, 2)
        v = v.view(B, T, self.n_head, hs).transpose(1, 2)
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(hs))
        att = att.masked_fill(self.masked.narrow(0, 0, T).narrow(1, 0, T), float("-inf"))
        att = F.softmax(att, dim=-1)
        y = (att @ v).transpose(1, 2).reshape(B, T, C)
        return self.proj(y)


class Block(nn.Module):
    def __init__(self, d: int, n_head: int, n_ctx: int):
        super().__init__()
        self.ln1 = nn.LayerNorm(d)
        self.attn = CausalSelfAttention(d, n_head, n_ctx)
        self.ln2 = nn.LayerNorm(d)
        self.fc = nn.Linear(d, 4 * d)
        self.act = nn.GELU(approximate="tanh")
        self.out = nn.Linear(4 * d, d)

    def forward(self, x):
        x = x + self.attn(self.ln1(x))
        return x + self.out(self.act(self.fc(self.ln2(x))))


class GPT2(nn.Module):
    def __init__(self, vocab: int = 50257, n_ctx: int = 1024, d: int = 768, n_layer: int = 12, n_head: int = 12):
        super().__init__()
        self.wte = nn.Embedding(vocab, d)
        self.wpe = nn.Embedding(n_ctx, d)
        self.blocks = nn.ModuleList(Block(d, n_head, n_ctx) for _ in range(n_layer))
        self.ln_f = nn.LayerNorm(d)
        self.head = nn.Linear(d, vocab, bias=False)
        self.head.weight = self.wte.weight  # weight tying, as in GPT-2
        self.register_buffer("positions", torch.arange(n_ctx))

    def forward(self, idx):
        T = idx.size(1)
        x = self.wte(idx) + self.wpe(self.positions.narrow(0, 0, T))
        for block in self.blocks:
            x = block(x)
        return self.head(self.ln_f(x))


def gpt2_small(n_ctx: int = 1024) -> GPT2:
    """GPT-2 small: 12 layers, d = 768, 12 heads (124M parameters)."""
    return GPT2(n_ctx=n_ctx)


def gpt2_medium(n_ctx: int = 1024) -> GPT2:
    """GPT-2 medium: 24 layers, d = 1024, 16 heads (355M parameters)."""
    return GPT2(n_ctx=n_ctx, d=1024, n_layer=24, n_head=16)
