"""pymatgen front door: ARISE classification in the style of pymatgen's analyzers.

    >>> from cryspext.pymatgen import ARISEAnalyzer
    >>> a = ARISEAnalyzer(structure)                  # a pymatgen Structure (or anything as_structure takes)
    >>> a.get_label(), a.get_ranking(3), a.get_mutual_information()
    >>> a.get_result().as_dict()                      # MSONable, JSON-serialisable

The analysis runs once, on construction (as ``SpacegroupAnalyzer`` does).
"""

from __future__ import annotations

from typing import Callable

import numpy as np
from monty.json import MSONable

from .spm.mc import predict_structure
from .structure import as_structure

__all__ = ["ARISEAnalyzer", "ARISEResult"]


class ARISEResult(MSONable):
    """ARISE classification of one structure: class probabilities (in ``classes`` order),
    mutual information and predictive entropy (nats), number of MC-dropout passes."""

    def __init__(self, label: str, classes: list, probabilities: list, mutual_information: float,
                 predictive_entropy: float, mc_samples: int):
        self.label = str(label)
        self.classes = [str(c) for c in classes]
        self.probabilities = [float(p) for p in probabilities]
        self.mutual_information = float(mutual_information)
        self.predictive_entropy = float(predictive_entropy)
        self.mc_samples = int(mc_samples)
        if len(self.classes) != len(self.probabilities):
            raise ValueError("one probability per class is needed")

    def ranking(self, k: int = 5) -> list:
        """The ``k`` most probable classes as (name, probability), best first."""
        order = np.argsort(-np.asarray(self.probabilities), kind="stable")[: max(int(k), 0)]
        return [(self.classes[i], self.probabilities[i]) for i in order]

    def __repr__(self) -> str:
        return f"ARISEResult(label={self.label!r}, mutual_information={self.mutual_information:.3g})"


class ARISEAnalyzer:
    """Classify ``structure`` (pymatgen ``Structure``/``Molecule``, ASE ``Atoms``, path, ...) into
    the 108 ARISE prototypes with ``mc_samples`` MC-dropout passes (``seed`` for reproducibility).

    ``model`` and ``descriptor`` (structure -> feature vector) replace the shipped ARISE network
    and its SOAP descriptor (for tests and custom models).
    """

    def __init__(self, structure, mc_samples: int = 1000, seed: int | None = 0, *, model=None,
                 descriptor: Callable | None = None):
        if isinstance(mc_samples, bool) or not isinstance(mc_samples, (int, np.integer)) or mc_samples < 1:
            raise ValueError(f"mc_samples must be a positive integer, got {mc_samples!r}")
        self.structure = structure
        s = as_structure(structure)
        if len(s) == 0:
            raise ValueError("cannot classify a structure with no atoms")
        if model is None:
            from .arise import load_model

            model = load_model()
        r = predict_structure(model, s, mc_samples=int(mc_samples), seed=seed, descriptor=descriptor)
        classes = list(model.classes)
        self._result = ARISEResult(
            label=classes[int(np.argmax(r.probabilities[0]))],
            classes=classes,
            probabilities=r.probabilities[0].tolist(),
            mutual_information=r.mutual_information[0],
            predictive_entropy=r.predictive_entropy[0],
            mc_samples=mc_samples,
        )

    def get_label(self) -> str:
        """The most probable ARISE prototype."""
        return self._result.label

    def get_probabilities(self) -> dict:
        """{class name: probability} for all classes."""
        return dict(zip(self._result.classes, self._result.probabilities))

    def get_ranking(self, k: int = 5) -> list:
        """The ``k`` most probable classes as (name, probability) pairs, best first."""
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise ValueError(f"k must be a positive integer, got {k!r}")
        return self._result.ranking(k)

    def get_mutual_information(self) -> float:
        """Model uncertainty (mutual information, nats): low for known prototypes."""
        return self._result.mutual_information

    def get_predictive_entropy(self) -> float:
        """Predictive entropy (nats)."""
        return self._result.predictive_entropy

    def get_result(self) -> ARISEResult:
        """All of it as an MSONable :class:`ARISEResult`."""
        return self._result
