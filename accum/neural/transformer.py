"""The decoder-only transformer of ``accum capacity --neural``, and its training and scoring.

This module imports torch: load it only through :mod:`accum.neural`, which checks that
torch is installed first. Token windows come in and go out as numpy arrays of token
classes, ``-1`` marking padding past a window's end (never a target, and harmless as
input since attention is causal).
"""

from __future__ import annotations

import math
from typing import Iterator

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F


class Block(nn.Module):
    """Pre-norm transformer block: causal self-attention, then a 4x MLP."""

    def __init__(self, d_model: int, heads: int):
        super().__init__()
        self.heads = heads
        self.norm1 = nn.LayerNorm(d_model)
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.out = nn.Linear(d_model, d_model)
        self.norm2 = nn.LayerNorm(d_model)
        self.mlp = nn.Sequential(nn.Linear(d_model, 4 * d_model), nn.GELU(), nn.Linear(4 * d_model, d_model))

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        b, t, d = h.shape
        q, k, v = self.qkv(self.norm1(h)).view(b, t, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        attended = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        h = h + self.out(attended.transpose(1, 2).reshape(b, t, d))
        return h + self.mlp(self.norm2(h))


class Decoder(nn.Module):
    """Token and learned position embeddings, blocks, a final norm; the output layer is
    the token embedding itself (tied), so every parameter counts once."""

    def __init__(self, layers: int, d_model: int, heads: int, vocab: int, context: int):
        super().__init__()
        self.embed = nn.Embedding(vocab, d_model)
        self.position = nn.Embedding(context, d_model)
        self.blocks = nn.ModuleList(Block(d_model, heads) for _ in range(layers))
        self.norm = nn.LayerNorm(d_model)
        for table in (self.embed, self.position):
            nn.init.normal_(table.weight, std=0.02)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits (batch, length, vocab) of the next token after each position of ``x``."""
        h = self.embed(x) + self.position(torch.arange(x.shape[1]))
        for block in self.blocks:
            h = block(h)
        return self.norm(h) @ self.embed.weight.T


def make_model(layers: int, d_model: int, heads: int, vocab: int, context: int, seed: int) -> Decoder:
    """A new model, its weights drawn from ``seed``; deterministic kernels from here on."""
    torch.use_deterministic_algorithms(True)
    torch.manual_seed(seed)
    return Decoder(layers, d_model, heads, vocab, context)


def parameter_count(model: nn.Module) -> int:
    """Parameters of ``model`` (a tied weight once)."""
    return sum(p.numel() for p in model.parameters())


def train(model: Decoder, batches: Iterator[np.ndarray], steps: int, learning_rate: float) -> None:
    """``steps`` AdamW steps on the next-token loss of windows (int64[batch, length]):
    linear warm-up over the first 5 %, then cosine decay to a tenth."""
    warm = max(1, steps // 20)

    def factor(step: int) -> float:
        if step < warm:
            return (step + 1) / warm
        return 0.1 + 0.45 * (1 + math.cos(math.pi * (step - warm) / max(1, steps - warm)))

    optimiser = torch.optim.AdamW(model.parameters(), lr=learning_rate, betas=(0.9, 0.95), weight_decay=0.0)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimiser, factor)
    model.train()
    for _, batch in zip(range(steps), batches):
        windows = torch.from_numpy(batch)
        logits = model(windows[:, :-1].clamp(min=0))
        loss = F.cross_entropy(logits.flatten(0, 1), windows[:, 1:].flatten(), ignore_index=-1)
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimiser.step()
        schedule.step()


@torch.no_grad()
def log2_probs(model: Decoder, windows: np.ndarray, batch: int) -> np.ndarray:
    """log2 p(token | the tokens before it in its window) of every token but each window's
    first, float64[n, length - 1] (NaN at padding)."""
    model.eval()
    out = []
    for i in range(0, len(windows), batch):
        w = torch.from_numpy(windows[i:i + batch])
        logp = F.log_softmax(model(w[:, :-1].clamp(min=0)), dim=-1)
        picked = logp.gather(-1, w[:, 1:].clamp(min=0).unsqueeze(-1)).squeeze(-1).double() / math.log(2)
        out.append(torch.where(w[:, 1:] >= 0, picked, math.nan).numpy())
    return np.concatenate(out)


@torch.no_grad()
def predictions(model: Decoder, windows: np.ndarray, batch: int) -> np.ndarray:
    """The most probable next token after each position of each window but its last,
    int64[n, length - 1]: greedy decoding, where the text so far is the window's."""
    model.eval()
    return np.concatenate([model(torch.from_numpy(windows[i:i + batch, :-1]).clamp(min=0)).argmax(-1).numpy()
                           for i in range(0, len(windows), batch)])
