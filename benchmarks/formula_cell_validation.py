"""Exponents for combining the formula and cell models (``predict_cell(..., formula=...)``),
scanned on a split's validation slice of the *training* rows (the test rows are never read).

    python benchmarks/formula_cell_validation.py --split S [--members 3]

The combination is P ∝ P(group | formula)^α · P(group | cell)^β / P(group)^γ; naive Bayes is
α = β = γ = 1. Both models are fitted without the slice: the formula model's validation networks
and COD-refit trees (``cache/formula/validation_fu_S``, ``cache/formula/valtrees_cod_S``, Bravais
probabilities tempered with the split's calibrated temperature), the cell model's networks
(``--members``) and trees refitted here (``cell_blend_validation.fit_validation_cell_models``,
about 10 min on one core), P(group) from the fit rows. For reference, the 30-tree random forest
on formula and cell features together (``benchmarks/formula_cell.py``'s baseline) on the same rows.

Rule, fixed before the first run: over α, β in 0.5 … 1.0 (steps of 0.1) and γ in 0, 0.25 … 1,
the exponents with the highest top-1, averaged over conventional and primitive cells, replace
naive Bayes for that split only if they gain at least 0.5 point over it on the slice.

The volume term (session 20): naive Bayes times P(ρ | group)^δ, ρ = ln(V_cell / V_formula unit)
(``formula.cellvolume``; its table fitted on the fit rows' conventional cells and, for centred
lattices, their primitive cells), for δ in ``DELTAS``. Rule, fixed before its first run: the δ
with the highest top-1, averaged over conventional and primitive cells, is adopted for that split
if it gains at least 0.5 point over naive Bayes on the slice.
Prints one JSON object.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "python"))
sys.path.insert(0, str(REPO / "benchmarks"))

ALPHAS = [round(0.5 + 0.1 * i, 1) for i in range(6)]
GAMMAS = [0.0, 0.25, 0.5, 0.75, 1.0]
MIN_GAIN = 0.5  # points of top-1 to replace naive Bayes
DELTAS = [0.25, 0.5, 0.75, 1.0]  # exponents of the volume term


def scores(log_f, log_c, log_prior, y, alpha, beta, gamma, log_v=None, delta=0.0) -> dict:
    """Top-1 / top-3 (%) and mean NLL of the combination with exponents (α, β, γ) and the
    volume term ``log_v`` (n, 230) with exponent δ."""
    z = alpha * log_f + beta * log_c - gamma * log_prior
    if log_v is not None:
        z = z + delta * log_v
    z -= z.max(axis=1, keepdims=True)
    log_p = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    rank = np.argsort(-z, axis=1)
    return {"top1": round(100 * float(np.mean(rank[:, 0] == y)), 2),
            "top3": round(100 * float(np.mean((rank[:, :3] == y[:, None]).any(axis=1))), 2),
            "nll": round(float(-log_p[np.arange(len(y)), y].mean()), 4)}


def main(argv=None) -> int:
    import torch
    from sklearn.ensemble import RandomForestClassifier

    from cell_blend_validation import fit_validation_cell_models, validation_cell_parts
    from cryspext.formula import cellvolume
    from cryspext.formula.confidence import temper
    from cryspext.formula.lattice import BRAVAIS, spacegroups_of_bravais
    from cryspext.formula.predict import mix_parts
    from cryspext.training import formula as T
    from cryspext.training.cell import fit_rows
    from cryspext.training.formula_trees import (BLEND_WEIGHT, BRAVAIS_BLEND_WEIGHT, CELL_BLEND_WEIGHT,
                                                 tree_inputs)
    from formula import rf_scores
    from formula_blend_validation import load_validation_models

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--split", choices=["random", "future"], default="random")
    ap.add_argument("--members", type=int, default=3, help="validation cell networks (default 3)")
    a = ap.parse_args(argv)
    torch.set_num_threads(1)
    t0 = time.time()
    v = load_validation_models(a.split, None, T.DEFAULT_CACHE / f"valtrees_cod_{a.split}")
    nets, trees, arr, fit, val, X = v["nets"], v["trees"], v["arr"], v["fit"], v["val"], v["X"]
    n_net = len(v["nets_card"]["inputs"])
    calibration = json.loads((REPO / "python" / "cryspext" / "training" / "formula_calibration.json").read_text())
    temperature = calibration[a.split]["bravais_temperature"]
    with torch.no_grad():
        bravais = temper(mix_parts(nets.bravais(X[:, :n_net]).mean(0).numpy(), trees.bravais(X).numpy(),
                                   BRAVAIS_BLEND_WEIGHT), temperature)
        p_formula = np.zeros((len(val), 230))
        for k, b in enumerate(BRAVAIS):
            p = mix_parts(nets.spacegroup(X[:, :n_net], k).mean(0).numpy(), trees.spacegroup(X, k).numpy(),
                          BLEND_WEIGHT)
            p_formula[:, np.array(spacegroups_of_bravais(b)) - 1] = bravais[:, k:k + 1] * p
    prior = np.bincount(arr["sg"][fit] - 1, minlength=230) + 1.0
    prior /= prior.sum()
    y = arr["sg"][val] - 1
    cell_models = fit_validation_cell_models(arr, fit, a.members)
    tiny = 1e-12  # a log of exactly 0 would make a group impossible for any exponent
    log_f, log_prior = np.log(p_formula + tiny), np.log(prior)
    out = {"split": a.split, "n_validation": int(len(val)), "bravais_temperature": temperature,
           "rule": f"best mean top-1 over both cell settings; adopted if >= {MIN_GAIN} point above naive Bayes"}
    grid = {}
    C_fit, y_fit = fit_rows(arr, fit)
    XF = tree_inputs(arr, formula_unit=True)
    centred = fit[np.array([BRAVAIS[b][1] != "P" for b in arr["bravais"][fit]])]
    rf = RandomForestClassifier(n_estimators=30, n_jobs=1, random_state=0)
    rf.fit(np.column_stack([XF[np.concatenate([fit, centred])], C_fit]), y_fit - 1)
    # Volume term: the table from the same cells the cell model fits on.
    fu_volume = XF[:, -1]  # formula_unit_volume, Å³
    v_table = T.cell_volume_table(arr, fit)[0]
    volume_grid = {}
    for setting, C, cells in (("conventional", arr["C"][val], arr["conventional"][val]),
                              ("primitive", arr["C_primitive"][val], arr["primitive"][val])):
        p_net, p_tree = validation_cell_parts(cell_models, C)
        log_v = cellvolume.log_likelihood(
            v_table, cellvolume.volume_ratio(cellvolume.cell_volume(cells), fu_volume[val]))
        log_c = np.log(mix_parts(p_net, p_tree, CELL_BLEND_WEIGHT) + tiny)
        out[setting] = {"formula alone": scores(log_f, 0 * log_c, log_prior, y, 1, 0, 0),
                        "cell alone": scores(0 * log_f, log_c, log_prior, y, 0, 1, 0),
                        "naive Bayes": scores(log_f, log_c, log_prior, y, 1, 1, 1),
                        "random forest on both": scores(
                            np.log(rf_scores(rf, np.column_stack([XF[val], C]), 230) + tiny),
                            0 * log_c, log_prior, y, 1, 0, 0)}
        for delta in DELTAS:
            volume_grid.setdefault(delta, {})[setting] = scores(log_f, log_c, log_prior, y, 1, 1, 1,
                                                                log_v, delta)
        for alpha, beta, gamma in itertools.product(ALPHAS, ALPHAS, GAMMAS):
            grid.setdefault((alpha, beta, gamma), {})[setting] = scores(log_f, log_c, log_prior, y,
                                                                        alpha, beta, gamma)
    mean_top1 = {k: (r["conventional"]["top1"] + r["primitive"]["top1"]) / 2 for k, r in grid.items()}
    best = max(mean_top1, key=mean_top1.get)
    base = mean_top1[(1.0, 1.0, 1.0)]
    out["best"] = {"alpha": best[0], "beta": best[1], "gamma": best[2], **grid[best],
                   "mean_top1": mean_top1[best], "naive_bayes_mean_top1": base,
                   "adopted": bool(mean_top1[best] - base >= MIN_GAIN)}
    mean_v = {d: (r["conventional"]["top1"] + r["primitive"]["top1"]) / 2 for d, r in volume_grid.items()}
    best_d = max(mean_v, key=mean_v.get)
    out["volume_term"] = {"by_delta": {str(d): {**r, "mean_top1": mean_v[d]} for d, r in volume_grid.items()},
                          "best_delta": best_d, "naive_bayes_mean_top1": base,
                          "adopted": bool(mean_v[best_d] - base >= MIN_GAIN)}
    out["elapsed_s"] = round(time.time() - t0)
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
