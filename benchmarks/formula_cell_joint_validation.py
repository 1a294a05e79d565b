"""The joint formula-and-cell trees (``formula.formulacell``,
``training.formula_trees.FORMULA_CELL_BLEND_WEIGHT``) mixed into ``predict_cell(...,
formula=...)``, scored on a split's validation slice of the *training* rows
(``training.formula.validation_split``; the test rows are never read).

Everything is fitted without the slice:

    python -m cryspext.training.formula train --validate --no-cell --arch element --members 3 \\
        --epochs 22 --split S --out cache/formula/validation_fu_S
    python -m cryspext.training.formula_trees --validate --split S --out cache/formula/valtrees_S \\
        --shared ../shared/data
    python -m cryspext.training.formula_trees --validate --formula-cell --split S \\
        --out cache/formula/valjoint_S
    python benchmarks/formula_cell_joint_validation.py --split S      # for S = random, future
    python benchmarks/formula_cell_joint_validation.py --decide

The naive-Bayes combination is built as ``predict_cell`` builds it: the formula model's
``spacegroup_distribution`` (validation networks and trees in one folder with an analogue table
of the fit rows, so with the analogues' vote and the split's Bravais temperature), the cell
model's networks (3) and trees refitted on the fit rows (``cell_blend_validation``), P(group)
from the fit rows, and the volume term with the split's δ (its ``cell_volume.json``) on a table
of the fit rows. Then (1 − w) · naive Bayes + w · joint trees for w = 0, 0.1, …, 1. For
reference, a 30-tree random forest on all formula features and the cell features (the
baseline of ``benchmarks/formula_cell.py``). Each ``--split`` run writes
``cache/formula/joint_validation_S.json``.

Rule, written before either slice was scored: for each split S and weight w, g_S(w) = top-1 at
w minus top-1 at w = 0, both averaged over conventional and primitive cells. The w in 0.1 … 1
with the largest g_random(w) + g_future(w) is adopted for both splits if g_S(w) ≥ 0.5 point on
each slice and the mean top-3 falls by no more than 0.5 point on either; otherwise the weight
stays 0 (the trees are not shipped). ``--decide`` applies it.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "python"))
sys.path.insert(0, str(REPO / "benchmarks"))

WEIGHTS = [round(0.1 * i, 1) for i in range(11)]
MIN_GAIN = 0.5  # points of mean top-1 on each slice
MAX_TOP3_LOSS = 0.5  # points of mean top-3 on either slice


def scores(p: np.ndarray, y: np.ndarray) -> dict:
    """Top-1 / top-3 (%) and mean NLL of the true groups ``y`` (0-based) under ``p`` (n, 230),
    as ``benchmarks/formula_cell.py`` scores them."""
    from formula_cell import nll, topk

    return {"top1": topk(p, y, 1), "top3": topk(p, y, 3), "nll": nll(p, y)}


def result_path(split: str) -> Path:
    from cryspext.training import formula as T

    return T.DEFAULT_CACHE / f"joint_validation_{split}.json"


def score_split(split: str, members: int) -> dict:
    import torch
    from sklearn.ensemble import RandomForestClassifier

    from cell_blend_validation import fit_validation_cell_models, validation_cell_parts
    from formula import rf_scores
    from formula_analogues import compositions

    from cryspext.formula import cellvolume
    from cryspext.formula.analogues import table_columns
    from cryspext.formula.formulacell import joint_features
    from cryspext.formula.lattice import BRAVAIS
    from cryspext.formula.predict import FormulaModels, mix_parts
    from cryspext.models import load_torchscript
    from cryspext.training import formula as T
    from cryspext.training.cell import fit_rows
    from cryspext.training.formula_trees import CELL_BLEND_WEIGHT, tree_inputs

    torch.set_num_threads(1)
    t0 = time.time()
    arr = T.dataset_arrays(T.DEFAULT_CACHE)
    fit, val = T.validation_split(arr, T._split(arr, split)[0], split)
    formulas = [str(f) for f in arr["formula"][val]]
    y = arr["sg"][val] - 1
    with tempfile.TemporaryDirectory() as d:  # FormulaModels reads one folder
        for src, name in ((T.DEFAULT_CACHE / f"validation_fu_{split}", "formula"),
                          (T.DEFAULT_CACHE / f"valtrees_{split}", "formula_trees")):
            for ext in (".pt", ".json"):
                shutil.copy(src / f"{name}{ext}", Path(d) / f"{name}{ext}")
        np.savez_compressed(Path(d) / "analogues.npz", **table_columns(
            arr["formula"][fit], arr["mp_id"][fit], arr["sg"][fit], arr["bravais"][fit],
            arr["conventional"][fit]))
        (Path(d) / "analogues.json").write_text(json.dumps(
            {"kind": "analogues", "split": split, "what": "the validation slice's fit rows"}))
        m = FormulaModels(d)
        for card in (m.formula_card, m.trees_card):
            if card.get("split") != split or "validation_run" not in card:
                sys.exit(f"the models in {d} are not validation runs of split {split}")
        p_formula = m.spacegroup_distribution(m.features(formulas), compositions(arr, val))
    joint_dir = T.DEFAULT_CACHE / f"valjoint_{split}"
    joint_card = json.loads((joint_dir / "formula_cell_trees.json").read_text())
    if joint_card.get("split") != split or "validation_run" not in joint_card:
        sys.exit(f"{joint_dir} is not a validation run of split {split}")
    joint = load_torchscript(joint_dir / "formula_cell_trees.pt")
    model_dir = T.MODEL_DIR if split == "random" else T.DEFAULT_CACHE / "future"
    delta = float(json.loads((model_dir / "cell_volume.json").read_text())["delta"])
    prior = np.bincount(arr["sg"][fit] - 1, minlength=230) + 1.0
    prior /= prior.sum()
    v_table = T.cell_volume_table(arr, fit)[0]
    fu_volume = tree_inputs(arr, formula_unit=True)[val, -1]  # formula_unit_volume, Å³
    cell_models = fit_validation_cell_models(arr, fit, members)
    # The benchmark's forest on all formula features and the cell features, for reference.
    XF = tree_inputs(arr, formula_unit=True)
    C_fit, y_fit = fit_rows(arr, fit)
    centred = fit[np.array([BRAVAIS[b][1] != "P" for b in arr["bravais"][fit]])]
    rf = RandomForestClassifier(n_estimators=30, n_jobs=1, random_state=0)
    rf.fit(np.column_stack([XF[np.concatenate([fit, centred])], C_fit]), y_fit - 1)
    out = {"split": split, "n_validation": int(len(val)), "delta": delta,
           "bravais_temperature": m.bravais_temperature}
    tiny = 1e-300
    for setting, C, cells in (("conventional", arr["C"][val], arr["conventional"][val]),
                              ("primitive", arr["C_primitive"][val], arr["primitive"][val])):
        p_cell = mix_parts(*validation_cell_parts(cell_models, C), CELL_BLEND_WEIGHT)
        log_v = cellvolume.log_likelihood(
            v_table, cellvolume.volume_ratio(cellvolume.cell_volume(cells), fu_volume))
        log_p = (np.log(np.maximum(p_formula, tiny)) + np.log(np.maximum(p_cell, tiny))
                 - np.log(prior) + delta * log_v)
        nb = np.exp(log_p - log_p.max(axis=1, keepdims=True))
        nb /= nb.sum(axis=1, keepdims=True)
        with torch.no_grad():
            p_joint = joint.probabilities(torch.from_numpy(joint_features(formulas, arr["X"][val], C)), 0).numpy()
        out[setting] = {"formula alone": scores(p_formula, y), "cell alone": scores(p_cell, y),
                        "random forest on all formula features and the cell": scores(
                            rf_scores(rf, np.column_stack([XF[val], C]), 230), y),
                        "by_weight": {str(w): scores((1 - w) * nb + w * p_joint, y) for w in WEIGHTS}}
    out["elapsed_s"] = round(time.time() - t0)
    return out


def decide(results: dict) -> dict:
    """The rule of the module docstring over ``{split: score_split(...)}``."""
    def mean(split, w, key):
        r = results[split]
        return (r["conventional"]["by_weight"][str(w)][key] + r["primitive"]["by_weight"][str(w)][key]) / 2

    gain = {s: {w: mean(s, w, "top1") - mean(s, 0.0, "top1") for w in WEIGHTS} for s in results}
    top3 = {s: {w: mean(s, w, "top3") - mean(s, 0.0, "top3") for w in WEIGHTS} for s in results}
    best = max(WEIGHTS[1:], key=lambda w: sum(gain[s][w] for s in results))
    adopted = all(gain[s][best] >= MIN_GAIN and top3[s][best] >= -MAX_TOP3_LOSS for s in results)
    return {"best_weight": best, "top1_gain": {s: round(gain[s][best], 3) for s in results},
            "top3_change": {s: round(top3[s][best], 3) for s in results},
            "mean_top1_by_weight": {s: {str(w): round(mean(s, w, "top1"), 3) for w in WEIGHTS} for s in results},
            "adopted": bool(adopted), "weight": best if adopted else 0.0}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--split", choices=["random", "future"], default=None)
    ap.add_argument("--members", type=int, default=3, help="validation cell networks (default 3)")
    ap.add_argument("--decide", action="store_true", help="apply the rule to both splits' saved results")
    a = ap.parse_args(argv)
    if a.split:
        out = score_split(a.split, a.members)
        result_path(a.split).write_text(json.dumps(out, indent=1))
        print(json.dumps(out, indent=1))
    if a.decide:
        results = {s: json.loads(result_path(s).read_text()) for s in ("random", "future")}
        print(json.dumps(decide(results), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
