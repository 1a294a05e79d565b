"""TorchScript-able networks of the formula model (the cell model's are in ``cellnet``).

Training uses ordinary MLPs (Linear → BatchNorm → ReLU → Dropout); for shipping, BatchNorm is
folded into the preceding Linear and the weights are stored in float16 (half the file size,
computed in float32). A shipped file holds an *ensemble*: the members' outputs are stacked, so
the caller sees their disagreement.
"""

from __future__ import annotations

import math
from typing import List

import torch
from torch import nn

__all__ = ["MLP", "HalfLinear", "FrozenMLP", "JointEnsemble", "dense_stack", "fold_batchnorm", "freeze",
           "ElementEncoder", "ElementMLP", "FrozenElementMLP", "freeze_element",
           "HalfElementEncoder", "half_element_member", "TunableMLP", "tunable_encoder",
           "tunable_member", "freeze_tuned"]


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


def dense_stack(n_in: int, hidden: list[int], n_out: int, dropout: float) -> list[nn.Module]:
    """(Linear → BatchNorm → ReLU → Dropout) per hidden width, then the output Linear."""
    layers: list[nn.Module] = []
    for h in hidden:
        layers += [nn.Linear(n_in, h), nn.BatchNorm1d(h), nn.ReLU(), nn.Dropout(dropout)]
        n_in = h
    return layers + [nn.Linear(n_in, n_out)]


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
        self.net = nn.Sequential(*layers, *dense_stack(width, hidden, n_out, dropout))

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
                 emb_w: torch.Tensor = torch.zeros(0, 0), emb_b: torch.Tensor = torch.zeros(0, 0),
                 log_columns: tuple[int, int] = (0, 0)):
        super().__init__()
        # Inputs log_start:log_stop enter as their natural log (positive extensive features,
        # such as the formula-unit volume, span two decades); x_mean/x_std are of the logs.
        self.log_start, self.log_stop = int(log_columns[0]), int(log_columns[1])
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
        if self.log_stop > self.log_start:
            x = torch.cat([x[:, : self.log_start],
                           torch.log(torch.clamp(x[:, self.log_start : self.log_stop], min=1e-6)),
                           x[:, self.log_stop :]], dim=1)
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


