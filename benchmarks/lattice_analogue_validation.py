"""Would the lattices of known analogues improve the lattice parameters? (issue 7)

A chemist guesses the cell of a new compound from a known one of the same stoichiometry with
similar elements (``formula.analogues``), scaled to the new elements' size. This scores that
guess as a third part of the lattice mix, on the validation slices only (the test rows are
never read): for a formula and a Bravais lattice, the ``K`` nearest analogues *of that lattice*
among the fit rows (same pattern, distance Σ |ΔMendeleev number|), their free parameters with the
lengths scaled by (V_formula / V_analogue)^(1/3) (V: summed elemental ground-state volumes,
``features.formula_unit_features``), averaged with weights exp(−distance / ``TAU``), times
P(the analogue's space group | formula, lattice) from the validation mix where ``by_group``.
The mixed value is (1 − u) · model + u · analogues where the nearest such analogue is at most
``D`` away, else the model's. The model: the validation networks and trees
(``cache/formula/validation_fu_S``, ``valtrees_S``, fitted without the slice), mixed as
``formula.predict`` mixes them (the trees given the mix's space-group probabilities).

Rule, fixed before the first run: score the mean R² of the 37 (lattice, parameter) values on
each slice for every setting of the grid below; adopt the setting with the largest sum of the
two slices' means only if it raises each slice's mean by at least 0.01 over the model alone.
One setting for both splits. Otherwise nothing is adopted.

First run (session 23): best K 5, by_group, D 8, u 0.5; mean R² random 0.5762 → 0.5963
(+0.020, all 37 values up), future 0.2118 → 0.2201 (+0.008, 30 of 37 up): not adopted.

Second grid (``--distance-weighted``), written after the first run and before its own: the
share falls with the nearest analogue's distance d, u = u0 · exp(−d / τ_u), no cut-off; grid
``GRID_WEIGHTED``; the same rule (largest sum of the two means, at least +0.01 on each slice).
Its run: best K 5, τ_u 16, u0 0.6; random 0.5762 → 0.6020 (+0.026), future 0.2118 → 0.2217
(+0.0099): not adopted either.

    python benchmarks/lattice_analogue_validation.py [--distance-weighted]
"""

from __future__ import annotations

import itertools
import json
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "python"))
sys.path.insert(0, str(REPO / "benchmarks"))

TAU = 5.0
GRID = {"K": [1, 3, 5], "by_group": [False, True], "D": [0, 2, 4, 8, 1000],
        "u": [0.1, 0.2, 0.3, 0.4, 0.5, 0.6]}
GRID_WEIGHTED = {"K": [3, 5], "by_group": [True], "tau_u": [2, 4, 8, 16],
                 "u0": [0.4, 0.5, 0.6, 0.7, 0.8]}


def analogue_candidates(table, formula: str, k: int, n: int = 30):
    """(rows, distances) of the nearest ``n`` fit-row analogues of ``formula`` whose Bravais
    lattice is ``k``, nearest first."""
    from cryspext.formula.analogues import pattern
    from cryspext.formula.parse import parse_formula

    amounts, mendeleev, _ = pattern(parse_formula(formula))
    rows, dist = table.nearest(amounts, mendeleev, 10**9)
    same = table.columns["bravais"][rows] == k
    return rows[same][:n], dist[same][:n]


