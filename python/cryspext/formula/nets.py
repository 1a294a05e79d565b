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

__all__ = ["MLP", "HalfLinear", "FrozenMLP", "Ensemble", "PerBravais", "JointEnsemble", "freeze"]


class FeatureEmbedding(nn.Module):
    """Per-feature linear-ReLU embedding of the first ``n`` inputs: each scalar becomes ``k``
    values relu(w·x + b) (Gorishniy et al., NeurIPS 2022). It lets the network cut a feature
    at several thresholds before mixing features, which plain MLPs do poorly on tabular data;
    the remaining inputs pass through unchanged."""

    def __init__(self, n: int, k: int):
        super().__init__()
        self.n = n
        self.w = nn.Parameter(torch.randn(n, k))
        self.b = nn.Parameter(0.5 * torch.randn(n, k))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        e = torch.relu(x[:, : self.n, None] * self.w + self.b).flatten(1)
        return torch.cat([e, x[:, self.n :]], dim=1)


class MLP(nn.Module):
    """Training network: [feature embedding →] (Linear → BatchNorm → ReLU → Dropout)* → Linear."""

    def __init__(self, n_in: int, hidden: list[int], n_out: int, dropout: float = 0.1,
                 embed: tuple[int, int] = (0, 0)):
        super().__init__()
        layers: list[nn.Module] = []
        width = n_in
        n_emb, k_emb = embed
        if n_emb:
            layers.append(FeatureEmbedding(n_emb, k_emb))
            width = n_emb * k_emb + n_in - n_emb
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

    ``kind`` 0: logits → softmax probabilities; 1: sigmoid scaled to [lo, hi] per output;
    2: raw outputs (the joint formula network, whose heads are split in ``JointEnsemble``).
    """

    def __init__(self, weights: List[torch.Tensor], biases: List[torch.Tensor], x_mean, x_std,
                 kind: int, lo: torch.Tensor, hi: torch.Tensor,
                 emb_w: torch.Tensor = torch.zeros(0, 0), emb_b: torch.Tensor = torch.zeros(0, 0)):
        super().__init__()
        # Optional per-feature embedding of the first emb_w.shape[0] inputs (FeatureEmbedding).
        self.register_buffer("emb_w", emb_w.detach().float().clone())
        self.register_buffer("emb_b", emb_b.detach().float().clone())
        self.n_emb = int(emb_w.shape[0])
        self.layers = nn.ModuleList([HalfLinear(w, b) for w, b in zip(weights, biases)])
        self.n_layers = len(weights)
        self.register_buffer("x_mean", x_mean.detach().float().clone())
        self.register_buffer("x_std", x_std.detach().float().clone())
        self.register_buffer("lo", lo.detach().float().clone())
        self.register_buffer("hi", hi.detach().float().clone())
        self.kind = kind

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = (x - self.x_mean) / self.x_std
        if self.n_emb > 0:
            e = torch.relu(h[:, : self.n_emb, None] * self.emb_w + self.emb_b).flatten(1)
            h = torch.cat([e, h[:, self.n_emb :]], dim=1)
        for i, layer in enumerate(self.layers):
            h = layer(h)
            if i < self.n_layers - 1:
                h = torch.relu(h)
        if self.kind == 0:
            return torch.softmax(h, dim=-1)
        if self.kind == 2:
            return h
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


class JointEnsemble(nn.Module):
    """The formula ensemble: each member is one network with 230 space-group logits followed by
    the lattice-parameter outputs of all 14 Bravais lattices (``n_slots`` = 37 free parameters).

    * ``forward(x)`` / ``bravais(x)``: (members, n, 14) Bravais probabilities, the sums of the
      softmax over all 230 space groups within each lattice (``sg_bravais`` (230, 14) 0/1);
    * ``spacegroup(x, k)``: (members, n, len) probabilities of the space groups of lattice k
      (ascending numbers), i.e. the same softmax conditioned on lattice k;
    * ``lattice(x, k)``: (members, n, n_free) parameters of lattice k (Å, degrees), sigmoid
      outputs scaled to [lo, hi] per slot; lattice k owns slots ``offsets[k]:offsets[k+1]``.
    """

    def __init__(self, members: List[FrozenMLP], sg_bravais: torch.Tensor, offsets: torch.Tensor,
                 lo: torch.Tensor, hi: torch.Tensor):
        super().__init__()
        self.members = nn.ModuleList(members)
        self.register_buffer("sg_bravais", sg_bravais.detach().float().clone())
        self.register_buffer("offsets", offsets.detach().long().clone())
        self.register_buffer("lo", lo.detach().float().clone())
        self.register_buffer("hi", hi.detach().float().clone())

    def _raw(self, x: torch.Tensor) -> torch.Tensor:
        outs: List[torch.Tensor] = []
        for m in self.members:
            outs.append(m(x))
        return torch.stack(outs, dim=0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bravais(x)

    @torch.jit.export
    def bravais(self, x: torch.Tensor) -> torch.Tensor:
        p = torch.softmax(self._raw(x)[:, :, :230], dim=-1)
        return torch.matmul(p, self.sg_bravais)

    @torch.jit.export
    def spacegroup(self, x: torch.Tensor, k: int) -> torch.Tensor:
        idx = torch.nonzero(self.sg_bravais[:, k] > 0).flatten()
        # Softmax restricted to lattice k = the 230-way softmax conditioned on k.
        return torch.softmax(self._raw(x)[:, :, idx], dim=-1)

    @torch.jit.export
    def lattice(self, x: torch.Tensor, k: int) -> torch.Tensor:
        a, b = int(self.offsets[k]), int(self.offsets[k + 1])
        z = self._raw(x)[:, :, 230 + a : 230 + b]
        return self.lo[a:b] + (self.hi[a:b] - self.lo[a:b]) * torch.sigmoid(z)


def freeze(model: MLP, x_mean, x_std, kind: int, lo=None, hi=None) -> FrozenMLP:
    """Fold BatchNorm into the Linear layers of a trained ``MLP`` (eval mode) and freeze it."""
    model = model.eval()
    weights, biases = [], []
    mods = list(model.net)
    emb_w, emb_b = torch.zeros(0, 0), torch.zeros(0, 0)
    if mods and isinstance(mods[0], FeatureEmbedding):
        emb_w, emb_b = mods[0].w.detach().clone(), mods[0].b.detach().clone()
        mods = mods[1:]
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
    return FrozenMLP(weights, biases, torch.as_tensor(x_mean), torch.as_tensor(x_std), kind, lo, hi,
                     emb_w, emb_b)
