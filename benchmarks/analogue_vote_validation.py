"""The analogue vote (``formula.analogues.analogue_vote``) combined with the formula model's
Bravais probabilities, scored on a split's validation slice (``training.formula.
validation_split``; the test rows are never read). Nothing here is shipped: it measures whether
the vote would add to the model, to decide whether to make it a model input.

Validation models, fitted without the slice (``--nets``, ``--trees``; defaults
cache/formula/validation_fu_S and valtrees_S)::

    python -m cryspext.training.formula train --validate --no-cell --arch element --members 3 \\
        --epochs 22 --split S --out cache/formula/validation_fu_S
    python -m cryspext.training.formula_trees --validate --split S --out cache/formula/valtrees_S \\
        --shared ../shared/data

The analogue table holds the slice's fit rows. Two combinations are printed, each only where
the formula has analogues: the product p · vote^beta (renormalised) and the linear mix
(1 − a) · p + a · vote, with p the mix's tempered Bravais probabilities as ``FormulaModels.
bravais`` gives them.

    python benchmarks/analogue_vote_validation.py --split future

Session 22, future slice: model alone 34.10 / 47.51 %, best the linear mix with share 0.1,
34.23 / 48.16 % (+0.13 / +0.65 point); larger shares lose.

Rule for the random slice, written in session 23 after the future slice's run and before the
random slice's first: adopt the linear mix with share 0.1 (the future slice's best, only where
the formula has analogues) into the shipped Bravais probabilities if on the random slice it
raises Bravais top-1 + top-2 by at least 0.3 point and does not lower top-1 (the house rule of
``bravais_pooling_validation.py``; the future slice passes it).
Its run: random slice 66.68 / 80.48 → 67.07 / 80.86 % (+0.39 / +0.38 point): adopted as
``formula.predict.BRAVAIS_VOTE_SHARE``.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "python"))
sys.path.insert(0, str(REPO / "benchmarks"))

BETAS = (0.1, 0.2, 0.3, 0.5, 0.75, 1.0)
SHARES = (0.1, 0.2, 0.3)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--split", choices=["random", "future"], default="future")
    ap.add_argument("--nets", type=Path, default=None)
    ap.add_argument("--trees", type=Path, default=None)
    a = ap.parse_args(argv)
    from formula_analogues import build_table, compositions, topk

    from cryspext.formula.analogues import analogue_vote
    from cryspext.formula.predict import FormulaModels
    from cryspext.training import formula as T

    nets = a.nets or T.DEFAULT_CACHE / f"validation_fu_{a.split}"
    trees = a.trees or T.DEFAULT_CACHE / f"valtrees_{a.split}"
    arr = T.dataset_arrays(T.DEFAULT_CACHE)
    fit, val = T.validation_split(arr, T._split(arr, a.split)[0], a.split)
    with tempfile.TemporaryDirectory() as d:  # FormulaModels reads one folder
        for src, name in ((nets, "formula"), (trees, "formula_trees")):
            for ext in (".pt", ".json"):
                shutil.copy(src / f"{name}{ext}", Path(d) / f"{name}{ext}")
        m = FormulaModels(d)
        if m.formula_card.get("split") != a.split or "validation_run" not in m.formula_card:
            sys.exit(f"{nets} is not a validation run of split {a.split}")
        p = m.bravais(m.features([str(f) for f in arr["formula"][val]]))
    vote, _, covered = analogue_vote(build_table(arr, fit), compositions(arr, val))
    y = arr["bravais"][val]
    lines = [f"Split {a.split}, validation slice of {len(val)} formulas ({100 * covered.mean():.1f} % with "
             f"analogues; Bravais temperature {m.bravais_temperature:g}):", "",
             "| combination | Bravais top-1 | top-2 |", "|---|---|---|",
             f"| model alone | {topk(p, y, 1):.2f} % | {topk(p, y, 2):.2f} % |",
             f"| vote alone | {topk(vote, y, 1):.2f} % | {topk(vote, y, 2):.2f} % |"]
    for beta in BETAS:
        q = p * np.where(covered[:, None], vote, 1.0) ** beta
        q /= q.sum(axis=1, keepdims=True)
        lines.append(f"| p · vote^{beta:g} | {topk(q, y, 1):.2f} % | {topk(q, y, 2):.2f} % |")
    for share in SHARES:
        q = np.where(covered[:, None], (1 - share) * p + share * vote, p)
        lines.append(f"| (1 − {share:g}) · p + {share:g} · vote | {topk(q, y, 1):.2f} % | {topk(q, y, 2):.2f} % |")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
