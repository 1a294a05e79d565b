"""The typed result of classifying one structure with ARISE."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["ClassificationResult"]


@dataclass(frozen=True)
class ClassificationResult:
    """ARISE's answer for one structure.

    - ``label``: most probable prototype (argmax of the T-averaged probabilities);
    - ``probabilities``: (108,) array, same order as ``classes``;
    - ``mutual_information``, ``predictive_entropy``: uncertainty in **nats** (natural log);
      low (≈ 0) for confident answers, at most ln 108 ≈ 4.68;
    - ``hidden(layer)``: T-averaged activations of 'h1' (256), 'h2' (512) or 'h3' (256); for a
      deep-ensemble model these are member 0's (averaged over its passes), so the layers keep
      their widths and meaning for the unsupervised analysis;
    - ``mc_samples``: number of dropout passes T (spread over the model's descriptor views);
      ``descriptor``: the (316,) SOAP vector at the model's central setting.
    """

    label: str
    probabilities: np.ndarray
    classes: list
    mutual_information: float
    predictive_entropy: float
    hidden_layers: dict = field(repr=False)
    mc_samples: int = 0
    descriptor: np.ndarray | None = field(default=None, repr=False)

    @property
    def probability(self) -> float:
        """Probability of ``label``."""
        return float(self.probabilities[self.classes.index(self.label)])

    def probabilities_dict(self) -> dict[str, float]:
        """``{class name: probability}`` for all classes."""
        return {c: float(p) for c, p in zip(self.classes, self.probabilities)}

    def ranking(self, k: int = 5) -> list[tuple[str, float]]:
        """The ``k`` most probable classes as ``(name, probability)``, most probable first."""
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
            raise TypeError(f"k must be an integer, got {type(k).__name__}")
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        order = np.argsort(-self.probabilities, kind="stable")[: int(k)]
        return [(self.classes[i], float(self.probabilities[i])) for i in order]

    def hidden(self, layer="h3") -> np.ndarray:
        """T-averaged activations of hidden layer ``'h1'``, ``'h2'`` or ``'h3'`` (or 1, 2, 3);
        member 0's for a deep-ensemble model."""
        key = f"h{layer}" if isinstance(layer, (int, np.integer)) and not isinstance(layer, bool) else layer
        if key not in self.hidden_layers:
            raise ValueError(f"layer must be one of {sorted(self.hidden_layers)} (or 1, 2, 3), got {layer!r}")
        return self.hidden_layers[key]

    def as_dict(self, k: int = 5) -> dict:
        """JSON-ready summary: label, its probability, top-k ranking, MI and entropy (nats)."""
        return {
            "label": self.label,
            "probability": self.probability,
            "ranking": [{"class": c, "probability": p} for c, p in self.ranking(k)],
            "mutual_information_nats": float(self.mutual_information),
            "predictive_entropy_nats": float(self.predictive_entropy),
            "mc_samples": int(self.mc_samples),
        }

    def __str__(self) -> str:
        top = ", ".join(f"{c} {p:.1%}" for c, p in self.ranking(3))
        return f"{self.label} (top: {top}; MI {self.mutual_information:.3g} nats)"
