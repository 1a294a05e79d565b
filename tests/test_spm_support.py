"""Small stand-ins for the SPM tests: a cheap box descriptor and a tiny MC-dropout model.

They follow the interfaces SPM relies on (``descriptor(structure, grid) -> (n_boxes, D)`` with
NaN rows for invalid boxes; ``model.classes`` and ``model.predict(x, mc_samples, seed)``
returning probabilities, mutual information and predictive entropy in nats), so the pipeline
can be tested without the shipped ARISE network and SOAP.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


def rdf_descriptor(structure, grid, bins: int = 12):
    """Per box: histogram of pair distances in units of the box's nearest-neighbour distance."""
    from scipy.spatial.distance import pdist

    out = np.full((grid.n_boxes, bins + 1), np.nan)
    pos = structure.positions
    for b in np.flatnonzero(grid.valid.ravel()):
        members = grid.members(b)
        if members.size < 2:
            continue
        d = pdist(pos[members])
        d_nn = d.min()
        h, _ = np.histogram(d / d_nn, bins=bins, range=(0.95, 2.2))
        out[b, :bins] = h / members.size
        out[b, bins] = members.size / 100.0
    return out


@dataclass
class Prediction:
    probabilities: np.ndarray
    mutual_information: np.ndarray
    predictive_entropy: np.ndarray


class TinyMCModel:
    """A randomly initialised MLP with dropout, sampled T times per input (MC dropout)."""

    def __init__(self, n_features: int, classes=("a", "b", "c", "d"), hidden: int = 32, p: float = 0.3, seed: int = 0):
        g = torch.Generator().manual_seed(seed)
        self.classes = list(classes)
        self.w1 = torch.randn(n_features, hidden, generator=g) * 2.0
        self.w2 = torch.randn(hidden, len(classes), generator=g)
        self.p = p
        self.calls = 0

    def passes(self, x, mc_samples: int, seed=None) -> np.ndarray:
        """Per-pass probabilities (T, n, C)."""
        g = torch.Generator()
        g.manual_seed(0 if seed is None else int(seed))
        x = torch.as_tensor(np.asarray(x, np.float32))
        t = int(mc_samples)
        h = torch.relu(x @ self.w1)  # (n, H)
        out = []
        for start in range(0, t, 200):  # bounded memory: (200, n, H) masks at a time
            keep = (torch.rand((min(200, t - start),) + tuple(h.shape), generator=g) >= self.p).float() / (1 - self.p)
            out.append(torch.softmax((h[None] * keep) @ self.w2, dim=-1).double().numpy())
        return np.concatenate(out)

    def predict(self, x, mc_samples: int = 1000, seed=None) -> Prediction:
        self.calls += 1
        pt = self.passes(x, mc_samples, seed)
        p = pt.mean(axis=0)
        ent = lambda q: -np.sum(q * np.log(np.clip(q, 1e-12, 1)), axis=-1)  # noqa: E731
        h = ent(p)
        return Prediction(p, np.maximum(h - ent(pt).mean(axis=0), 0.0), h)


def structure_rdf(structure, bins: int = 12):
    """Whole-structure stand-in descriptor: pair-distance histogram in units of d_NN, per atom."""
    from cryspext import neighbor_list

    nl = neighbor_list(structure, 6.0)
    d = nl.distances[nl.distances > 1e-8]
    h, _ = np.histogram(d / d.min(), bins=bins, range=(0.95, 2.2))
    return np.append(h / len(structure), len(structure) / 100.0)
