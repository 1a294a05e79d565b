"""The choice of the lattice-parameter trees (``training.formula_trees.LATTICE_TREES``).

On the validation slice of the *training* rows (``training.formula.validation_split``; the test
rows are never read), everything fitted without the slice:

* validation networks: ``python -m cryspext.training.formula train --validate --arch element
  --members 3 --epochs 22 --split S --out cache/formula/validation_S`` (about 15 min on 1
  thread; run it first, this script only reads ``--nets``);
* lattice trees with each candidate setting below (2–5 min each on 1 thread);
* the benchmark's lattice forest (``benchmarks/formula.py``: 100 trees, √features, one forest
  per Bravais lattice for all its free parameters), on the same inputs as the setting's trees.

For each setting it prints the R² of every (lattice, parameter) for the trees alone and for the
mix with the networks' mean (the shipped weights, ``formula_trees.LENGTH_BLEND_WEIGHT`` and
``ANGLE_BLEND_WEIGHT``), the number of the 37 values above the forest's and their mean, and
the mean R² of the lengths and of the free angles for mixing weights 0, 0.1, ..., 1 (the
choice of those two weights). A setting with ``"log_lengths": True`` fits the lengths as
ln(length / Å), as the shipped trees do (``formula_trees.LOG_LENGTHS``); one with ``"angles"``
fits the free angles with those settings instead (the shipped ``formula_trees.ANGLE_TREES``).
One with ``"formula_unit": True`` reads the formula-unit features too
(``formula_trees.tree_inputs``), and so does the forest it is compared with.

    python benchmarks/lattice_trees_validation.py --split random [--nets DIR] [--settings previous,shipped]
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

# The setting the package used before, next to the shipped one (formula_trees.LATTICE_TREES).
PREVIOUS = {"learning_rate": 0.05, "max_iter": 400, "max_leaf_nodes": 31, "l2_regularization": 1.0}


def candidates() -> dict:
    from cryspext.training.formula_trees import ANGLE_TREES, FORMULA_UNIT_INPUTS, LATTICE_TREES, LOG_LENGTHS

    linear = {**LATTICE_TREES, "log_lengths": False, "formula_unit": False}
    return {
        "previous": {**PREVIOUS, "log_lengths": False, "formula_unit": False},
        "all features, 63 leaves": {**linear, "max_features": 1.0},
        "lengths in Å": linear,
        "ln(lengths)": {**linear, "log_lengths": True},
        "without formula-unit features": {**linear, "log_lengths": True, "angles": ANGLE_TREES},
        "shipped": {**LATTICE_TREES, "log_lengths": LOG_LENGTHS, "angles": ANGLE_TREES,
                    "formula_unit": FORMULA_UNIT_INPUTS},
        "10 % of the features": {**linear, "max_features": 0.1},
        "1000 rounds": {**linear, "max_iter": 1000, "min_samples_leaf": 5},
    }


def fit_predict(settings: dict, parameter: str, X_fit, y_fit, X_val) -> np.ndarray:
    """Fit the regressor of one lattice ``parameter`` with ``settings`` and predict ``X_val``
    (Å or degrees): the target of ``formula_trees.lattice_target`` with the setting's
    ``log_lengths``; an angle of a setting with ``angles`` is fitted with those settings."""
    from cryspext.formula.lattice import ANGLES
    from cryspext.training.formula_trees import _regressor, fitted_on_log, lattice_target

    settings = dict(settings)
    settings.pop("formula_unit")  # the caller passes the matching inputs
    log_lengths = settings.pop("log_lengths")
    angles = settings.pop("angles", None)
    if angles is not None and parameter in ANGLES:
        settings = angles
    model = _regressor(settings, 0).fit(X_fit, lattice_target(y_fit, parameter, log_lengths))
    pred = model.predict(X_val)
    return np.exp(pred) if fitted_on_log(parameter, log_lengths) else pred


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--split", choices=["random", "future"], default="random")
    ap.add_argument("--nets", type=Path, default=None,
                    help="validation networks (default cache/formula/validation_<split>)")
    ap.add_argument("--settings", default="without formula-unit features,shipped",
                    help="comma-separated names among: " + ", ".join(candidates()))
    a = ap.parse_args(argv)
    import torch
    from sklearn.ensemble import RandomForestRegressor
    from threadpoolctl import threadpool_limits

    from cryspext.formula.lattice import ANGLES, BRAVAIS, FREE_PARAMETERS, PARAMETER_NAMES
    from cryspext.formula.predict import mix_parts
    from cryspext.formula.trees import bin_features, feature_edges
    from cryspext.models import load_torchscript
    from cryspext.training import formula as T
    from cryspext.training.formula_trees import ANGLE_BLEND_WEIGHT, LENGTH_BLEND_WEIGHT, tree_inputs

    nets_dir = a.nets or T.DEFAULT_CACHE / f"validation_{a.split}"
    card = json.loads((nets_dir / "formula.json").read_text())
    if "validation_run" not in card or card["split"] != a.split:
        sys.exit(f"{nets_dir} is not a --validate run of split {a.split}")
    nets = load_torchscript(nets_dir / "formula.pt")
    arr = T.dataset_arrays(T.DEFAULT_CACHE)
    fit, val = T.validation_split(arr, T._split(arr, a.split)[0], a.split)
    B, P = arr["bravais"], arr["params"]
    chosen = {n: candidates()[n] for n in a.settings.split(",")}
    # Inputs with and without the formula-unit features, as the chosen settings need them; the
    # networks read them where their card lists them.
    nets_unit = len(card.get("inputs", [])) > arr["X"].shape[1]
    inputs = {u: tree_inputs(arr, formula_unit=u)
              for u in {s["formula_unit"] for s in chosen.values()} | {nets_unit}}
    X = inputs[nets_unit]
    binned = {u: bin_features(inputs[u], feature_edges(inputs[u][fit]))
              for u in {s["formula_unit"] for s in chosen.values()}}

    truth, net, forest, trees = {}, {}, {u: {} for u in binned}, {n: {} for n in chosen}
    seconds = dict.fromkeys(chosen, 0.0)
    with threadpool_limits(1):
        for k, b in enumerate(BRAVAIS):
            f, v = fit[B[fit] == k], val[B[val] == k]
            cols = [PARAMETER_NAMES.index(p) for p in FREE_PARAMETERS[b]]
            truth[b] = P[v][:, cols]
            with torch.no_grad():
                net[b] = nets.lattice(torch.from_numpy(X[v].astype(np.float32)), k).numpy().mean(0)
            for u in binned:
                x = inputs[u]
                rf = RandomForestRegressor(n_estimators=100, n_jobs=1, random_state=0, max_features="sqrt")
                forest[u][b] = rf.fit(x[f], P[f][:, cols]).predict(x[v]).reshape(len(v), -1)
            for name, settings in chosen.items():
                t = time.time()
                Xb = binned[settings["formula_unit"]]
                trees[name][b] = np.stack([fit_predict(settings, PARAMETER_NAMES[c], Xb[f], P[f, c], Xb[v])
                                           for c in cols], axis=1)
                seconds[name] += time.time() - t
            print(f"{b}: {len(v)} validation formulas", file=sys.stderr, flush=True)

    for name in chosen:
        rows, beats, total = {}, {"trees": 0, "mix": 0}, {"trees": 0.0, "mix": 0.0, "forest": 0.0}
        forest_ = forest[chosen[name]["formula_unit"]]
        for b in BRAVAIS:
            for j, p in enumerate(FREE_PARAMETERS[b]):
                y, t = truth[b][:, j], trees[name][b][:, j]
                w = ANGLE_BLEND_WEIGHT if p in ANGLES else LENGTH_BLEND_WEIGHT
                r = {"forest": T.r2_score(y, forest_[b][:, j]), "trees": T.r2_score(y, t),
                     "mix": T.r2_score(y, mix_parts(net[b][:, j], t, w))}
                rows[f"{b} {p}"] = {m: round(v, 3) for m, v in r.items()}
                for m in beats:
                    beats[m] += r[m] > r["forest"]
                for m in total:
                    total[m] += r[m]
        n = len(rows)
        scan = {}  # mean R² of the mix by weight, lengths and angles apart
        for w in np.round(np.linspace(0, 1, 11), 1):
            r2 = {"lengths": [], "angles": []}
            for b in BRAVAIS:
                for j, p in enumerate(FREE_PARAMETERS[b]):
                    mix = mix_parts(net[b][:, j], trees[name][b][:, j], w)
                    r2["angles" if p in ANGLES else "lengths"].append(
                        T.r2_score(truth[b][:, j], mix))
            scan[str(w)] = {k: round(float(np.mean(v)), 4) for k, v in r2.items()}
        print(json.dumps({"split": a.split, "setting": name, "lattice_trees": chosen[name],
                          "mix_weights": {"lengths": LENGTH_BLEND_WEIGHT, "angles": ANGLE_BLEND_WEIGHT},
                          "fit_s": round(seconds[name], 1),
                          "beats_forest": {m: f"{v} of {n}" for m, v in beats.items()},
                          "mean_r2": {m: round(v / n, 4) for m, v in total.items()},
                          "mean_r2_by_weight": scan, "r2": rows}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
