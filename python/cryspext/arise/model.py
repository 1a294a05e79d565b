"""The ARISE Bayesian neural network: architecture, Monte-Carlo-dropout inference, loading.

Architecture (thesis Table 4.1): 316 → 256 → 512 → 256 → 108, ReLU, dropout (p = 3.17 %)
before every dense layer, softmax output; 371 820 parameters. Dropout stays active at
prediction time: T stochastic passes approximate the posterior predictive (thesis eq. 2.3.2.1)

    p(c | x) ≈ 1/T Σ_t p(c | x, ω_t),

the predictive entropy H = −Σ_c p(c|x) ln p(c|x) (eq. 2.3.2.3) and the mutual information
I = H − 1/T Σ_t H[p(·|x, ω_t)] (eq. 2.3.2.5). **Both use the natural logarithm (nats)**: they
lie in [0, ln 108 ≈ 4.68], and I ≤ H.

The T passes are evaluated as one batch: each input row is repeated T times and every layer is
one matrix product over the (n·T) rows, each row with its own dropout masks; ``n`` is chunked so
that at most ``max_rows`` rows are in flight.

A shipped model may be a deep ensemble (:class:`EnsembleMLP`, K networks of this architecture
trained with different seeds): the T passes are then spread evenly over the members (pass t uses
member t mod K), the formulas above are unchanged, and the hidden activations are member 0's.
The card's ``ensemble`` entry says which kind a file is.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

__all__ = ["BayesianMLP", "EnsembleMLP", "MCPrediction", "AriseModel", "load_model", "N_FEATURES", "HIDDEN_LAYERS"]

N_FEATURES = 316
HIDDEN_LAYERS = ("h1", "h2", "h3")
DROPOUT = 0.0317


def inverted_dropout(x: torch.Tensor, p: float, active: bool) -> torch.Tensor:
    """Inverted dropout: a fresh Bernoulli mask per element (so per row = per MC pass)."""
    if not active or p <= 0.0:
        return x
    keep = torch.rand_like(x) >= p
    return x * keep.to(x.dtype) / (1.0 - p)


class BayesianMLP(nn.Module):
    """MLP with dropout before every dense layer; ``mc`` runs T stochastic passes in one batch."""

    def __init__(self, n_in: int = N_FEATURES, widths: tuple = (256, 512, 256), n_out: int = 108, p: float = DROPOUT):
        super().__init__()
        self.fc1 = nn.Linear(n_in, widths[0])
        self.fc2 = nn.Linear(widths[0], widths[1])
        self.fc3 = nn.Linear(widths[1], widths[2])
        self.fc4 = nn.Linear(widths[2], n_out)
        self.p = float(p)

    def _drop(self, x: torch.Tensor, active: bool) -> torch.Tensor:
        return inverted_dropout(x, self.p, active)

    def hidden(self, x: torch.Tensor, stochastic: bool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        h1 = F.relu(self.fc1(self._drop(x, stochastic)))
        h2 = F.relu(self.fc2(self._drop(h1, stochastic)))
        h3 = F.relu(self.fc3(self._drop(h2, stochastic)))
        logits = self.fc4(self._drop(h3, stochastic))
        return logits, h1, h2, h3

    def forward(self, x: torch.Tensor, stochastic: bool = True) -> torch.Tensor:
        """Logits of one pass (dropout active unless ``stochastic`` is False)."""
        return self.hidden(x, stochastic)[0]

    @torch.jit.export
    def mc(self, x: torch.Tensor, n_samples: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """T = ``n_samples`` dropout passes of every row of ``x`` (n, 316), batched.

        Returns the T-averaged probabilities (n, C), the T-averaged per-pass entropy in nats (n,),
        and the T-averaged activations h1, h2, h3 (after ReLU).
        """
        n = x.shape[0]
        rows = x.repeat_interleave(n_samples, dim=0)
        logits, h1, h2, h3 = self.hidden(rows, True)
        logp = F.log_softmax(logits, dim=1)
        p = logp.exp()
        entropy = -(p * logp).sum(dim=1)
        return (
            p.view(n, n_samples, -1).mean(dim=1),
            entropy.view(n, n_samples).mean(dim=1),
            h1.view(n, n_samples, -1).mean(dim=1),
            h2.view(n, n_samples, -1).mean(dim=1),
            h3.view(n, n_samples, -1).mean(dim=1),
        )


class EnsembleMLP(nn.Module):
    """A deep ensemble of K :class:`BayesianMLP` members with MC dropout inside each.

    The members' weights are stacked (K, in, out) so that all of them run as one batched matrix
    product per layer (``torch.baddbmm``). ``mc(x, T)`` splits the T stochastic passes evenly
    over the members: pass t uses member t mod K with its own fresh dropout masks, so member k
    runs ⌈(T − k)/K⌉ passes and the cost stays that of about T passes of one network. The
    probabilities, entropies (and hence the mutual information) are averaged over the T passes
    exactly as for one network (eq. 2.3.2.1–2.3.2.5); the posterior samples are now (member,
    dropout mask) pairs. The returned hidden activations h1, h2, h3 are **member 0's**,
    averaged over its passes (the members' hidden units are not aligned, so averaging across
    members would mix unrelated features).
    """

    def __init__(self, members: list):
        super().__init__()
        if len(members) < 1:
            raise ValueError("an ensemble needs at least one member")
        ps = {float(m.p) for m in members}
        if len(ps) != 1:
            raise ValueError(f"all members must share one dropout rate, got {sorted(ps)}")
        self.p = ps.pop()
        self.n_members = len(members)
        # (K, in, out) weights and (K, 1, out) biases, for baddbmm.
        self.w1 = nn.Parameter(torch.stack([m.fc1.weight.detach().T for m in members]).contiguous())
        self.w2 = nn.Parameter(torch.stack([m.fc2.weight.detach().T for m in members]).contiguous())
        self.w3 = nn.Parameter(torch.stack([m.fc3.weight.detach().T for m in members]).contiguous())
        self.w4 = nn.Parameter(torch.stack([m.fc4.weight.detach().T for m in members]).contiguous())
        self.b1 = nn.Parameter(torch.stack([m.fc1.bias.detach()[None] for m in members]).contiguous())
        self.b2 = nn.Parameter(torch.stack([m.fc2.bias.detach()[None] for m in members]).contiguous())
        self.b3 = nn.Parameter(torch.stack([m.fc3.bias.detach()[None] for m in members]).contiguous())
        self.b4 = nn.Parameter(torch.stack([m.fc4.bias.detach()[None] for m in members]).contiguous())

    def _drop(self, x: torch.Tensor, active: bool) -> torch.Tensor:
        return inverted_dropout(x, self.p, active)

    def hidden(self, x: torch.Tensor, stochastic: bool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Every member on its own rows: ``x`` (K, rows, 316) → logits (K, rows, C), h1, h2, h3."""
        h1 = F.relu(torch.baddbmm(self.b1, self._drop(x, stochastic), self.w1))
        h2 = F.relu(torch.baddbmm(self.b2, self._drop(h1, stochastic), self.w2))
        h3 = F.relu(torch.baddbmm(self.b3, self._drop(h2, stochastic), self.w3))
        logits = torch.baddbmm(self.b4, self._drop(h3, stochastic), self.w4)
        return logits, h1, h2, h3

    def forward(self, x: torch.Tensor, stochastic: bool = True) -> torch.Tensor:
        """Log of the member-averaged probabilities of one pass per member, for ``x`` (n, 316)."""
        k = self.n_members
        logits = self.hidden(x.unsqueeze(0).expand(k, -1, -1), stochastic)[0]
        return torch.logsumexp(F.log_softmax(logits, dim=2), dim=0) - torch.log(torch.tensor(float(k)))

    @torch.jit.export
    def mc(self, x: torch.Tensor, n_samples: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """T = ``n_samples`` passes of every row of ``x`` (n, 316), spread over the members.

        Returns the T-averaged probabilities (n, C), the T-averaged per-pass entropy in nats (n,)
        and member 0's averaged activations h1, h2, h3 (after ReLU).
        """
        n = x.shape[0]
        k = self.n_members
        s = (n_samples + k - 1) // k  # passes per member; the surplus ones are dropped below
        rows = x.repeat_interleave(s, dim=0).unsqueeze(0).expand(k, -1, -1)
        logits, h1, h2, h3 = self.hidden(rows, True)
        logp = F.log_softmax(logits, dim=2)
        p = logp.exp()
        entropy = -(p * logp).sum(dim=2)
        # Pass t = j·K + member: order (n, s, K) and keep the first T.
        p = p.view(k, n, s, -1).permute(1, 2, 0, 3).reshape(n, s * k, -1)[:, :n_samples]
        entropy = entropy.view(k, n, s).permute(1, 2, 0).reshape(n, s * k)[:, :n_samples]
        return (
            p.mean(dim=1),
            entropy.mean(dim=1),
            h1[0].view(n, s, -1).mean(dim=1),
            h2[0].view(n, s, -1).mean(dim=1),
            h3[0].view(n, s, -1).mean(dim=1),
        )


@dataclass(frozen=True)
class MCPrediction:
    """Monte-Carlo-dropout output for n inputs.

    ``probabilities`` (n, C): T-averaged class probabilities (eq. 2.3.2.1), columns in the order
    of ``classes``; ``predictive_entropy`` (n,) and ``mutual_information`` (n,) in **nats**
    (natural logarithm); ``hidden``: T-averaged activations ``{'h1': (n, 256), 'h2': (n, 512),
    'h3': (n, 256)}``; ``mc_samples``: T.
    """

    probabilities: np.ndarray
    mutual_information: np.ndarray
    predictive_entropy: np.ndarray
    hidden: dict = field(repr=False)
    classes: list = field(repr=False)
    mc_samples: int = 0

    @property
    def label_indices(self) -> np.ndarray:
        """Index of the most probable class of each input (argmax of eq. 2.3.2.1)."""
        return np.argmax(self.probabilities, axis=1)

    @property
    def labels(self) -> list[str]:
        """Most probable class name of each input."""
        return [self.classes[i] for i in self.label_indices]

    def __len__(self) -> int:
        return int(self.probabilities.shape[0])


def _entropy_nats(p: np.ndarray) -> np.ndarray:
    p = np.asarray(p, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, p * np.log(np.where(p > 0, p, 1.0)), 0.0)
    return -terms.sum(axis=-1)


class AriseModel:
    """A loaded ARISE network with its card (class order, descriptor settings, metrics)."""

    def __init__(self, module, card: dict):
        self.module = module
        self.card = dict(card)
        self.classes: list[str] = list(card["classes"])
        self.n_features = int(card.get("n_features", N_FEATURES))

    def __repr__(self) -> str:
        return f"AriseModel({len(self.classes)} classes, {self.n_features} features, version {self.card.get('cryspext_version')})"

    @property
    def descriptor_settings(self) -> dict:
        """Keyword arguments for :func:`cryspext.descriptors.arise_soap` at the central setting."""
        keys = ("cutoff", "sigma", "n_max", "l_max", "scale", "transition")
        return {k: v for k, v in self.card["descriptor"].items() if k in keys}

    @property
    def descriptor_views(self) -> list[dict]:
        """The descriptor settings a structure is described with at prediction time.

        The card's ``inference.descriptor_views`` lists overrides of the central setting (e.g.
        cut-offs 3.8, 4.0, 4.2 d_NN, all inside the training grid); :meth:`predict` spreads its
        T passes over them. Without that entry: the central setting alone.
        """
        views = (self.card.get("inference") or {}).get("descriptor_views") or [{}]
        return [{**self.descriptor_settings, **v} for v in views]

    def describe(self, structures, *, errors: str = "raise", progress: bool | None = None) -> np.ndarray:
        """ARISE SOAP of ``structures`` at every descriptor view: float32 (n, V, 316)."""
        from ..descriptors import arise_soap_batch

        views = [np.asarray(arise_soap_batch(structures, errors=errors, progress=progress, **v), dtype=np.float32)
                 for v in self.descriptor_views]
        return np.stack(views, axis=1)

    def predict(self, descriptors, mc_samples: int = 1000, seed: int | None = None, max_rows: int = 32768) -> MCPrediction:
        """Monte-Carlo-dropout prediction for descriptors of shape (n, 316) (or one (316,) vector),
        or (n, V, 316): V descriptor views of each input (:meth:`describe`).

        ``mc_samples`` T >= 1 stochastic passes (default 1000), evaluated as one batched matrix
        product per layer, chunked over inputs so that at most ``max_rows`` (n·T rows) are in memory.
        With V views the T passes are spread over them (view v gets ⌊T/V⌋ passes, one more for
        v < T mod V) and every average, the MI included, runs over all T passes: the posterior
        samples are then (dropout mask, descriptor setting) pairs.
        ``seed`` makes the result reproducible (the global torch RNG is left untouched).
        MI and predictive entropy are in nats (natural logarithm).
        """
        x = self._check_descriptors(descriptors)
        if isinstance(mc_samples, bool) or not isinstance(mc_samples, (int, np.integer)):
            raise TypeError(f"mc_samples must be an integer, got {type(mc_samples).__name__}")
        mc_samples = int(mc_samples)
        if mc_samples < 1:
            raise ValueError(f"mc_samples must be >= 1, got {mc_samples}")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer))):
            raise TypeError(f"seed must be an integer or None, got {type(seed).__name__}")
        n, n_views = x.shape[0], x.shape[1]
        passes = [mc_samples // n_views + (v < mc_samples % n_views) for v in range(n_views)]
        chunk = max(1, int(max_rows) // max(passes))
        probs, exp_ent = [], []
        hidden = {k: [] for k in HIDDEN_LAYERS}
        with torch.random.fork_rng(devices=[]), torch.inference_mode():
            if seed is not None:
                torch.manual_seed(int(seed))
            for start in range(0, n, chunk):
                sums = None
                for v, t_v in enumerate(passes):
                    if t_v == 0:
                        continue
                    xb = torch.from_numpy(np.ascontiguousarray(x[start : start + chunk, v]))
                    out = [o.double() * (t_v / mc_samples) for o in self.module.mc(xb, t_v)]
                    sums = out if sums is None else [a + b for a, b in zip(sums, out)]
                p, e, h1, h2, h3 = sums
                probs.append(p.numpy())
                exp_ent.append(e.numpy())
                for k, h in zip(HIDDEN_LAYERS, (h1, h2, h3)):
                    hidden[k].append(h.float().numpy())
        p = np.concatenate(probs)
        p /= p.sum(axis=1, keepdims=True)  # float32 averaging leaves ~1e-7 slack
        h_pred = _entropy_nats(p)
        expected = np.concatenate(exp_ent)
        # I = H − E[H] >= 0 analytically; clip float rounding.
        mi = np.clip(h_pred - expected, 0.0, None)
        return MCPrediction(
            probabilities=p,
            mutual_information=mi,
            predictive_entropy=h_pred,
            hidden={k: np.concatenate(v) for k, v in hidden.items()},
            classes=self.classes,
            mc_samples=mc_samples,
        )

    def _check_descriptors(self, descriptors) -> np.ndarray:
        if isinstance(descriptors, torch.Tensor):
            descriptors = descriptors.detach().cpu().numpy()
        try:
            x = np.asarray(descriptors, dtype=np.float32)
        except (TypeError, ValueError) as exc:
            raise TypeError(f"descriptors must be a numeric array of shape (n, {self.n_features})") from exc
        if x.ndim == 1:
            x = x[None, :]
        if x.ndim == 2:
            x = x[:, None, :]
        if x.ndim != 3 or x.shape[2] != self.n_features or x.shape[1] == 0:
            raise ValueError(f"descriptors must have shape (n, {self.n_features}) or (n, views, {self.n_features}), "
                             f"got {np.shape(descriptors)}")
        if x.shape[0] == 0:
            raise ValueError("no descriptors given (n = 0)")
        if not np.all(np.isfinite(x)):
            raise ValueError("descriptors contain NaN or inf")
        return np.ascontiguousarray(x)


@lru_cache(maxsize=None)
def load_model(name: str = "arise") -> AriseModel:
    """The shipped model ``models/arise/<name>.pt`` with its JSON card (cached)."""
    from ..models import load_card, load_torchscript, model_path

    if not isinstance(name, str) or not name or "/" in name or "\\" in name:
        raise ValueError(f"model name must be a plain file stem like 'arise', got {name!r}")
    path = model_path("arise", name)
    return AriseModel(load_torchscript(path), load_card("arise", name))
