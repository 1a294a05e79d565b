"""The choice of the formula model's confidence constants (``training.formula_trees.CONFIDENCE``,
``formula.confidence``; one set per split) on that split's validation slice of the *training*
rows (``training.formula.validation_split``; the test rows are never read).

Needs validation networks and trees fitted without the slice (as ``formula_blend_validation.py``):

    python -m cryspext.training.formula train --validate --no-cell --arch element --members 3 \\
        --epochs 22 --split S --out cache/formula/validation_fu_S
    python -m cryspext.training.formula_trees --validate --split S --out cache/formula/valtrees_S
    python benchmarks/formula_confidence_validation.py --split S [--write]

Prints, on the slice:

* for the Bravais probabilities of the mix (the shipped weight), tempered and then mixed with
  the analogue vote as ``predict_formula`` does (``FormulaModels.with_vote``; the table of the
  fit rows): the temperature with the lowest NLL and the calibration figures of
  ``formula_confidence.py`` before and after it (the same for the space groups given the true
  lattice, for comparison, without a vote);
* for the lattice σ (lengths and free angles apart): the fitted constants of
  ``formula.confidence.lattice_uncertainty``, next to the two one-term forms (std only, floor
  only), each with its quantile loss (``training.formula_confidence.quantile_loss``) and the
  shares of errors within 1 and 2 σ;
* ``constants``: the chosen set. ``--write`` stores it as the split's entry of
  ``cryspext/training/formula_calibration.json``, which ``training.formula_trees`` writes onto
  the cards of that split (``train``, ``--repack``).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "python"))
CALIBRATION_FILE = REPO / "python" / "cryspext" / "training" / "formula_calibration.json"


def main(argv=None) -> int:
    import torch

    from cryspext.formula.confidence import member_std, temper
    from cryspext.formula.lattice import ANGLES, BRAVAIS, PARAMETER_NAMES
    from cryspext.formula.analogues import analogue_vote
    from cryspext.formula.predict import BRAVAIS_VOTE_SHARE, mix_parts
    from cryspext.training.formula_confidence import (ANGLE_FLOORS_DEG, RELATIVE_FLOORS, coverage,
                                                      fit_lattice_uncertainty, fit_temperature)
    from cryspext.training.formula_trees import (ANGLE_BLEND_WEIGHT, BRAVAIS_BLEND_WEIGHT,
                                                 LENGTH_BLEND_WEIGHT)
    from formula_analogues import build_table, compositions
    from formula_blend_validation import load_validation_models, validation_tree_lattice
    from formula_confidence import calibration

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--split", choices=["random", "future"], default="random")
    ap.add_argument("--nets", type=Path, default=None, help="default cache/formula/validation_fu_SPLIT")
    ap.add_argument("--trees", type=Path, default=None, help="default cache/formula/valtrees_SPLIT")
    ap.add_argument("--write", type=Path, nargs="?", const=CALIBRATION_FILE, default=None, metavar="JSON",
                    help="store the chosen constants as this split's entry of JSON (default: the "
                         "table training.formula_trees reads, " + str(CALIBRATION_FILE.relative_to(REPO)) + ")")
    a = ap.parse_args(argv)
    v = load_validation_models(a.split, a.nets, a.trees)
    nets, trees, arr, val, X = v["nets"], v["trees"], v["arr"], v["val"], v["X"]
    cards = {"formula": v["nets_card"]}
    B, P = arr["bravais"][val], arr["params"][val]
    n_net = len(cards["formula"]["inputs"])
    with torch.no_grad():
        p = mix_parts(nets.bravais(X[:, :n_net]).mean(0).numpy(), trees.bravais(X).numpy(),
                      BRAVAIS_BLEND_WEIGHT)
    # The answer mixes the analogue vote in after tempering (predict.BRAVAIS_VOTE_SHARE), with
    # the table of the model folder's training formulas: here the fit rows'.
    vote, _, covered = analogue_vote(build_table(arr, v["fit"]), compositions(arr, val))

    def answer(q):
        return np.where(covered[:, None], (1 - BRAVAIS_VOTE_SHARE) * q + BRAVAIS_VOTE_SHARE * vote, q)

    t_best, by_t = fit_temperature(p, B, then=answer)
    out = {"split": a.split, "n_validation": int(len(val)), "network_members": cards["formula"]["members"],
           "bravais": {"temperature": t_best, "analogue_vote_share": BRAVAIS_VOTE_SHARE,
                       "temperature_without_the_vote": fit_temperature(p, B)[0],
                       "nll_by_temperature": {str(t): round(v, 4) for t, v in by_t.items()},
                       "before": calibration(answer(p), B), "after": calibration(answer(temper(p, t_best)), B)}}

    # The space groups given the true lattice (padded to the largest lattice's count), for
    # comparison: their own best temperature.
    from cryspext.formula.lattice import spacegroups_of_bravais
    from cryspext.training.formula_trees import BLEND_WEIGHT

    width = max(len(spacegroups_of_bravais(b)) for b in BRAVAIS)
    p_sg, y_sg = [], []
    for k, b in enumerate(BRAVAIS):
        rows = np.nonzero(B == k)[0]
        groups = np.array(spacegroups_of_bravais(b))
        with torch.no_grad():
            pk = mix_parts(nets.spacegroup(X[rows][:, :n_net], k).mean(0).numpy(),
                           trees.spacegroup(X[rows], k).numpy(), BLEND_WEIGHT)
        y = np.searchsorted(groups, arr["sg"][val][rows])
        ok = groups[np.minimum(y, len(groups) - 1)] == arr["sg"][val][rows]
        p_sg.append(np.pad(pk[ok], ((0, 0), (0, width - len(groups)))))
        y_sg.append(y[ok])
    p_sg, y_sg = np.concatenate(p_sg), np.concatenate(y_sg)
    t_sg, _ = fit_temperature(p_sg, y_sg)
    out["spacegroup_given_true_bravais"] = {"temperature": t_sg, "before": calibration(p_sg, y_sg),
                                            "after": calibration(temper(p_sg, t_sg), y_sg)}

    parts = {"lengths": [], "angles": []}  # (error, member std, value) per free parameter
    for k, b in enumerate(BRAVAIS):
        rows = np.nonzero(B == k)[0]
        if len(rows) < 2:
            continue
        xk = X[rows]
        names = cards["formula"]["parameters"][b]["free"]
        with torch.no_grad():
            members = nets.lattice(xk[:, :n_net], k).numpy()
        tree_v = validation_tree_lattice(trees, nets, xk, n_net, k)
        w = np.array([ANGLE_BLEND_WEIGHT if n in ANGLES else LENGTH_BLEND_WEIGHT for n in names])
        value = mix_parts(members.mean(0), tree_v, w)
        std = member_std(members)
        for j, n in enumerate(names):
            truth = P[rows, PARAMETER_NAMES.index(n)]
            parts["angles" if n in ANGLES else "lengths"].append((value[:, j] - truth, std[:, j], value[:, j]))
    out["lattice"] = {}
    for kind, rows in parts.items():
        err, std, value = (np.concatenate(v) for v in zip(*rows))
        unit = np.abs(value) if kind == "lengths" else np.ones_like(value)
        floors = RELATIVE_FLOORS if kind == "lengths" else ANGLE_FLOORS_DEG
        res = {}
        for form, scales, fl in (("std and floor", None, floors), ("std only", None, [0.0]),
                                 ("floor only", [0.0], floors)):
            kw = {"scales": scales} if scales is not None else {}
            c, score = fit_lattice_uncertainty(err, std, unit, fl, **kw)
            sigma = np.hypot(c["std_scale"] * std, c["floor"] * unit)
            res[form] = {**c, "quantile_loss": round(score, 5), **coverage(err, sigma)}
        res["members' std as is"] = coverage(err, std)
        out["lattice"][kind] = {"n": int(len(err)), **res}
    lengths, angles = out["lattice"]["lengths"]["std and floor"], out["lattice"]["angles"]["std and floor"]
    out["constants"] = {
        "bravais_temperature": t_best,
        "lattice_uncertainty": {"lengths": {"std_scale": lengths["std_scale"], "relative_floor": lengths["floor"]},
                                "angles": {"std_scale": angles["std_scale"], "floor_deg": angles["floor"]}},
        "chosen_by": f"python benchmarks/formula_confidence_validation.py --split {a.split}"
                     + (f" --trees {a.trees}" if a.trees else ""),
    }
    if a.write:
        table = json.loads(a.write.read_text()) if a.write.is_file() else {}
        table[a.split] = out["constants"]
        a.write.write_text(json.dumps(table, indent=1) + "\n")
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
