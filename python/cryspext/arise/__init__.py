"""ARISE: single-crystal classification into 108 prototypes with Bayesian (MC-dropout) uncertainty.

Leitherer et al., Nature Commun. 12, 6234 (2021); thesis chapters 2.3, 4 and 5. A structure is
scaled by its nearest-neighbour distance, described by the species-averaged SOAP vector (316
values, :func:`cryspext.descriptors.arise_soap`) and classified by a Bayesian MLP whose dropout
stays on at prediction time. Uncertainties (mutual information, predictive entropy) are in nats.

    >>> import cryspext.arise as arise
    >>> r = arise.classify("POSCAR")            # doctest: +SKIP
    >>> r.label, r.ranking(3), r.mutual_information   # doctest: +SKIP
"""

from __future__ import annotations

import numpy as np

from .model import AriseModel, BayesianMLP, MCPrediction, load_model
from .result import ClassificationResult

__all__ = ["classify", "classify_many", "load_model", "AriseModel", "BayesianMLP", "MCPrediction", "ClassificationResult"]


def _result(pred: MCPrediction, i: int, descriptor: np.ndarray | None) -> ClassificationResult:
    return ClassificationResult(
        label=pred.classes[int(np.argmax(pred.probabilities[i]))],
        probabilities=pred.probabilities[i],
        classes=pred.classes,
        mutual_information=float(pred.mutual_information[i]),
        predictive_entropy=float(pred.predictive_entropy[i]),
        hidden_layers={k: v[i] for k, v in pred.hidden.items()},
        mc_samples=pred.mc_samples,
        descriptor=descriptor,
    )


def classify(structure, mc_samples: int = 1000, seed: int | None = None, *, model: str | AriseModel = "arise") -> ClassificationResult:
    """Classify one structure (anything :func:`cryspext.as_structure` accepts).

    ``mc_samples``: dropout passes T (default 1000, as in the thesis); ``seed``: makes the
    Monte-Carlo sampling reproducible. Returns a :class:`ClassificationResult` whose mutual
    information and predictive entropy are in nats (natural logarithm).
    """
    return classify_many([structure], mc_samples=mc_samples, seed=seed, model=model)[0]


def classify_many(structures, mc_samples: int = 1000, seed: int | None = None, *, model: str | AriseModel = "arise") -> list[ClassificationResult]:
    """Classify several structures in one batched Monte-Carlo pass (see :func:`classify`)."""
    from ..structure import as_structure

    m = model if isinstance(model, AriseModel) else load_model(model)
    if isinstance(structures, (str, bytes)) or not hasattr(structures, "__iter__"):
        raise TypeError("structures must be a list of structures; use classify() for one")
    structures = [as_structure(s) for s in structures]
    if not structures:
        raise ValueError("no structures given")
    for s in structures:
        if len(s) == 0:
            raise ValueError("cannot classify a structure with no atoms")
    x = m.describe(structures)  # (n, views, 316)
    pred = m.predict(x, mc_samples=mc_samples, seed=seed)
    # The result keeps the first view's vector: the card's central setting.
    return [_result(pred, i, x[i, 0].astype(np.float64)) for i in range(len(structures))]