def main(argv=None) -> int:
    import argparse

    import torch

    from cryspext.formula.analogues import AnalogueTable, table_columns
    from cryspext.formula.lattice import (ANGLES, BRAVAIS, FREE_PARAMETERS, PARAMETER_NAMES,
                                          spacegroups_of_bravais)
    from cryspext.formula.predict import mix_parts
    from cryspext.training import formula as T
    from cryspext.training.formula_trees import (ANGLE_BLEND_WEIGHT, BLEND_WEIGHT, LENGTH_BLEND_WEIGHT,
                                                 tree_inputs)
    from formula_blend_validation import load_validation_models, validation_tree_lattice

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--distance-weighted", action="store_true", help="the second grid (docstring)")
    weighted = ap.parse_args(argv).distance_weighted
    grid = GRID_WEIGHTED if weighted else GRID
    torch.set_num_threads(2)
    settings = list(itertools.product(*grid.values()))
    scores, base = {}, {}
    for split in ("random", "future"):
        v = load_validation_models(split)
        nets, trees, arr, fit, val, X = v["nets"], v["trees"], v["arr"], v["fit"], v["val"], v["X"]
        n_net = len(v["nets_card"]["inputs"])
        B, SG, P = arr["bravais"], arr["sg"], arr["params"]
        volume = tree_inputs(arr, True)[:, -1].astype(float)  # Σ elemental volumes per formula unit
        # the fit rows' table, with the labels' parameters (rhombohedral cells for hR)
        table = AnalogueTable(table_columns(arr["formula"][fit], arr["mp_id"][fit], SG[fit], B[fit], P[fit]))
        r2 = {s: [] for s in settings}
        base[split] = []
        for k, b in enumerate(BRAVAIS):
            rows = np.nonzero(B[val] == k)[0]
            cols = [PARAMETER_NAMES.index(p) for p in FREE_PARAMETERS[b]]
            truth = P[val[rows]][:, cols]
            with torch.no_grad():
                x = X[rows]
                net = nets.lattice(x[:, :n_net], k).numpy().mean(0)
                p_sg = mix_parts(nets.spacegroup(x[:, :n_net], k).mean(0).numpy(),
                                 trees.spacegroup(x, k).numpy(), BLEND_WEIGHT)
            w_mix = np.array([ANGLE_BLEND_WEIGHT if p in ANGLES else LENGTH_BLEND_WEIGHT
                              for p in FREE_PARAMETERS[b]])
            model = mix_parts(net, validation_tree_lattice(trees, nets, x, n_net, k), w_mix)
            groups = np.array(spacegroups_of_bravais(b))  # the order of the space-group heads
            lengths = np.array([p not in ANGLES for p in FREE_PARAMETERS[b]])
            # per validation row: the analogue estimate for each (K, by_group) and the nearest distance
            est = {(K, g): np.full(truth.shape, np.nan) for K in grid["K"] for g in grid["by_group"]}
            nearest = np.full(len(rows), np.inf)
            for i, r in enumerate(val[rows]):
                cand, dist = analogue_candidates(table, str(arr["formula"][r]), k, max(grid["K"]))
                if not len(cand):
                    continue
                nearest[i] = dist[0]
                src = fit[cand]  # the analogues' data rows
                values = P[src][:, cols].astype(float)
                values[:, lengths] *= (volume[r] / volume[src])[:, None] ** (1.0 / 3.0)
                prob = p_sg[i][np.searchsorted(groups, SG[src])]
                for K in grid["K"]:
                    for g in grid["by_group"]:
                        w = np.exp(-dist[:K] / TAU) * (prob[:K] if g else 1.0)
                        w = w / w.sum() if w.sum() > 0 else np.full(len(w), 1.0 / len(w))
                        est[K, g][i] = w @ values[:K]
            for j, p in enumerate(FREE_PARAMETERS[b]):
                base[split].append(T.r2_score(truth[:, j], model[:, j]))
            for K, g, a, u in settings:
                # the analogues' share: u within distance a (grid D), or u · exp(−d / a) (tau_u)
                share = u * (np.exp(-nearest / a) if weighted else (nearest <= a).astype(float))
                share = np.where(np.isfinite(nearest), share, 0.0)[:, None]
                mixed = (1 - share) * model + share * np.nan_to_num(est[K, g])
                r2[K, g, a, u].extend(T.r2_score(truth[:, j], mixed[:, j]) for j in range(len(cols)))
            covered = float(np.mean(np.isfinite(nearest)))
            print(f"{split} {b}: {len(rows)} rows, {covered:.0%} with an analogue of the lattice",
                  file=sys.stderr, flush=True)
        scores[split] = {s: float(np.mean(r2[s])) for s in settings}
        base[split] = float(np.mean(base[split]))
        print(f"{split}: model alone {base[split]:.4f}", file=sys.stderr, flush=True)
    best = max(settings, key=lambda s: scores["random"][s] + scores["future"][s])
    gains = {sp: scores[sp][best] - base[sp] for sp in scores}
    adopt = all(g >= 0.01 for g in gains.values())
    name = dict(zip(grid, best))
    top = sorted(settings, key=lambda s: -(scores["random"][s] + scores["future"][s]))[:10]
    print(json.dumps({"model_alone_mean_r2": {k: round(x, 4) for k, x in base.items()},
                      "best": name, "gain": {k: round(x, 4) for k, x in gains.items()},
                      "adopted": adopt,
                      "ten_best": [{**dict(zip(grid, s)), **{sp: round(scores[sp][s], 4) for sp in scores}}
                                   for s in top]}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
