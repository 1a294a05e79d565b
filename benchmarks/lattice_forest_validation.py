"""The forests' share in the lattice regressors (``training.formula_trees.LATTICE_FOREST_WEIGHT``),
scanned on the validation slice of the *training* rows (``training.formula.validation_split``;
the test rows are never read).

Everything is fitted without the slice: the validation networks and trees of
``lattice_spacegroup_validation.py`` (``cache/formula/validation_fu_S``,
``cache/formula/valtrees_S``, whose lattice regressors hold no forest), and here the
``LATTICE_FOREST`` forests of every lattice parameter (``formula_trees.fit_lattice_forests``, on
the validation trees' inputs and targets). For each share w the lattice heads are packed as
``formula.trees.ForestMix`` (boosted trees copied, value = (1 − w) · boosted + w · forest, as
``formula_trees`` ships them) and used as ``formula.predict`` uses them: given the mix's
space-group probabilities, then mixed with the networks' mean at the shipped weights. It prints
the mean R² of the 37 (lattice, parameter) values by w, how many are above the benchmark's
forest (``benchmarks/formula.py``: 100 full-depth trees, one per lattice), the median absolute
error of the lengths and of the angles (the typical error, which R² weighs little), and every
value's R² at w = 0 and at the best w.

    python benchmarks/lattice_forest_validation.py --split future
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "python"))
sys.path.insert(0, str(REPO / "benchmarks"))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--split", choices=["random", "future"], default="random")
    ap.add_argument("--nets", type=Path, default=None, help="default cache/formula/validation_fu_SPLIT")
    ap.add_argument("--trees", type=Path, default=None, help="default cache/formula/valtrees_SPLIT")
    ap.add_argument("--weights", default="0,0.1,0.2,0.3,0.4,0.5", help="forest shares to scan")
    a = ap.parse_args(argv)
    import torch
    from threadpoolctl import threadpool_limits

    from cryspext.formula.lattice import ANGLES, BRAVAIS, FREE_PARAMETERS, PARAMETER_NAMES
    from cryspext.formula.predict import mix_parts
    from cryspext.formula.trees import ForestMix, bin_features, from_sklearn
    from cryspext.training import formula as T
    from cryspext.training.formula_trees import (ANGLE_BLEND_WEIGHT, LENGTH_BLEND_WEIGHT,
                                                 fit_lattice_forests, lattice_rows, tree_inputs)
    from formula_blend_validation import (load_validation_models, validation_lattice_references,
                                          validation_tree_lattice)

    v = load_validation_models(a.split, a.nets, a.trees)
    nets, trees, arr, fit, val, X = v["nets"], v["trees"], v["arr"], v["fit"], v["val"], v["X"]
    trees_dir = a.trees or T.DEFAULT_CACHE / f"valtrees_{a.split}"
    settings = json.loads((trees_dir / "formula_trees.json").read_text())["settings"]
    if not trees.lattice_by_spacegroup or settings.get("lattice_forest_weight", 0) > 0:
        sys.exit("needs validation trees that read the space group and hold no forests")
    n_net = len(v["nets_card"]["inputs"])
    XF = tree_inputs(arr, True)
    B, SG, P = arr["bravais"], arr["sg"], arr["params"]
    edges = trees.edges.numpy()
    Xb = bin_features(XF, edges[: XF.shape[1]])
    onehot = trees.onehot_groups.numpy()
    weights = [float(w) for w in a.weights.split(",")]

    truth, net, baseline_forest = validation_lattice_references(v)
    forests = {}  # the forests to mix in, fitted on the validation trees' inputs and targets
    with threadpool_limits(1):
        for k, b in enumerate(BRAVAIS):
            t0, t1 = int(trees.tree_offsets[15 + k]), int(trees.tree_offsets[16 + k])
            if t1 > t0:  # a fitted head (constant heads stay as they are)
                r = fit[B[fit] == k]
                cols = [PARAMETER_NAMES.index(p) for p in FREE_PARAMETERS[b]]
                forests[k] = fit_lattice_forests(lattice_rows(Xb, SG, b, r, onehot), P[r][:, cols],
                                                 FREE_PARAMETERS[b])

    def weight(p):
        return ANGLE_BLEND_WEIGHT if p in ANGLES else LENGTH_BLEND_WEIGHT

    r2, errors = {}, {}
    for w in weights:
        heads = [(trees, None, h) for h in range(15)]
        for k in range(14):
            c0, c1 = int(trees.column_offsets[15 + k]), int(trees.column_offsets[16 + k])
            log = trees.exp_columns[c0:c1].numpy()
            heads.append((ForestMix((trees, 15 + k), forests[k], w), c1 - c0, log) if k in forests
                         else (trees, None, 15 + k))
        module = torch.jit.script(from_sklearn(heads, edges, onehot_groups=onehot))
        r2[w], errors[w] = {}, {"lengths": [], "angles": []}
        for k, b in enumerate(BRAVAIS):
            rows = np.nonzero(B[val] == k)[0]
            lat = validation_tree_lattice(module, nets, X[rows], n_net, k)
            for j, p in enumerate(FREE_PARAMETERS[b]):
                mixed = mix_parts(net[b][:, j], lat[:, j], weight(p))
                r2[w][f"{b} {p}"] = T.r2_score(truth[b][:, j], mixed)
                errors[w]["angles" if p in ANGLES else "lengths"].append(np.abs(mixed - truth[b][:, j]))
        print(f"w = {w}: mean R² {np.mean(list(r2[w].values())):.4f}", file=sys.stderr, flush=True)
    forest_r2 = {f"{b} {p}": T.r2_score(truth[b][:, j], baseline_forest[b][:, j])
                 for b in BRAVAIS for j, p in enumerate(FREE_PARAMETERS[b])}
    summary = {str(w): {"mean_r2": round(float(np.mean(list(r2[w].values()))), 4),
                        "mean_r2_lengths": round(float(np.mean([x for n, x in r2[w].items()
                                                                if n.split()[1] not in ANGLES])), 4),
                        "mean_r2_angles": round(float(np.mean([x for n, x in r2[w].items()
                                                               if n.split()[1] in ANGLES])), 4),
                        "above_forest": int(sum(r2[w][n] > forest_r2[n] for n in forest_r2)),
                        # the typical error, which R² (a mean of squares) weighs little
                        "median_abs_error_lengths_A": round(float(np.median(np.concatenate(errors[w]["lengths"]))), 3),
                        "median_abs_error_angles_deg": round(float(np.median(np.concatenate(errors[w]["angles"]))), 3)}
               for w in weights}
    best = max(weights, key=lambda w: summary[str(w)]["mean_r2"])
    out = {"split": a.split, "mix_weights": {"lengths": LENGTH_BLEND_WEIGHT, "angles": ANGLE_BLEND_WEIGHT},
           "forest_mean_r2": round(float(np.mean(list(forest_r2.values()))), 4),
           "by_forest_weight": summary, "best_forest_weight": best,
           "r2": {n: {"forest": round(forest_r2[n], 3), f"mix w={weights[0]}": round(r2[weights[0]][n], 3),
                      f"mix w={best}": round(r2[best][n], 3)} for n in forest_r2}}
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
