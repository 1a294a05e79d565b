"""The choice of the cell model's mixing weight (``training.formula_trees.CELL_BLEND_WEIGHT``).

On the future split's validation slice of the *training* rows (``validation_split``; the test
rows are never read): cell networks (3 members, the shipped recipe ``training.cell.CELL_CONFIG``)
and cell trees (``CELL_TREES``) are fitted without the slice, then scored on it alone and mixed at
several weights, next to the 30-tree random forest of ``training.cell`` on the same rows.

    python benchmarks/cell_blend_validation.py [--split future] [--members 3]

About 10 min on 2 cores. Prints one JSON line per setting (conventional and primitive cells).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "python"))


def fit_validation_cell_models(arr: dict, fit: np.ndarray, members: int):
    """The cell model's two parts fitted on the rows ``fit`` alone (the shipped recipe):
    (``members`` cell networks as a ``CellEnsemble``, the cell trees, their bin edges)."""
    from threadpoolctl import threadpool_limits

    from cryspext.formula.cellnet import CellEnsemble
    from cryspext.formula.trees import bin_features, feature_edges
    from cryspext.training.cell import CELL_CONFIG, fit_cell_member, fit_rows
    from cryspext.training.formula_trees import CELL_TREES, _classifier

    C_fit, y_fit = fit_rows(arr, fit)
    edges = feature_edges(C_fit)
    with threadpool_limits(1):
        trees = _classifier(CELL_TREES, 0).fit(bin_features(C_fit, edges), y_fit)
    nets = CellEnsemble([fit_cell_member(C_fit, y_fit, seed=400 + m, config=CELL_CONFIG)
                         for m in range(members)])
    return nets, trees, edges


def validation_cell_parts(models, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(networks' mean, trees) (n, 230) probabilities of ``fit_validation_cell_models``'s
    models for cell features ``X``."""
    from cryspext.formula.trees import bin_features
    from cryspext.training.cell import _predict

    nets, trees, edges = models
    p_tree = np.zeros((len(X), 230))
    p_tree[:, trees.classes_ - 1] = trees.predict_proba(bin_features(X, edges))
    return _predict(nets, X), p_tree


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--split", choices=["random", "future"], default="future")
    ap.add_argument("--members", type=int, default=3, help="validation cell networks (default 3)")
    ap.add_argument("--weights", default="0.3,0.5,0.7")
    a = ap.parse_args(argv)
    import torch

    from cryspext.formula.predict import mix_parts
    from cryspext.training import formula as T
    from cryspext.training.cell import fit_rows, forest_scores, topk

    torch.set_num_threads(1)
    t0 = time.time()
    arr = T.dataset_arrays(T.DEFAULT_CACHE)
    train, _test = T._split(arr, a.split)
    fit, val = T.validation_split(arr, train, a.split)
    models = fit_validation_cell_models(arr, fit, a.members)
    sets = {"conventional": (arr["C"][val], arr["sg"][val]),
            "primitive": (arr["C_primitive"][val], arr["sg"][val])}
    forest = forest_scores(*fit_rows(arr, fit), sets)
    for name, (X, y) in sets.items():
        p_net, p_tree = validation_cell_parts(models, X)
        rows = {"networks": topk(p_net, y), "trees": topk(p_tree, y), "random forest": forest[name]}
        for w in (float(v) for v in a.weights.split(",")):
            rows[f"mix {w:g}"] = topk(mix_parts(p_net, p_tree, w), y)
        print(json.dumps({"split": a.split, "cells": name, "n_validation": int(len(val)),
                          **{k: {m: round(100 * v, 2) for m, v in r.items()} for k, r in rows.items()}}))
    print(json.dumps({"elapsed_s": round(time.time() - t0)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
