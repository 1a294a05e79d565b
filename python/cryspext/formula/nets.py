"""TorchScript-able networks of the formula and cell models.

Training uses ordinary MLPs (Linear → BatchNorm → ReLU → Dropout); for shipping, BatchNorm is
folded into the preceding Linear and the weights are stored in float16 (half the file size,
computed in float32). A shipped file holds an *ensemble*: the members' outputs are stacked, so
the caller sees their disagreement.
"""

from __future__ import annotations

from typing import List

import torch
from torch import nn

__all__ = ["MLP", "HalfLinear", "FrozenMLP", "Ensemble", "PerBravais", "freeze"]


class MLP(nn.Module):
    """Training network. ``sigmoid_range`` (lo, hi) tensors make it a bounded regressor."""

    def __init__(self, n_in: int, hidden: list[int], n_out: int, dropout: float = 0.1):
        super().__init__()
        layers: list[nn.Module] = []
        width = n_in
        for h in hidden:
            layers += [nn.Linear(width, h), nn.BatchNorm1d(h), nn.ReLU(), nn.Dropout(dropout)]
            width = h
        layers.append(nn.Linear(width, n_out))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class HalfLinear(nn.Module):
    """y = x Wᵀ + b with W, b stored in float16 and used in float32."""

    def __init__(self, w: torch.Tensor, b: torch.Tensor):
        super().__init__()
        self.register_buffer("w", w.detach().to(torch.float16).clone())
        self.register_buffer("b", b.detach().to(torch.float16).clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.linear(x, self.w.float(), self.b.float())


class FrozenMLP(nn.Module):
    """Inference network: standardise, then Linear+ReLU layers with float16-stored weights.

    ``kind`` 0: logits → softmax probabilities; 1: sigmoid scaled to [lo, hi] per output.
    """

    def __init__(self, weights: List[torch.Tensor], biases: List[torch.Tensor], x_mean, x_std,
                 kind: int, lo: torch.Tensor, hi: torch.Tensor):
        super().__init__()
        self.layers = nn.ModuleList([HalfLinear(w, b) for w, b in zip(weights, biases)])
        self.n_layers = len(weights)
        self.register_buffer("x_mean", x_mean.detach().float().clone())
        self.register_buffer("x_std", x_std.detach().float().clone())
        self.register_buffer("lo", lo.detach().float().clone())
        self.register_buffer("hi", hi.detach().float().clone())
        self.kind = kind

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = (x - self.x_mean) / self.x_std
        for i, layer in enumerate(self.layers):
            h = layer(h)
            if i < self.n_layers - 1:
                h = torch.relu(h)
        if self.kind == 0:
            return torch.softmax(h, dim=-1)
        return self.lo + (self.hi - self.lo) * torch.sigmoid(h)


class Ensemble(nn.Module):
    """Members of identical input/output; forward gives (n_members, n_samples, n_out)."""

    def __init__(self, members: List[FrozenMLP]):
        super().__init__()
        self.members = nn.ModuleList(members)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outs: List[torch.Tensor] = []
        for m in self.members:
            outs.append(m(x))
        return torch.stack(outs, dim=0)


class PerBravais(nn.Module):
    """One ensemble per Bravais class; ``forward(x, k)`` runs the ensemble of class index k."""

    def __init__(self, heads: List[Ensemble]):
        super().__init__()
        self.heads = nn.ModuleList(heads)

    def forward(self, x: torch.Tensor, k: int) -> torch.Tensor:
        out = torch.empty(0)
        for i, head in enumerate(self.heads):
            if i == k:
                out = head(x)
        return out


def freeze(model: MLP, x_mean, x_std, kind: int, lo=None, hi=None) -> FrozenMLP:
    """Fold BatchNorm into the Linear layers of a trained ``MLP`` (eval mode) and freeze it."""
    model = model.eval()
    weights, biases = [], []
    mods = list(model.net)
    i = 0
    while i < len(mods):
        lin = mods[i]
        if isinstance(lin, nn.Linear):
            w, b = lin.weight.detach().clone(), lin.bias.detach().clone()
            if i + 1 < len(mods) and isinstance(mods[i + 1], nn.BatchNorm1d):
                bn = mods[i + 1]
                scale = bn.weight.detach() / torch.sqrt(bn.running_var + bn.eps)
                w = w * scale[:, None]
                b = (b - bn.running_mean) * scale + bn.bias.detach()
            weights.append(w)
            biases.append(b)
        i += 1
    n_out = weights[-1].shape[0]
    lo = torch.zeros(n_out) if lo is None else torch.as_tensor(lo, dtype=torch.float32)
    hi = torch.ones(n_out) if hi is None else torch.as_tensor(hi, dtype=torch.float32)
    return FrozenMLP(weights, biases, torch.as_tensor(x_mean), torch.as_tensor(x_std), kind, lo, hi)
