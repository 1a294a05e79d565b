"""Networks of the cell-geometry space-group model (``cryspext.training.cell``).

Inputs are the canonical cell features of ``cellgeom.CELL_FEATURE_NAMES``: 14 one-hot metric
lattice types, then continuous values (Niggli a b c in Å, cosines, log V, ratios). A random
forest on these features beats a plain MLP because it cuts each continuous value at many
thresholds: a space group is often told apart by a narrow window of c/a or of a cell length.
So every continuous input is first encoded piecewise-linearly on quantile bins of the training
data (Gorishniy, Rubachev & Babenko, NeurIPS 2022, "PLE"): bin t contributes
clamp((x − e_t)/(e_{t+1} − e_t), 0, 1). Each feature's bin vector is mapped by its own linear
layer + ReLU to ``d`` values, then an MLP (Linear → BatchNorm → ReLU → Dropout) mixes all.

Derived inputs computed inside the network from the canonical features (model structure, no
new features): log a, log b, log c, log c/b, log V^(1/3)/a and log V^(1/3)/c.
"""

from __future__ import annotations

from typing import List

import numpy as np
import torch
from torch import nn

from .nets import HalfLinear, dense_stack, fold_batchnorm

__all__ = ["N_LATTICE_TYPES", "derived_inputs", "ple_edges", "CellNet", "FrozenCellNet",
           "CellEnsemble", "freeze_cell"]

N_LATTICE_TYPES = 14  # the one-hot columns lead CELL_FEATURE_NAMES


def derived_inputs(x: torch.Tensor) -> torch.Tensor:
    """Continuous inputs of the network from raw features (n, 25) → (n, 11 + 6).

    Columns 14.. of ``x``: a b c cos α cos β cos γ log V, b/a, c/a, |a−c|/(a+c), abc/V.
    """
    cont = x[:, 14:]  # literal: TorchScript cannot read module globals; = N_LATTICE_TYPES
    a, b, c = cont[:, 0:1], cont[:, 1:2], cont[:, 2:3]
    logv = cont[:, 6:7]
    la, lb, lc = torch.log(a), torch.log(b), torch.log(c)
    lv3 = logv / 3.0
    extra = torch.cat([la, lb, lc, lc - lb, lv3 - la, lv3 - lc], dim=1)
    return torch.cat([cont, extra], dim=1)


def ple_edges(x: np.ndarray, n_bins: int, min_width: float = 1e-3) -> np.ndarray:
    """(n_features, n_bins + 1) increasing bin edges from the quantiles of each column of ``x``.

    Edges closer than ``min_width`` × (the column's 1–99 % range) are merged: many rows share a
    value (cos 90° = 0, b/a = 1), and a bin as narrow as float noise (1e-16) would turn the
    noise of another setting of the same cell (cos 90° = −3e-14) into a step of the encoding,
    breaking setting invariance. Missing edges are padded beyond the maximum, where their bins
    stay 0 on the data.
    """
    out = np.zeros((x.shape[1], n_bins + 1), np.float64)
    for j in range(x.shape[1]):
        col = x[:, j].astype(np.float64)
        lo, hi = np.quantile(col, [0.01, 0.99])
        tol = min_width * max(float(hi - lo), 1e-3)
        quantiles = np.unique(np.quantile(col, np.linspace(0, 1, n_bins + 1)))
        kept = [float(quantiles[0])]
        for v in quantiles[1:]:
            if v - kept[-1] >= tol:
                kept.append(float(v))
            elif len(kept) > 1:  # too close: keep the outer of the two as the last edge
                kept[-1] = float(v)
        if len(kept) == 1:  # a constant column
            kept.append(kept[0] + tol)
        q = np.array(kept)
        span = max(float(q[-1] - q[0]), 1e-3)
        pad = q[-1] + span * np.arange(1, n_bins + 2 - len(q))
        out[j] = np.concatenate([q, pad])
    return out.astype(np.float32)


def _ple(h: torch.Tensor, lo: torch.Tensor, width: torch.Tensor) -> torch.Tensor:
    """(n, f) → (n, f, bins): clamp((x − lo)/width, 0, 1) per feature and bin."""
    return torch.clamp((h[:, :, None] - lo) / width, 0.0, 1.0)


class CellNet(nn.Module):
    """Training network: derived inputs → PLE → per-feature Linear+ReLU (``d``) → concat with the
    lattice one-hot → (Linear → BatchNorm → ReLU → Dropout)* → 230 logits."""

    def __init__(self, edges: np.ndarray, d: int, hidden: list[int], dropout: float = 0.1,
                 n_out: int = 230):
        super().__init__()
        e = torch.as_tensor(edges, dtype=torch.float32)
        self.register_buffer("lo", e[:, :-1].clone())
        self.register_buffer("width", (e[:, 1:] - e[:, :-1]).clone())
        f, t = self.lo.shape
        self.emb_w = nn.Parameter(torch.randn(f, t, d) / t**0.5)
        self.emb_b = nn.Parameter(torch.zeros(f, d))
        self.net = nn.Sequential(*dense_stack(f * d + N_LATTICE_TYPES, hidden, n_out, dropout))

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        enc = _ple(derived_inputs(x), self.lo, self.width)
        e = torch.relu(torch.einsum("nft,ftd->nfd", enc, self.emb_w) + self.emb_b)
        return torch.cat([x[:, :N_LATTICE_TYPES], e.flatten(1)], dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(self.embed(x))


class FrozenCellNet(nn.Module):
    """Inference copy of a ``CellNet``: BatchNorm folded, weights stored in float16; returns
    softmax probabilities (n, 230)."""

    def __init__(self, lo: torch.Tensor, width: torch.Tensor, emb_w: torch.Tensor,
                 emb_b: torch.Tensor, weights: List[torch.Tensor], biases: List[torch.Tensor]):
        super().__init__()
        self.register_buffer("lo", lo.detach().float().clone())
        self.register_buffer("width", width.detach().float().clone())
        self.register_buffer("emb_w", emb_w.detach().to(torch.float16).clone())
        self.register_buffer("emb_b", emb_b.detach().to(torch.float16).clone())
        self.layers = nn.ModuleList([HalfLinear(w, b) for w, b in zip(weights, biases)])
        self.n_layers = len(weights)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        enc = _ple(derived_inputs(x), self.lo, self.width)
        e = torch.relu(torch.einsum("nft,ftd->nfd", enc, self.emb_w.float()) + self.emb_b.float())
        h = torch.cat([x[:, :14], e.flatten(1)], dim=1)  # the N_LATTICE_TYPES one-hot columns
        for i, layer in enumerate(self.layers):
            h = layer(h)
            if i < self.n_layers - 1:
                h = torch.relu(h)
        return torch.softmax(h, dim=-1)


class CellEnsemble(nn.Module):
    """Members of identical input/output; forward gives (n_members, n, 230) probabilities."""

    def __init__(self, members: List[FrozenCellNet]):
        super().__init__()
        self.members = nn.ModuleList(members)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outs: List[torch.Tensor] = []
        for m in self.members:
            outs.append(m(x))
        return torch.stack(outs, dim=0)


def freeze_cell(model: CellNet) -> FrozenCellNet:
    """Fold BatchNorm into the Linear layers of a trained ``CellNet`` (eval mode) and freeze."""
    model = model.eval()
    weights, biases = fold_batchnorm(list(model.net))
    return FrozenCellNet(model.lo, model.width, model.emb_w, model.emb_b, weights, biases)
