"""The formula model's probability weights (``training.formula_trees.BRAVAIS_BLEND_WEIGHT``
for the Bravais lattices, ``BLEND_WEIGHT`` for the space groups) on a validation slice of the
*training* rows (``training.formula.validation_split``; the test rows are never read).

Needs validation networks and trees fitted without the slice:

    python -m cryspext.training.formula train --validate --arch element --members 3 --epochs 22 \\
        --split S --out cache/formula/validation_fu_S
    python -m cryspext.training.formula_trees --validate --split S --out cache/formula/valtrees_S
    python benchmarks/formula_blend_validation.py --split S

Prints, for the trees' weight w = 0 (networks alone), 0.1, ..., 1 (trees alone), the Bravais
top-1 / top-2 and the space-group top-1 / top-3 given the true lattice, in %.

``--bravais-rounds N`` (the choice of ``formula_trees.BRAVAIS_TREES["max_iter"]``) refits the
Bravais classifier without the slice with N rounds (the other settings as shipped; about 25 min
on 1 thread for 800) and prints, after every 100 rounds, the Bravais top-1 / top-2 of the trees
alone and of the mix at weights 0.5–0.8, instead of the scan above.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "python"))


def main(argv=None) -> int:
    import torch

    from cryspext.formula.lattice import BRAVAIS
    from cryspext.formula.predict import mix_parts

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--split", choices=["random", "future"], default="random")
    ap.add_argument("--nets", type=Path, default=None, help="default cache/formula/validation_fu_SPLIT")
    ap.add_argument("--trees", type=Path, default=None, help="default cache/formula/valtrees_SPLIT")
    ap.add_argument("--bravais-rounds", type=int, default=None, metavar="N",
                    help="refit the Bravais trees with N rounds and score them every 100 rounds")
    a = ap.parse_args(argv)
    v = load_validation_models(a.split, a.nets, a.trees)
    nets, trees, arr, _fit, val, X = v["nets"], v["trees"], v["arr"], v["fit"], v["val"], v["X"]
    B, SG = arr["bravais"][val], arr["sg"][val]
    n_net = len(v["nets_card"]["inputs"])
    with torch.no_grad():
        pb_net = nets.bravais(X[:, :n_net]).mean(0).numpy()
    if a.bravais_rounds:
        print(json.dumps({"split": a.split, "n_validation": int(len(val)),
                          **bravais_rounds(arr, _fit, val, pb_net, a.bravais_rounds)}, indent=1))
        return 0
    with torch.no_grad():
        pb_tree = trees.bravais(X).numpy()
        sg = {}
        for k in range(len(BRAVAIS)):
            rows = np.nonzero(B == k)[0]
            if len(rows):
                xk = X[rows]
                sg[k] = (rows, nets.spacegroup(xk[:, :n_net], k).mean(0).numpy(),
                         trees.spacegroup(xk, k).numpy())
    from cryspext.formula.lattice import spacegroups_of_bravais

    out = {}
    for w in np.round(np.linspace(0, 1, 11), 1):
        top1, top2 = bravais_top12(mix_parts(pb_net, pb_tree, w), B)
        hits1 = hits3 = 0
        for k, (rows, pn, pt) in sg.items():
            groups = np.array(spacegroups_of_bravais(BRAVAIS[k]))
            r = np.argsort(-mix_parts(pn, pt, w), axis=1)
            hits1 += int(np.sum(groups[r[:, 0]] == SG[rows]))
            hits3 += int(np.sum((groups[r[:, :3]] == SG[rows][:, None]).any(axis=1)))
        out[str(w)] = {"bravais_top1": top1, "bravais_top2": top2,
                       "sg_true_top1": round(100 * hits1 / len(val), 2),
                       "sg_true_top3": round(100 * hits3 / len(val), 2)}
    print(json.dumps({"split": a.split, "n_validation": int(len(val)), "by_tree_weight": out}, indent=1))
    return 0


def load_validation_models(split: str, nets_dir: Path | None = None, trees_dir: Path | None = None) -> dict:
    """The validation networks and trees of ``split`` (default folders
    cache/formula/validation_fu_SPLIT and valtrees_SPLIT; exits unless both are validation
    runs of that split) with the data: {"nets", "trees", "nets_card", "arr", "fit", "val", "X"}
    (X: the tree inputs of the validation rows, float32 tensor)."""
    import torch

    from cryspext.models import load_torchscript
    from cryspext.training import formula as T
    from cryspext.training.formula_trees import tree_inputs

    nets_dir = nets_dir or T.DEFAULT_CACHE / f"validation_fu_{split}"
    trees_dir = trees_dir or T.DEFAULT_CACHE / f"valtrees_{split}"
    cards = {}
    for d, name in ((nets_dir, "formula"), (trees_dir, "formula_trees")):
        cards[name] = json.loads((d / f"{name}.json").read_text())
        if cards[name].get("split") != split or "validation_run" not in cards[name]:
            sys.exit(f"{d} is not a validation run of split {split}")
    arr = T.dataset_arrays(T.DEFAULT_CACHE)
    fit, val = T.validation_split(arr, T._split(arr, split)[0], split)
    X = torch.from_numpy(np.ascontiguousarray(tree_inputs(arr, True)[val], dtype=np.float32))
    return {"nets": load_torchscript(nets_dir / "formula.pt"), "nets_card": cards["formula"],
            "trees": load_torchscript(trees_dir / "formula_trees.pt"), "arr": arr, "fit": fit,
            "val": val, "X": X}


def validation_lattice_references(v: dict) -> tuple[dict, dict, dict]:
    """On the validation rows of ``v`` (``load_validation_models``), per Bravais lattice name:
    the true free parameters, the validation networks' mean, and the benchmark's lattice forest
    (``benchmarks/formula.py``: 100 trees, √features, one forest per lattice for all its free
    parameters, seed 0) fitted on the fit rows."""
    import torch
    from sklearn.ensemble import RandomForestRegressor
    from threadpoolctl import threadpool_limits

    from cryspext.formula.lattice import BRAVAIS, FREE_PARAMETERS, PARAMETER_NAMES
    from cryspext.training.formula_trees import tree_inputs

    nets, arr, fit, val, X = v["nets"], v["arr"], v["fit"], v["val"], v["X"]
    n_net = len(v["nets_card"]["inputs"])
    XF, B, P = tree_inputs(arr, True), arr["bravais"], arr["params"]
    truth, net, forest = {}, {}, {}
    with threadpool_limits(1):
        for k, b in enumerate(BRAVAIS):
            f, rows = fit[B[fit] == k], np.nonzero(B[val] == k)[0]
            cols = [PARAMETER_NAMES.index(p) for p in FREE_PARAMETERS[b]]
            truth[b] = P[val[rows]][:, cols]
            with torch.no_grad():
                net[b] = nets.lattice(X[rows][:, :n_net], k).numpy().mean(0)
            rf = RandomForestRegressor(n_estimators=100, n_jobs=1, random_state=0, max_features="sqrt")
            y = P[f][:, cols] if len(cols) > 1 else P[f, cols[0]]  # 1-d for a single parameter
            forest[b] = rf.fit(XF[f], y).predict(XF[val[rows]]).reshape(len(rows), -1)
            print(f"{b}: {len(rows)} validation formulas", file=sys.stderr, flush=True)
    return truth, net, forest


def validation_tree_lattice(trees, nets, x, n_net: int, k: int) -> np.ndarray:
    """(n, n_free) the lattice parameters of lattice ``k`` from validation ``trees``, as
    ``formula.predict`` uses them: given the mix's space-group probabilities (validation
    ``nets``, which read the first ``n_net`` columns of ``x``) when the trees read the space
    group."""
    import torch

    from cryspext.formula.predict import mix_parts, trees_lattice
    from cryspext.training.formula_trees import BLEND_WEIGHT

    with torch.no_grad():
        if not getattr(trees, "lattice_by_spacegroup", False):
            return trees.lattice(x, k).numpy()
        p_sg = mix_parts(nets.spacegroup(x[:, :n_net], k).mean(0).numpy(),
                         trees.spacegroup(x, k).numpy(), BLEND_WEIGHT)
    return trees_lattice(trees, x, k, p_sg)


def bravais_top12(p: np.ndarray, y: np.ndarray) -> list[float]:
    """[top-1, top-2] in % of (n, 14) probabilities ``p`` against labels ``y``."""
    rank = np.argsort(-p, axis=1)
    return [round(100 * float(np.mean(rank[:, 0] == y)), 2),
            round(100 * float(np.mean((rank[:, :2] == y[:, None]).any(axis=1))), 2)]


def bravais_rounds(arr, fit, val, pb_net, rounds: int) -> dict:
    """The Bravais classifier of ``formula_trees.train`` (same binning, inputs and seed) fitted
    on ``fit`` with ``rounds`` rounds; Bravais [top-1, top-2] on ``val`` every 100 rounds, of the
    trees alone and mixed with the networks' mean ``pb_net`` at weights 0.5–0.8."""
    from threadpoolctl import threadpool_limits

    from cryspext.formula.predict import mix_parts
    from cryspext.formula.trees import bin_features, feature_edges
    from cryspext.training.formula_trees import BRAVAIS_TREES, _classifier, tree_inputs

    X, B = tree_inputs(arr, True), arr["bravais"]
    Xb = bin_features(X, feature_edges(X[fit]))
    with threadpool_limits(1):
        model = _classifier({**BRAVAIS_TREES, "max_iter": rounds}, 0).fit(Xb[fit], B[fit])
    out = {}
    for i, p in enumerate(model.staged_predict_proba(Xb[val]), 1):
        if i % 100 and i != rounds:
            continue
        trees = np.zeros((len(val), 14))
        trees[:, model.classes_] = p
        out[str(i)] = {"trees": bravais_top12(trees, B[val]),
                       **{f"mix {w}": bravais_top12(mix_parts(pb_net, trees, w), B[val])
                          for w in (0.5, 0.6, 0.7, 0.8)}}
    return {"bravais_by_rounds": out}


if __name__ == "__main__":
    sys.exit(main())
