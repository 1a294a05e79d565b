"""Lattice trees that read the space group (``training.formula_trees.LATTICE_BY_SPACEGROUP``)
against the same trees without it, on the validation slice of the *training* rows
(``training.formula.validation_split``; the test rows are never read).

Everything is fitted without the slice:

* validation networks: ``python -m cryspext.training.formula train --validate --no-cell --arch
  element --members 3 --epochs 22 --split S --out cache/formula/validation_fu_S``;
* validation trees: ``python -m cryspext.training.formula_trees --validate --split S --out
  cache/formula/valtrees_S``, then a copy of that folder whose lattice regressors are refitted
  with the other setting (``--refit-lattice``, the classifiers stay the same);
* the benchmark's lattice forest (``benchmarks/formula.py``: 100 trees, √features, one forest per
  Bravais lattice for all its free parameters, seed 0), on the same inputs.

Trees that read the space group are used as ``formula.predict`` uses them: their values for the
5 groups likeliest by the mix's space-group probabilities (networks and trees, ``blend_weight``),
averaged with those probabilities. For both tree files it prints the R² of every (lattice,
parameter), trees alone and mixed with the networks' mean at the shipped weights, the mean over
the 37 values, how many are above the forest's, and the mean R² of the lengths and of the free
angles of the mix for mixing weights 0.5 ... 1. Trees that read the space group are also scored
when told each formula's true group ("..., true group"): the case of a user who knows it.

    python benchmarks/lattice_spacegroup_validation.py --split random \\
        --before cache/formula/valtrees_random_flat --after cache/formula/valtrees_random
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
    ap.add_argument("--before", type=Path, required=True, help="validation trees, one setting")
    ap.add_argument("--after", type=Path, required=True, help="validation trees, the other setting")
    a = ap.parse_args(argv)
    import torch

    from cryspext.formula.lattice import ANGLES, BRAVAIS, FREE_PARAMETERS, spacegroups_of_bravais
    from cryspext.formula.predict import mix_parts
    from cryspext.training import formula as T
    from cryspext.training.formula_trees import ANGLE_BLEND_WEIGHT, LENGTH_BLEND_WEIGHT
    from formula_blend_validation import (load_validation_models, validation_lattice_references,
                                          validation_tree_lattice)

    v = load_validation_models(a.split, a.nets, a.before)
    nets, arr, val, X = v["nets"], v["arr"], v["val"], v["X"]
    n_net = len(v["nets_card"]["inputs"])
    files = {"before": v["trees"], "after": load_validation_models(a.split, a.nets, a.after)["trees"]}
    flags = {name: bool(getattr(t, "lattice_by_spacegroup", False)) for name, t in files.items()}
    truth, net, forest = validation_lattice_references(v)
    B = arr["bravais"]
    trees = {name: {} for name in files}
    for k, b in enumerate(BRAVAIS):
        rows = np.nonzero(B[val] == k)[0]
        for name, t in files.items():
            trees[name][b] = validation_tree_lattice(t, nets, X[rows], n_net, k)
            if flags[name]:  # and told the true space group (its position in the lattice)
                groups = np.searchsorted(spacegroups_of_bravais(b), arr["sg"][val[rows]])
                with torch.no_grad():
                    trees.setdefault(f"{name}, true group", {})[b] = t.lattice_given(
                        X[rows], k, torch.from_numpy(groups[:, None]), torch.ones(len(rows), 1)).numpy()

    def weight(p):
        return ANGLE_BLEND_WEIGHT if p in ANGLES else LENGTH_BLEND_WEIGHT

    out = {"split": a.split, "lattice_by_spacegroup": flags,
           "mix_weights": {"lengths": LENGTH_BLEND_WEIGHT, "angles": ANGLE_BLEND_WEIGHT}, "r2": {}}
    summary = {}
    for b in BRAVAIS:
        for j, p in enumerate(FREE_PARAMETERS[b]):
            y = truth[b][:, j]
            r = {"forest": T.r2_score(y, forest[b][:, j])}
            for name in trees:
                t = trees[name][b][:, j]
                r[f"trees {name}"] = T.r2_score(y, t)
                r[f"mix {name}"] = T.r2_score(y, mix_parts(net[b][:, j], t, weight(p)))
            out["r2"][f"{b} {p}"] = {m: round(x, 3) for m, x in r.items()}
    methods = list(next(iter(out["r2"].values())))
    for m in methods:
        values = [r[m] for r in out["r2"].values()]
        summary[m] = {"mean_r2": round(float(np.mean(values)), 4),
                      "above_forest": int(sum(r[m] > r["forest"] for r in out["r2"].values()))}
    out["summary"] = summary
    scan = {}
    for name in trees:
        scan[name] = {}
        for w in np.round(np.linspace(0.5, 1, 6), 1):
            r2 = {"lengths": [], "angles": []}
            for b in BRAVAIS:
                for j, p in enumerate(FREE_PARAMETERS[b]):
                    mix = mix_parts(net[b][:, j], trees[name][b][:, j], w)
                    r2["angles" if p in ANGLES else "lengths"].append(T.r2_score(truth[b][:, j], mix))
            scan[name][str(w)] = {kind: round(float(np.mean(x)), 4) for kind, x in r2.items()}
    out["mix_mean_r2_by_weight"] = scan
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
