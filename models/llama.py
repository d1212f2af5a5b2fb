"""A Llama-style decoder-only transformer (Touvron et al., "LLaMA: Open and
Efficient Foundation Language Models", 2023; "Llama 2", 2023), as plain
``torch.nn``.

Pre-norm blocks with **RMSNorm** (Zhang & Sennrich, NeurIPS 2019: ``x ·
rsqrt(mean(x²) + ε) · g``, no mean subtraction, no bias), **rotary position
embeddings** (Su et al., "RoFormer", 2021: q and k rotated pairwise by
position-dependent angles, the ``rotate_half`` form of the reference code),
**grouped-query attention** (Ainslie et al., EMNLP 2023: ``n_kv_head`` key and
value heads, each shared by ``n_head / n_kv_head`` query heads; written out as
q·kᵀ, causal mask, softmax, ·v, so the attention matrix is materialised as in
:mod:`models.gpt2`), and a **SwiGLU** MLP (Shazeer, "GLU Variants Improve
Transformer", 2020: ``down(silu(gate(x)) · up(x))``). No bias anywhere, no
learned position embedding, an untied language-model head.

Presets: :func:`llama_small` (a few layers, for tests and quick runs),
:func:`llama_1b` (the 1.1B-parameter configuration of TinyLlama: 22 layers,
d = 2048, 32 query heads, 4 key/value heads, MLP width 5632, vocabulary
32000) and :func:`llama_70b` (Llama 2 70B's shape: 80 layers, d = 8192, 64 / 8
heads, MLP width 28672); every size is a constructor argument (``n_layer=32``
for a deeper one). Buffers (the rotary tables, the causal mask) are sliced with
``narrow``: torch.fx cannot trace a Python slice whose bound is traced.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F


class RMSNorm(nn.Module):
    def __init__(self, d: int, eps: float = 1e-5):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(d))

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


def rotate_half(x):
    """(x1, x2) -> (-x2, x1) on the two halves of the last dimension."""
    h = x.size(-1) // 2
    return torch.cat((-x.narrow(-1, h, h), x.narrow(-1, 0, h)), dim=-1)


class Attention(nn.Module):
    def __init__(self, d: int, n_head: int, n_kv_head: int, n_ctx: int, rope_base: float = 10000.0):
        super().__init__()
        if d % n_head or n_head % n_kv_head:
            raise ValueError(f"d={d} must be a multiple of n_head={n_head}, itself a multiple of "
                             f"n_kv_head={n_kv_head}")
        self.n_head, self.n_kv_head, self.hd = n_head, n_kv_head, d // n_head
        self.q_proj = nn.Linear(d, n_head * self.hd, bias=False)
        self.k_proj = nn.Linear(d, n_kv_head * self.hd, bias=False)
        self.v_proj = nn.Linear(d, n_kv_head * self.hd, bias=False)
        self.o_proj = nn.Linear(n_head * self.hd, d, bias=False)
        inv = 1.0 / rope_base ** (torch.arange(0, self.hd, 2, dtype=torch.float32) / self.hd)
        angles = torch.outer(torch.arange(n_ctx, dtype=torch.float32), inv)
        angles = torch.cat((angles, angles), dim=-1)  # (n_ctx, hd)
        self.register_buffer("cos", angles.cos(), persistent=False)
        self.register_buffer("sin", angles.sin(), persistent=False)
        self.register_buffer("masked", torch.ones(n_ctx, n_ctx, dtype=torch.bool).triu(1), persistent=False)

    def forward(self, x):
        B, T = x.size(0), x.size(1)
        nh, nkv, hd = self.n_head, self.n_kv_head, self.hd
        q = self.q_proj(x).view(B, T, nh, hd).transpose(1, 2)
        k = self.k_proj(x).view(B, T, nkv, hd).transpose(1, 2)
        v = self.v_proj(x).view(B, T, nkv, hd).transpose(1, 2)
        cos, sin = self.cos.narrow(0, 0, T), self.sin.narrow(0, 0, T)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        if nkv != nh:  # grouped-query attention: each key/value head serves nh / nkv query heads
            rep = nh // nkv
            k = k.unsqueeze(2).expand(B, nkv, rep, T, hd).reshape(B, nh, T, hd)
            v = v.unsqueeze(2).expand(B, nkv, rep, T, hd).reshape(B, nh, T, hd)
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(hd))
        att = att.masked_fill(self.masked.narrow(0, 0, T).narrow(1, 0, T), float("-inf"))
        att = F.softmax(att, dim=-1)
        y = (att @ v).transpose(1, 2).reshape(B, T, nh * hd)
        return self.o_proj(y)


class SwiGLU(nn.Module):
    def __init__(self, d: int, hidden: int):
        super().__init__()
        self.gate_proj = nn.Linear(d, hidden, bias=False)
        self.up_proj = nn.Linear(d, hidden, bias=False)
        self.down_proj = nn.Linear(hidden, d, bias=False)

    def forward(self, x):
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class DecoderBlock(nn.Module):
    def __init__(self, d: int, n_head: int, n_kv_head: int, hidden: int, n_ctx: int, eps: float):
        super().__init__()
        self.attn_norm = RMSNorm(d, eps)
        self.attn = Attention(d, n_head, n_kv_head, n_ctx)
        self.mlp_norm = RMSNorm(d, eps)
        self.mlp = SwiGLU(d, hidden)

    def forward(self, x):
        x = x + self.attn(self.attn_norm(x))
        return x + self.mlp(self.mlp_norm(x))


class Llama(nn.Module):
    """Token embedding, ``n_layer`` decoder blocks, a final RMSNorm and an untied head (logits)."""

    def __init__(self, vocab: int = 32000, n_ctx: int = 2048, d: int = 2048, n_layer: int = 22, n_head: int = 32,
                 n_kv_head: int = 4, hidden: int = 5632, eps: float = 1e-5):
        super().__init__()
        self.embed = nn.Embedding(vocab, d)
        self.blocks = nn.ModuleList(DecoderBlock(d, n_head, n_kv_head, hidden, n_ctx, eps) for _ in range(n_layer))
        self.norm = RMSNorm(d, eps)
        self.head = nn.Linear(d, vocab, bias=False)

    def forward(self, idx):
        x = self.embed(idx)
        for block in self.blocks:
            x = block(x)
        return self.head(self.norm(x))


def llama_1b(n_ctx: int = 2048, n_layer: int = 22) -> Llama:
    """TinyLlama-1.1B's configuration (1.10e9 parameters at 22 layers)."""
    return Llama(vocab=32000, n_ctx=n_ctx, d=2048, n_layer=n_layer, n_head=32, n_kv_head=4, hidden=5632)


def llama_70b(n_ctx: int = 4096, n_layer: int = 80) -> Llama:
    """Llama 2 70B's configuration (6.9e10 parameters): 80 layers, d = 8192, 64 query / 8 key-value heads,
    MLP width 28672. On the meta device it allocates nothing; its training graph has over 20,000 tasks."""
    return Llama(vocab=32000, n_ctx=n_ctx, d=8192, n_layer=n_layer, n_head=64, n_kv_head=8, hidden=28672)


def llama_small(n_ctx: int = 256, n_layer: int = 4) -> Llama:
    """A small configuration of the same architecture: d = 256, 8 query / 2 key-value heads, 8k vocabulary."""
    return Llama(vocab=8192, n_ctx=n_ctx, d=256, n_layer=n_layer, n_head=8, n_kv_head=2, hidden=688)
