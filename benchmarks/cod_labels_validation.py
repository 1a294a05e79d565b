"""Would COD's formula → space-group labels help the Bravais classifier? (issue 7, optional
extra labels.)

The formula models are trained on Materials Project (MP) formulas only, which are whole-number
formulas of ordered structures; on COD compounds that are in no MP entry, most of them with
fractional amounts (solid solutions, doped compounds), a random forest beats them
(``RESULTS_formula_confidence.md``). This compares, with everything fitted without the rows it
is scored on:

* the Bravais trees of ``training.formula_trees`` (``BRAVAIS_TREES``, ``--rounds`` rounds) fitted
  on the fit rows of the ``--split``'s validation split (``training.formula.validation_split``;
  the test rows are never read), against the same trees fitted on those rows plus half of the
  COD compositions in no MP entry (``training.cod.cod_label_rows``, labelled with the Bravais
  lattice of each composition's most frequent COD space group; all of that half, or only its
  formulas with fractional or with whole amounts, ``--cod-rows``; each COD row weighted by
  each of ``--cod-weights`` in turn). ``--halves composition`` splits the compositions by a seeded shuffle, so
  members of one solid-solution series (Ba0.5Sr0.5TiO3, Ba0.6Sr0.4TiO3) fall on both sides;
  ``--halves system`` shuffles whole chemical systems (the set of elements;
  ``training.cod.system_halves``, the halves the shipped classifiers use), so the scored half
  holds only systems no COD training row has: the harder question;
* scored on the MP validation slice (must not get worse) and on the other COD half, all of it
  and its whole-number and fractional formulas apart; a random forest (100 trees, as in
  ``benchmarks/formula.py``) on the MP fit rows alone, for reference (``--no-forest``: not).

    python benchmarks/cod_labels_validation.py [--rounds 400] [--cod-weights 1,0.3] [--halves system]
        [--split future] [--cod-rows all,fractional]
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
sys.path.insert(0, str(REPO / "benchmarks"))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=400, help="boosting rounds (shipped: 800)")
    ap.add_argument("--cod-weights", default="1", help="sample weights of a COD row to try (comma-separated)")
    ap.add_argument("--cod-rows", default="all",
                    help="which COD training rows to add, comma-separated: all, fractional "
                    "(only formulas with fractional amounts), whole")
    ap.add_argument("--split", choices=["random", "future"], default="random",
                    help="whose validation slice scores the MP side (future: the newest MP ids "
                    "of the future split's training rows)")
    ap.add_argument("--no-forest", action="store_true", help="skip the random-forest reference")
    ap.add_argument("--halves", choices=["composition", "system"], default="composition",
                    help="split COD into training and scored halves by composition or by "
                    "chemical system (element set)")
    ap.add_argument("--shared", type=Path, default=REPO.parent / "shared" / "data",
                    help="shared/data folder with mp/cod_formula_sg.json.gz and mp/mp_ehull.json.gz")
    a = ap.parse_args(argv)
    from sklearn.ensemble import RandomForestClassifier
    from threadpoolctl import threadpool_limits

    from cryspext.formula.trees import bin_features, feature_edges
    from cryspext.training import formula as T
    from cryspext.training.formula_trees import BRAVAIS_TREES, _classifier, tree_inputs
    from cryspext.formula.vegard import is_fractional
    from cryspext.training.cod import (COD_FILE, MP_FILE, bravais_indices, cod_features,
                                       cod_label_rows, system_halves)
    from formula_blend_validation import bravais_top12

    t0 = time.perf_counter()
    arr = T.dataset_arrays(T.DEFAULT_CACHE)
    fit, val = T.validation_split(arr, T._split(arr, a.split)[0], a.split)
    X, B = tree_inputs(arr, True), arr["bravais"]
    comps, sg_cod = cod_label_rows(a.shared / COD_FILE, a.shared / MP_FILE)
    y_cod, X_cod = bravais_indices(sg_cod), cod_features(comps).astype(X.dtype)
    fractional = np.array([is_fractional(c) for c in comps])
    if a.halves == "composition":
        half = np.random.default_rng(0).permutation(len(comps)) < len(comps) // 2
    else:  # whole chemical systems, in a seeded order, until half of the rows
        half = system_halves(comps)
    train_cod, score_cod = np.nonzero(half)[0], np.nonzero(~half)[0]
    edges = feature_edges(X[fit])  # the MP fit rows' bins, as formula_trees bins them
    Xb, Xb_cod = bin_features(X, edges), bin_features(X_cod, edges)

    def scores(p_val, p_cod) -> dict:
        y, frac = y_cod[score_cod], fractional[score_cod]
        return {"mp_validation": bravais_top12(p_val, B[val]), "cod_all": bravais_top12(p_cod, y),
                "cod_whole": bravais_top12(p_cod[~frac], y[~frac]),
                "cod_fractional": bravais_top12(p_cod[frac], y[frac])}

    def proba(model, Xq) -> np.ndarray:
        p = np.zeros((len(Xq), 14))
        p[:, model.classes_] = model.predict_proba(Xq)
        return p

    out = {"rounds": a.rounds, "halves": a.halves, "split": a.split, "n_fit": int(len(fit)),
           "n_validation": int(len(val)), "n_cod_train": int(len(train_cod)),
           "n_cod_scored": int(len(score_cod)),
           "n_cod_scored_fractional": int(fractional[score_cod].sum())}
    settings = {**BRAVAIS_TREES, "max_iter": a.rounds}
    with threadpool_limits(1):
        mp_only = _classifier(settings, 0).fit(Xb[fit], B[fit])
        out["trees, MP rows"] = scores(proba(mp_only, Xb[val]), proba(mp_only, Xb_cod[score_cod]))
        print(json.dumps(out), file=sys.stderr, flush=True)
        subsets = {"all": train_cod, "fractional": train_cod[fractional[train_cod]],
                   "whole": train_cod[~fractional[train_cod]]}
        for rows_name in a.cod_rows.split(","):
            extra = subsets[rows_name]
            for w in (float(v) for v in a.cod_weights.split(",")):
                both = _classifier(settings, 0).fit(
                    np.concatenate([Xb[fit], Xb_cod[extra]]), np.concatenate([B[fit], y_cod[extra]]),
                    sample_weight=np.concatenate([np.ones(len(fit)), np.full(len(extra), w)]))
                name = "half of COD" if rows_name == "all" else f"the {rows_name} formulas of half of COD"
                out[f"trees, MP rows + {name} at weight {w:g}"] = scores(proba(both, Xb[val]),
                                                                         proba(both, Xb_cod[score_cod]))
                print(json.dumps(out), file=sys.stderr, flush=True)
    if not a.no_forest:
        rf = RandomForestClassifier(n_estimators=100, n_jobs=2, random_state=0).fit(X[fit], B[fit])
        out["random forest, MP rows"] = scores(proba(rf, X[val]), proba(rf, X_cod[score_cod]))
    out["elapsed_s"] = round(time.perf_counter() - t0, 1)
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
