"""The shipped SpgVolNet-style ensemble: space group + primitive-cell volume from a δ-profile.

The TorchScript file ``models/xrd/spgvolnet.pt`` maps profiles (B, n_bins) on the grid given in
its card to member probabilities (M, B, C) and member ln V_prim (M, B). Members are combined
as in the seed (eq. 15): the mean of the member probabilities; the volume is exp of the mean
member ln V_prim (Å³, primitive cell).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .profile import DeltaGrid

__all__ = ["Prediction", "SpgVolNet", "load_model"]

FAMILY, NAME = "xrd", "spgvolnet"


@dataclass
class Prediction:
    """Ranked space groups with ensemble probabilities, and the primitive-cell volume (Å³)."""

    space_groups: list[int]
    symbols: list[str]
    probabilities: list[float]
    volume: float
    volume_members: list[float]
    member_top1: list[int]
    extra: dict = field(default_factory=dict)

    @property
    def space_group(self) -> int:
        return self.space_groups[0]

    def as_dict(self) -> dict:
        return {
            "space_group": self.space_groups[0],
            "symbol": self.symbols[0],
            "top": [{"space_group": g, "symbol": s, "probability": p}
                    for g, s, p in zip(self.space_groups, self.symbols, self.probabilities)],
            "primitive_volume_A3": self.volume,
            "primitive_volume_members_A3": self.volume_members,
            "member_top1": self.member_top1,
            **self.extra,
        }


class SpgVolNet:
    """Ensemble wrapper around the shipped TorchScript module and its card."""

    def __init__(self, module, card: dict):
        self.module = module
        self.card = card
        g = card["input"]
        self.grid = DeltaGrid(g["inv_d_min"], g["inv_d_max"], g["n_bins"])
        self.classes = [int(c) for c in card["classes"]]
        self.symbols = list(card.get("class_symbols", [str(c) for c in self.classes]))
        self.b_factor = float(g.get("b_factor_A2", 2.0))

    def predict_profiles(self, profiles: np.ndarray, top: int = 5) -> list[Prediction]:
        """Predictions for profiles (B, n_bins) on ``self.grid`` (each max-normalised)."""
        import torch

        x = np.asarray(profiles, dtype=np.float32)
        if x.ndim == 1:
            x = x[None]
        if x.ndim != 2 or x.shape[1] != self.grid.n_bins:
            raise ValueError(f"profiles must have shape (B, {self.grid.n_bins}) on the model grid, got {x.shape}")
        if not np.all(np.isfinite(x)) or np.any(x < 0):
            raise ValueError("profiles must be finite and non-negative")
        peak = x.max(axis=1, keepdims=True)
        if np.any(peak <= 0):
            raise ValueError("a profile is empty (no reflection inside the model's 1/d range)")
        x = x / peak
        with torch.no_grad():
            probs, logv = self.module(torch.from_numpy(x))
        probs = probs.numpy()  # (M, B, C)
        logv = logv.numpy()  # (M, B)
        mean = probs.mean(axis=0)
        out = []
        top = max(1, min(int(top), len(self.classes)))
        for b in range(x.shape[0]):
            order = np.argsort(-mean[b])[:top]
            out.append(Prediction(
                space_groups=[self.classes[i] for i in order],
                symbols=[self.symbols[i] for i in order],
                probabilities=[float(mean[b, i]) for i in order],
                volume=float(np.exp(logv[:, b].mean())),
                volume_members=[float(v) for v in np.exp(logv[:, b])],
                member_top1=[self.classes[int(i)] for i in probs[:, b].argmax(axis=1)],
            ))
        return out

    def predict_structures(self, structures, top: int = 5) -> list[Prediction]:
        """Predictions for crystal structures (anything ``as_structure`` accepts)."""
        from .profile import delta_profiles

        g = self.grid
        prof = delta_profiles(list(structures), inv_d_min=g.inv_d_min, inv_d_max=g.inv_d_max, n_bins=g.n_bins,
                              b_factor=self.b_factor)
        return self.predict_profiles(prof, top)


def load_model() -> SpgVolNet:
    """The shipped ensemble (``FileNotFoundError`` with a hint when it is not installed)."""
    from ..models import load_card, model_path

    path = model_path(FAMILY, NAME)
    return _cached(str(path), load_card(FAMILY, NAME))


_CACHE: dict[str, Any] = {}


def _cached(path: str, card: dict) -> SpgVolNet:
    if path not in _CACHE:
        from ..models import load_torchscript

        # Weights ship as float16 to halve the package; compute in float32.
        _CACHE[path] = SpgVolNet(load_torchscript(path).float(), card)
    return _CACHE[path]
