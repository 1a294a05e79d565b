"""How the formula model's two parts are pooled into Bravais probabilities, scored on the
validation slices of the *training* rows (``training.formula.validation_split``; the test rows
are never read). Issue 7.

Shipped: ``(1 − w) · networks + w · trees``, w = ``BRAVAIS_BLEND_WEIGHT`` (0.7), then one
temperature for calibration (which does not change the ranking). This scans, for the ranking,
two alternatives:

* each part tempered before the mix, p → p^(1/T) renormalised, with its own temperature
  (T_networks, T_trees in ``TEMPERATURES``), at w in ``WEIGHTS``;
* log-linear pooling, ``exp((1 − w) · ln networks + w · ln trees)``, at w in ``WEIGHTS``.

For reference it also prints each part alone and a random forest on the Materials Project fit
rows (``benchmarks/formula.py``'s row "random forest, Materials Project rows only": 100 trees,
seed 0, the trees' inputs), fitted here on the fit rows.

Rule, written before the random slice was scored (the future slice had been looked at in a
scratch scan of the same family): take the setting with the largest mean over the two slices
of the gain in Bravais top-1 + top-2 (percentage points, summed) over the shipped mix; adopt
it only if that gain is at least +0.3 on *each* slice and top-1 falls on neither.

Needs each split's validation networks and trees (``formula_blend_validation.py`` shows the
commands):

    python benchmarks/bravais_pooling_validation.py
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "python"))
sys.path.insert(0, str(REPO / "benchmarks"))

TEMPERATURES = [0.5, 0.75, 1.0, 1.5, 2.0, 3.0]
WEIGHTS = [0.5, 0.6, 0.7, 0.8]
MIN_GAIN = 0.3  # points of top-1 + top-2, on each slice


def pooled(pn: np.ndarray, pt: np.ndarray, setting: tuple) -> np.ndarray:
    """(n, 14) scores of the networks' mean ``pn`` and the trees ``pt`` pooled by ``setting``:
    ("tempered", T_networks, T_trees, w) or ("loglinear", w)."""
    from cryspext.formula.confidence import temper
    from cryspext.formula.predict import mix_parts

    if setting[0] == "loglinear":
        w = setting[1]
        return (1 - w) * np.log(np.maximum(pn, 1e-12)) + w * np.log(np.maximum(pt, 1e-12))
    _, tn, tt, w = setting
    return mix_parts(temper(pn, tn), temper(pt, tt), w)


def settings() -> list[tuple]:
    return ([("tempered", tn, tt, w) for tn, tt, w in itertools.product(TEMPERATURES, TEMPERATURES, WEIGHTS)]
            + [("loglinear", w) for w in WEIGHTS])


def slice_parts(split: str) -> dict:
    """The validation slice of ``split``: labels, the networks' mean, the trees' probabilities
    and the reference forest's."""
    import torch
    from sklearn.ensemble import RandomForestClassifier
    from threadpoolctl import threadpool_limits

    from cryspext.training.formula_trees import tree_inputs
    from formula_blend_validation import load_validation_models

    v = load_validation_models(split)
    nets, trees, arr, fit, val, X = v["nets"], v["trees"], v["arr"], v["fit"], v["val"], v["X"]
    n_net = len(v["nets_card"]["inputs"])
    with torch.no_grad():
        pn = nets.bravais(X[:, :n_net]).mean(0).numpy()
        pt = trees.bravais(X).numpy()
    XF, B = tree_inputs(arr, True), arr["bravais"]
    with threadpool_limits(1):
        rf = RandomForestClassifier(n_estimators=100, n_jobs=2, random_state=0).fit(XF[fit], B[fit])
    pf = np.zeros((len(val), 14))
    pf[:, rf.classes_] = rf.predict_proba(XF[val])
    return {"y": B[val], "networks": pn, "trees": pt, "forest": pf}


def main(argv=None) -> int:
    from cryspext.training.formula_trees import BRAVAIS_BLEND_WEIGHT
    from formula_blend_validation import bravais_top12

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--splits", default="random,future")
    a = ap.parse_args(argv)
    splits = a.splits.split(",")
    shipped = ("tempered", 1.0, 1.0, BRAVAIS_BLEND_WEIGHT)
    out, gains = {"shipped": list(shipped), "slices": {}}, {}
    for split in splits:
        s = slice_parts(split)
        y = s["y"]
        base = bravais_top12(pooled(s["networks"], s["trees"], shipped), y)
        out["slices"][split] = {"n_validation": int(len(y)), "shipped": base,
                                "networks": bravais_top12(s["networks"], y),
                                "trees": bravais_top12(s["trees"], y),
                                "forest_mp_rows": bravais_top12(s["forest"], y)}
        for st in settings():
            r = bravais_top12(pooled(s["networks"], s["trees"], st), y)
            gains.setdefault(st, {})[split] = (round(r[0] + r[1] - base[0] - base[1], 2),
                                               round(r[0] - base[0], 2), r)
        print(f"{split}: {out['slices'][split]}", file=sys.stderr, flush=True)
    ranked = sorted(gains, key=lambda st: -np.mean([gains[st][sp][0] for sp in splits]))
    out["best"] = [{"setting": list(st), **{sp: {"gain_top1_plus_top2": gains[st][sp][0],
                                                  "gain_top1": gains[st][sp][1],
                                                  "top1_top2": gains[st][sp][2]} for sp in splits}}
                   for st in ranked[:10]]
    best = ranked[0]
    ok = all(gains[best][sp][0] >= MIN_GAIN and gains[best][sp][1] >= 0 for sp in splits)
    out["decision"] = (f"adopt {list(best)}" if ok else
                       f"keep the shipped mix (best {list(best)} gains "
                       + ", ".join(f"{sp} {gains[best][sp][0]:+.2f} / top-1 {gains[best][sp][1]:+.2f}"
                                   for sp in splits) + f"; the rule asks +{MIN_GAIN} and no top-1 loss on each)")
    # one line per entry: the lists stay readable
    print("{\n" + ",\n".join(f" {json.dumps(k)}: {json.dumps(v)}" for k, v in out.items()
                              if k != "best")
          + ',\n "best": [\n' + ",\n".join(f"  {json.dumps(b)}" for b in out["best"]) + "\n ]\n}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
