"""Which analogue should ``seed_structure`` build on: the nearest, or the one whose space group
the formula model finds likeliest? Scored on the random split's validation slice of the
*training* rows (``training.formula.validation_split``; the test rows are never read).

For each of ``--n`` slice formulas (a seeded sample) the candidates are its ``K_MAX`` nearest
analogues with a stored structure among the *fit* rows (the shipped table minus the slice),
and the validation models (networks and trees fitted without the slice,
``cache/formula/validation_fu_random``, ``cache/formula/valtrees_random``) give P(space group)
(``FormulaModels.spacegroup_distribution``). A choice (K, τ) takes, of the K nearest, the
candidate with the largest P(its space group) · exp(−distance / τ) (τ = inf: the probability
alone); K = 1 is the nearest. Scored: the share of formulas whose chosen seed is their own
structure (``formula_seeds.structure_matcher``).

Rule, fixed before the run: adopt the (K, τ) with the highest share if it beats the nearest by
at least 2.0 points; else keep the nearest.

    python benchmarks/seed_choice_validation.py --n 1500
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "python"))
sys.path.insert(0, str(REPO / "benchmarks"))

K_MAX = 5
CHOICES = [(1, np.inf)] + list(itertools.product([2, 3, 5], [np.inf, 20.0, 10.0, 5.0]))
MIN_GAIN = 0.02


def main(argv=None) -> int:
    from pymatgen.core import Lattice, Structure
    from pymatgen.io.ase import AseAtomsAdaptor

    from cryspext.formula.analogues import load_table, pattern, seed_from_row
    from cryspext.formula.parse import parse_formula
    from cryspext.formula.predict import FormulaModels
    from cryspext.training import formula as T
    from formula_seeds import structure_matcher, true_structures

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=1500)
    ap.add_argument("--shared", type=Path, default=REPO.parent / "shared" / "data")
    a = ap.parse_args(argv)
    arr = T.dataset_arrays(T.DEFAULT_CACHE)
    fit, val = T.validation_split(arr, T._split(arr, "random")[0], "random")
    table = load_table()
    held_out = set(arr["mp_id"][val].tolist())
    usable = (table.columns["hall"] > 0) & ~np.isin(table.columns["mp_id"], list(held_out))
    samples = []
    for r in np.random.default_rng(0).permutation(val):
        amounts, mendeleev, _ = pattern(parse_formula(str(arr["formula"][r])))
        rows, dist = table.nearest(amounts, mendeleev, len(table))
        keep = usable[rows]
        if keep.any():
            samples.append((r, rows[keep][:K_MAX], dist[keep][:K_MAX]))
        if len(samples) == a.n:
            break
    with tempfile.TemporaryDirectory() as tmp:  # the validation networks and trees as one model
        for src, name in ((T.DEFAULT_CACHE / "validation_fu_random", "formula"),
                          (T.DEFAULT_CACHE / "valtrees_random", "formula_trees")):
            for ext in ("pt", "json"):
                (Path(tmp) / f"{name}.{ext}").symlink_to(src / f"{name}.{ext}")
        models = FormulaModels(tmp)
        formulas = [str(arr["formula"][r]) for r, _, _ in samples]
        p_sg = models.spacegroup_distribution(models.features(formulas))
    truth = true_structures(a.shared, {int(arr["mp_id"][r]) for r, _, _ in samples})
    matcher = structure_matcher()
    hits = np.zeros((len(samples), K_MAX), bool)
    prob = np.zeros((len(samples), K_MAX))
    dist = np.full((len(samples), K_MAX), np.inf)
    for i, (r, rows, d) in enumerate(samples):
        rec = truth[int(arr["mp_id"][r])]
        true = Structure(Lattice(rec["lattice"]), rec["species"], rec["frac"])
        for j, (row, dj) in enumerate(zip(rows, d)):
            seed = seed_from_row(table, row, formulas[i], dj)
            hits[i, j] = matcher.fit(AseAtomsAdaptor.get_structure(seed), true)
            prob[i, j] = p_sg[i, int(table.columns["spacegroup"][row]) - 1]
            dist[i, j] = dj
        if (i + 1) % 250 == 0:
            print(f"{i + 1} / {len(samples)}", file=sys.stderr, flush=True)
    out = {}
    for k, tau in CHOICES:
        d = dist[:, :k]
        score = np.where(np.isfinite(d), prob[:, :k] * np.exp(-np.where(np.isfinite(d), d, 0) / tau), -1.0)
        pick = np.argmax(score, axis=1)
        out[f"K={k} tau={tau}"] = round(float(hits[np.arange(len(samples)), pick].mean()), 4)
    best = max(out, key=out.get)
    base = out["K=1 tau=inf"]
    print(json.dumps({"n": len(samples), "any_of_5": round(float(hits.any(axis=1).mean()), 4),
                      "same_structure": out, "best": best,
                      "decision": (f"adopt {best}" if out[best] - base >= MIN_GAIN
                                   else f"keep the nearest ({best} gains {out[best] - base:+.4f})")},
                     indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