class JointEnsemble(nn.Module):
    """The formula ensemble: each member is one network with 230 space-group logits followed by
    the lattice-parameter outputs of all 14 Bravais lattices (``n_slots`` = 37 free parameters).

    * ``forward(x)`` / ``bravais(x)``: (members, n, 14) Bravais probabilities, the sums of the
      softmax over all 230 space groups within each lattice (``sg_bravais`` (230, 14) 0/1);
    * ``spacegroup(x, k)``: (members, n, len) probabilities of the space groups of lattice k
      (ascending numbers), i.e. the same softmax conditioned on lattice k;
    * ``lattice(x, k)``: (members, n, n_free) parameters of lattice k (Å, degrees), sigmoid
      outputs scaled to [lo, hi] per slot; lattice k owns slots ``offsets[k]:offsets[k+1]``;
    * ``raw(x)`` and ``bravais_of(raw)``, ``spacegroup_of(raw, k)``, ``lattice_of(raw, k)``: the
      same in two steps, the members run once.
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
    def raw(self, x: torch.Tensor) -> torch.Tensor:
        """(members, n, 230 + n_slots) outputs of every member; the ``*_of`` methods turn them
        into each head, so a caller needing several heads runs the members once."""
        return self._raw(x)

    @torch.jit.export
    def bravais_of(self, raw: torch.Tensor) -> torch.Tensor:
        return torch.matmul(torch.softmax(raw[:, :, :230], dim=-1), self.sg_bravais)

    @torch.jit.export
    def spacegroup_of(self, raw: torch.Tensor, k: int) -> torch.Tensor:
        idx = torch.nonzero(self.sg_bravais[:, k] > 0).flatten()
        # Softmax restricted to lattice k = the 230-way softmax conditioned on k.
        return torch.softmax(raw[:, :, idx], dim=-1)

    @torch.jit.export
    def lattice_of(self, raw: torch.Tensor, k: int) -> torch.Tensor:
        a, b = int(self.offsets[k]), int(self.offsets[k + 1])
        return self.lo[a:b] + (self.hi[a:b] - self.lo[a:b]) * torch.sigmoid(raw[:, :, 230 + a : 230 + b])

    @torch.jit.export
    def bravais(self, x: torch.Tensor) -> torch.Tensor:
        return self.bravais_of(self._raw(x))

    @torch.jit.export
    def spacegroup(self, x: torch.Tensor, k: int) -> torch.Tensor:
        return self.spacegroup_of(self._raw(x), k)

    @torch.jit.export
    def lattice(self, x: torch.Tensor, k: int) -> torch.Tensor:
        return self.lattice_of(self._raw(x), k)


def fold_batchnorm(mods: list) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """(weights, biases) of the ``nn.Linear`` layers of ``mods`` (eval mode), each with the
    ``nn.BatchNorm1d`` that directly follows it folded in: BN(Wx + b) = W'x + b'."""
    weights, biases = [], []
    for i, lin in enumerate(mods):
        if not isinstance(lin, nn.Linear):
            continue
        w, b = lin.weight.detach().clone(), lin.bias.detach().clone()
        if i + 1 < len(mods) and isinstance(mods[i + 1], nn.BatchNorm1d):
            bn = mods[i + 1]
            scale = bn.weight.detach() / torch.sqrt(bn.running_var + bn.eps)
            w = w * scale[:, None]
            b = (b - bn.running_mean) * scale + bn.bias.detach()
        weights.append(w)
        biases.append(b)
    return weights, biases


def freeze(model: MLP, x_mean, x_std, kind: int, lo=None, hi=None,
           log_columns: tuple[int, int] = (0, 0)) -> FrozenMLP:
    """Fold BatchNorm into the Linear layers of a trained ``MLP`` (eval mode) and freeze it.
    ``log_columns``: inputs the model was trained on as natural logs (``FrozenMLP``)."""
    model = model.eval()
    mods = list(model.net)
    emb_w, emb_b = torch.zeros(0, 0), torch.zeros(0, 0)
    if mods and isinstance(mods[0], FeatureEmbedding):
        emb_w, emb_b = mods[0].w.detach().clone(), mods[0].b.detach().clone()
        mods = mods[1:]
    weights, biases = fold_batchnorm(mods)
    n_out = weights[-1].shape[0]
    lo = torch.zeros(n_out) if lo is None else torch.as_tensor(lo, dtype=torch.float32)
    hi = torch.ones(n_out) if hi is None else torch.as_tensor(hi, dtype=torch.float32)
    return FrozenMLP(weights, biases, torch.as_tensor(x_mean), torch.as_tensor(x_std), kind, lo, hi,
                     emb_w, emb_b, log_columns)


class ElementEncoder(nn.Module):
    """Set encoder of the elements of a formula (Roost/CrabNet-like, simplified).

    The elements are read from the mole-fraction inputs (columns ``frac_start`` to
    ``frac_start + n_elements`` of the feature vector, element Z = column − frac_start + 1; any
    positive scale, they are renormalised).
    Each element becomes a token: a linear map of its standardised elemental properties and its
    mole fraction w, plus a *learned* per-element embedding (what lets the network key on a
    chemistry, as a forest does). ``rounds`` of multi-head self-attention, whose keys are
    weighted by log w (an element present at 1 % hardly changes the others), each followed by a
    feed-forward block, post-LayerNorm. Pooled: Σ w·token and the element-wise max → (n, 2·dim).
    """

    def __init__(self, props: torch.Tensor, frac_start: int, dim: int = 64, heads: int = 4,
                 rounds: int = 2):
        super().__init__()
        self.register_buffer("props", props.detach().float().clone())  # (n_elements, n_props)
        self.frac_start = frac_start
        self.n_elements = int(props.shape[0])
        self.dim = dim
        self.heads = heads
        n_el, n_props = props.shape
        self.embed = nn.Embedding(n_el, dim)
        nn.init.normal_(self.embed.weight, std=0.1)
        self.inp = nn.Linear(n_props + 1, dim)
        self.qkv = nn.ModuleList([nn.Linear(dim, 3 * dim) for _ in range(rounds)])
        self.proj = nn.ModuleList([nn.Linear(dim, dim) for _ in range(rounds)])
        self.ln1 = nn.ModuleList([nn.LayerNorm(dim) for _ in range(rounds)])
        self.ff = nn.ModuleList([nn.Sequential(nn.Linear(dim, 2 * dim), nn.ReLU(),
                                               nn.Linear(2 * dim, dim)) for _ in range(rounds)])
        self.ln2 = nn.ModuleList([nn.LayerNorm(dim) for _ in range(rounds)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        frac = torch.clamp(x[:, self.frac_start : self.frac_start + self.n_elements], min=0.0)
        count = (frac > 0).sum(1)
        # Sets are padded to the largest in the batch; most formulas have ≤ 4 elements, so the
        # few larger ones are encoded apart (same result, about half the padding).
        small = count <= 4
        n_small = int(small.sum())
        if n_small == 0 or n_small == x.shape[0]:
            return self._encode(frac, max(int(count.max()), 1))
        out = torch.empty(x.shape[0], 2 * self.dim, dtype=x.dtype, device=x.device)
        out[small] = self._encode(frac[small], max(int(count[small].max()), 1))
        big = torch.logical_not(small)
        out[big] = self._encode(frac[big], int(count[big].max()))
        return out

    def _encode(self, frac: torch.Tensor, n_max: int) -> torch.Tensor:
        w, idx = torch.topk(frac, n_max, dim=1)  # (n, K): the elements, largest fraction first
        mask = w > 0
        w = w / torch.clamp(w.sum(1, keepdim=True), min=1e-12)
        t = self.inp(torch.cat([self.props[idx], w[:, :, None]], dim=2)) + self.embed(idx)
        n, k = idx.shape
        dh = self.dim // self.heads
        # Key bias: log fraction, −inf on padding (every formula has ≥ 1 element).
        bias = torch.where(mask, torch.log(torch.clamp(w, min=1e-12)),
                           torch.full_like(w, -1e9))[:, None, None, :]
        for qkv, proj, ln1, ff, ln2 in zip(self.qkv, self.proj, self.ln1, self.ff, self.ln2):
            q, kk, v = qkv(t).view(n, k, 3, self.heads, dh).permute(2, 0, 3, 1, 4).unbind(0)
            a = torch.softmax(torch.matmul(q, kk.transpose(-1, -2)) / math.sqrt(dh) + bias, dim=-1)
            o = torch.matmul(a, v).permute(0, 2, 1, 3).reshape(n, k, self.dim)
            t = ln1(t + proj(o))
            t = ln2(t + ff(t))
        mean = (w[:, :, None] * t).sum(1)
        mx = torch.where(mask[:, :, None], t, torch.full_like(t, -1e9)).max(1)[0]
        mx = torch.where(mask.any(1)[:, None], mx, torch.zeros_like(mx))  # no element: 0
        return torch.cat([mean, mx], dim=1)


class ElementMLP(nn.Module):
    """Training network of the element model: [features, ElementEncoder(features)] → ``MLP``.

    Takes the same standardised feature vector as ``MLP`` (mole fractions scaled, not
    standardised, so the encoder can read them) and appends the pooled element vector."""

    def __init__(self, n_in: int, hidden: list[int], n_out: int, props: torch.Tensor,
                 frac_start: int, dropout: float = 0.0, embed: tuple[int, int] = (0, 0),
                 dim: int = 64, heads: int = 4, rounds: int = 2):
        super().__init__()
        self.encoder = ElementEncoder(props, frac_start, dim, heads, rounds)
        self.mlp = MLP(n_in + 2 * dim, hidden, n_out, dropout, embed=embed)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.mlp(torch.cat([x, self.encoder(x)], dim=1))


class FrozenElementMLP(nn.Module):
    """Inference form of ``ElementMLP``: the encoder (float32, small) on the raw features, then
    a ``FrozenMLP`` (BatchNorm folded, float16 weights) that standardises the features and
    passes the pooled element vector through unchanged."""

    def __init__(self, encoder: ElementEncoder, mlp: FrozenMLP):
        super().__init__()
        self.encoder = encoder
        self.mlp = mlp

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.mlp(torch.cat([x, self.encoder(x)], dim=1))


def freeze_element(model: ElementMLP, x_mean, x_std, kind: int, lo=None, hi=None,
                   log_columns: tuple[int, int] = (0, 0)) -> FrozenElementMLP:
    """Freeze a trained ``ElementMLP``: the feature scaling is extended by identity entries
    for the pooled element vector (which the encoder computes from the raw features).
    ``log_columns`` as in ``freeze`` (they must lie outside the mole fractions)."""
    model = model.eval()
    d2 = 2 * model.encoder.dim
    mean = torch.cat([torch.as_tensor(x_mean).float(), torch.zeros(d2)])
    std = torch.cat([torch.as_tensor(x_std).float(), torch.ones(d2)])
    return FrozenElementMLP(model.encoder, freeze(model.mlp, mean, std, kind, lo, hi, log_columns))


class HalfEmbedding(nn.Module):
    """Embedding table stored in float16, looked up in float32."""

    def __init__(self, weight: torch.Tensor):
        super().__init__()
        self.register_buffer("w", weight.detach().to(torch.float16).clone())

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        return self.w[idx].float()


class HalfElementEncoder(ElementEncoder):
    """Inference form of ``ElementEncoder`` with its linear maps and element embeddings
    stored in float16 (used in float32), about half the encoder's bytes; the LayerNorms and
    the element property table stay float32 (small). Same computation (inherited)."""

    def __init__(self, enc: nn.Module):
        nn.Module.__init__(self)  # the layers are copied from ``enc``, not created
        self.register_buffer("props", enc.props.detach().float().clone())
        self.frac_start = int(enc.frac_start)
        self.n_elements = int(enc.props.shape[0])
        self.dim = int(enc.dim)
        self.heads = int(enc.heads)
        self.embed = HalfEmbedding(enc.embed.weight)
        self.inp = HalfLinear(enc.inp.weight, enc.inp.bias)
        # Submodules by name: ``enc`` may be a TorchScript module (a member of a shipped file).
        rounds = [str(i) for i in range(len(list(enc.qkv.children())))]

        def half(m: nn.Module) -> HalfLinear:
            return HalfLinear(m.weight, m.bias)

        self.qkv = nn.ModuleList([half(getattr(enc.qkv, r)) for r in rounds])
        self.proj = nn.ModuleList([half(getattr(enc.proj, r)) for r in rounds])
        self.ff = nn.ModuleList([nn.Sequential(half(getattr(getattr(enc.ff, r), "0")), nn.ReLU(),
                                               half(getattr(getattr(enc.ff, r), "2"))) for r in rounds])
        self.ln1 = nn.ModuleList([_layer_norm(getattr(enc.ln1, r)) for r in rounds])
        self.ln2 = nn.ModuleList([_layer_norm(getattr(enc.ln2, r)) for r in rounds])


def _layer_norm(ln: nn.Module) -> nn.LayerNorm:
    """A float32 ``nn.LayerNorm`` copy of ``ln`` (which may be a TorchScript module)."""
    out = nn.LayerNorm(int(ln.weight.shape[0]), eps=float(ln.eps))
    with torch.no_grad():
        out.weight.copy_(ln.weight)
        out.bias.copy_(ln.bias)
    return out


def half_element_member(member: nn.Module) -> FrozenElementMLP:
    """A ``FrozenElementMLP`` (or its TorchScript form) with its encoder stored in float16
    (``HalfElementEncoder``); the MLP part is already float16."""
    return FrozenElementMLP(HalfElementEncoder(member.encoder), member.mlp)


# ------------------------------------------------------------------------------------------
# Fine-tuning: trainable float32 copies of frozen members (same function), and back
# ------------------------------------------------------------------------------------------

def _linear_copy(m: nn.Module) -> nn.Linear:
    """A float32 ``nn.Linear`` with the weights of ``m`` (``nn.Linear`` or ``HalfLinear``,
    either possibly a TorchScript module)."""
    w = m.weight if hasattr(m, "weight") else m.w
    b = m.bias if hasattr(m, "bias") else m.b
    out = nn.Linear(int(w.shape[1]), int(w.shape[0]))
    with torch.no_grad():
        out.weight.copy_(w.float())
        out.bias.copy_(b.float())
    return out


class TunableMLP(FrozenMLP):
    """A ``FrozenMLP`` whose weights are float32 parameters again: the same function (inherited
    ``forward``), trainable. For fine-tuning a trained member on new rows without its training
    form (BatchNorm is already folded, so none is used); ``freeze()`` gives a ``FrozenMLP``."""

    def __init__(self, frozen: nn.Module):
        nn.Module.__init__(self)  # the layers are copied from ``frozen``, not created
        self.log_start, self.log_stop = int(frozen.log_start), int(frozen.log_stop)
        self.n_emb = int(frozen.emb_w.shape[0])
        if self.n_emb:
            self.emb_w = nn.Parameter(frozen.emb_w.detach().float().clone())
            self.emb_b = nn.Parameter(frozen.emb_b.detach().float().clone())
        else:
            self.register_buffer("emb_w", torch.zeros(0, 0))
            self.register_buffer("emb_b", torch.zeros(0, 0))
        self.n_layers = int(frozen.n_layers)
        self.layers = nn.ModuleList([_linear_copy(getattr(frozen.layers, str(i)))
                                     for i in range(self.n_layers)])
        for name in ("x_mean", "x_std", "lo", "hi"):
            self.register_buffer(name, getattr(frozen, name).detach().float().clone())
        self.kind = int(frozen.kind)

    def freeze(self) -> FrozenMLP:
        """The inference form (float16 weights) of the current weights."""
        return FrozenMLP([layer.weight for layer in self.layers], [layer.bias for layer in self.layers],
                         self.x_mean, self.x_std, self.kind, self.lo, self.hi,
                         self.emb_w.detach(), self.emb_b.detach(), (self.log_start, self.log_stop))


def tunable_encoder(enc: nn.Module) -> ElementEncoder:
    """A trainable float32 ``ElementEncoder`` with the weights of ``enc`` (an ``ElementEncoder``
    or ``HalfElementEncoder``, either possibly a TorchScript module)."""
    rounds = [str(i) for i in range(len(list(enc.qkv.children())))]
    out = ElementEncoder(enc.props, int(enc.frac_start), int(enc.dim), int(enc.heads), len(rounds))
    with torch.no_grad():
        emb = enc.embed.weight if hasattr(enc.embed, "weight") else enc.embed.w
        out.embed.weight.copy_(emb.float())
    out.inp = _linear_copy(enc.inp)
    out.qkv = nn.ModuleList([_linear_copy(getattr(enc.qkv, r)) for r in rounds])
    out.proj = nn.ModuleList([_linear_copy(getattr(enc.proj, r)) for r in rounds])
    out.ff = nn.ModuleList([nn.Sequential(_linear_copy(getattr(getattr(enc.ff, r), "0")), nn.ReLU(),
                                          _linear_copy(getattr(getattr(enc.ff, r), "2")))
                            for r in rounds])
    out.ln1 = nn.ModuleList([_layer_norm(getattr(enc.ln1, r)) for r in rounds])
    out.ln2 = nn.ModuleList([_layer_norm(getattr(enc.ln2, r)) for r in rounds])
    return out


def tunable_member(member: nn.Module) -> nn.Module:
    """A trainable float32 copy of one member of a ``JointEnsemble`` (a ``FrozenMLP`` or a
    ``FrozenElementMLP``, possibly TorchScript): same inputs, same outputs."""
    if hasattr(member, "encoder"):
        return FrozenElementMLP(tunable_encoder(member.encoder), TunableMLP(member.mlp))
    return TunableMLP(member)


def freeze_tuned(member: nn.Module, half_encoder: bool = False) -> nn.Module:
    """The inference form of a ``tunable_member`` after training (``half_encoder``: store an
    element encoder in float16, as merged ensembles do)."""
    if isinstance(member, FrozenElementMLP):
        frozen = FrozenElementMLP(member.encoder.eval(), member.mlp.freeze())
        return half_element_member(frozen) if half_encoder else frozen
    return member.freeze()
