"""Starting structures from known analogues (``formula.analogues.seed_structure``), scored on
held-out formulas (issue 7: "to seed first-principles runs").

For test formulas of each split that have an analogue with a stored structure in that split's
table (its training formulas): the seed ``seed_structure`` gives (of the nearest
``SEED_K``, the analogue whose space group the split's formula model finds likeliest), the seed
of the nearest analogue (``choose="nearest"``) and those of the 3 nearest, against the
formula's own Materials Project structure (``shared/data/mp``):

* *same space group*: the analogue's space group is the formula's;
* *same structure*: pymatgen's ``StructureMatcher`` (ltol 0.2, stol 0.3, angle 5°, volume
  scaled) matches seed and truth, i.e. the seed is the true structure type with the right
  species on the right sites, up to a scale and small distortions; reported for the nearest
  analogue and for "any of the 3 nearest";
* *volume error*: (V_seed − V_true) / V_true per atom, median of |·| and quartiles, with and
  without the elemental-volume scaling (``scale=True``, the default).

    python -m cryspext.training.formula analogues --split future   # the future split's table
    python benchmarks/formula_seeds.py --n 2000
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "python"))


def true_structures(shared: Path, mp_ids: set[int]) -> dict:
    """{mp id: record} of the Materials Project structures ``mp_ids``."""
    out = {}
    with gzip.open(shared / "mp" / "mp_structures.jsonl.gz", "rt") as fh:
        for line in fh:
            rec = json.loads(line)
            i = int(rec["id"].split("-")[1])
            if i in mp_ids:
                out[i] = rec
    return out


def structure_matcher():
    """The test of "the seed is the true structure": pymatgen's ``StructureMatcher`` with its
    default tolerances (ltol 0.2, stol 0.3, 5°), primitive cells, volume scaled."""
    from pymatgen.analysis.structure_matcher import StructureMatcher

    return StructureMatcher(ltol=0.2, stol=0.3, angle_tol=5, primitive_cell=True, scale=True,
                            attempt_supercell=False)


def score_split(split: str, model_dir: Path | None, n: int, shared: Path) -> dict:
    """The figures of the module docstring on ``n`` test formulas of ``split`` (a seeded sample
    of those with an analogue), with the table and formula model of ``model_dir``."""
    from pymatgen.core import Lattice, Structure
    from pymatgen.io.ase import AseAtomsAdaptor

    from cryspext.formula.analogues import load_table, pattern, seed_structure
    from cryspext.formula.parse import parse_formula
    from cryspext.training import formula as T

    arr = T.dataset_arrays(T.DEFAULT_CACHE)
    _train, test = T._split(arr, split)
    table = load_table(model_dir)
    if not table.has_structures() or table.card.get("split") != split:
        sys.exit(f"{model_dir or 'the shipped models'}: no analogue table with structures of split {split}")
    # Test formulas whose pattern the table has with at least one stored structure.
    eligible = []
    for r in test:
        amounts, mendeleev, _ = pattern(parse_formula(str(arr["formula"][r])))
        rows, _d = table.nearest(amounts, mendeleev, len(table))
        if (table.columns["hall"][rows] > 0).any():
            eligible.append(r)
    rng = np.random.default_rng(0)
    sample = np.sort(rng.choice(eligible, size=min(n, len(eligible)), replace=False))
    truth = true_structures(shared, {int(arr["mp_id"][r]) for r in sample})
    matcher = structure_matcher()
    same_sg, match1, match3, dv, dv_raw, atoms_seed, match_model, same_sg_model = [], [], [], [], [], [], [], []
    for i, r in enumerate(sample):
        rec = truth[int(arr["mp_id"][r])]
        true = Structure(Lattice(rec["lattice"]), rec["species"], rec["frac"])
        model_seed = seed_structure(str(arr["formula"][r]), model_dir=model_dir)
        match_model.append(bool(matcher.fit(AseAtomsAdaptor.get_structure(model_seed), true)))
        same_sg_model.append(model_seed.info["spacegroup"] == int(arr["sg"][r]))
        hits = []
        for rank in range(3):
            try:
                seed = seed_structure(str(arr["formula"][r]), rank=rank, choose="nearest", model_dir=model_dir)
            except ValueError:  # fewer than 3 analogues with structures
                break
            hits.append(bool(matcher.fit(AseAtomsAdaptor.get_structure(seed), true)))
            if rank == 0:
                same_sg.append(seed.info["spacegroup"] == int(arr["sg"][r]))
                v_true = true.volume / len(true)
                dv.append(seed.get_volume() / len(seed) / v_true - 1)
                dv_raw.append(seed.get_volume() / seed.info["volume_scale"] / len(seed) / v_true - 1)
                atoms_seed.append(len(seed))
        match1.append(hits[0])
        match3.append(any(hits))
        if (i + 1) % 250 == 0:
            print(f"{split} {i + 1} / {len(sample)}: same structure {np.mean(match1):.3f}", file=sys.stderr,
                  flush=True)
    dv, dv_raw = np.array(dv), np.array(dv_raw)
    return {"split": split, "n_test": int(len(test)), "n_eligible": len(eligible), "n_scored": int(len(sample)),
            "stored": table.card.get("structures", {}).get("stored"), "n_table": len(table),
            "same_spacegroup": float(np.mean(same_sg)), "same_structure_nearest": float(np.mean(match1)),
            "same_structure_model": float(np.mean(match_model)),
            "same_spacegroup_model": float(np.mean(same_sg_model)),
            "same_structure_any_of_3": float(np.mean(match3)),
            "volume_error_scaled": [float(np.median(np.abs(dv)))] + np.percentile(dv, [25, 75]).tolist(),
            "volume_error_unscaled": [float(np.median(np.abs(dv_raw)))] + np.percentile(dv_raw, [25, 75]).tolist(),
            "median_atoms_per_seed": float(np.median(atoms_seed))}


def main(argv=None) -> int:
    from cryspext.formula.analogues import SEED_K
    from cryspext.training import formula as T

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=2000, help="test formulas scored per split (a seeded sample)")
    ap.add_argument("--splits", nargs="+", default=["random", "future"], choices=["random", "future"])
    ap.add_argument("--shared", type=Path, default=REPO.parent / "shared" / "data")
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "RESULTS_formula_seeds.md")
    a = ap.parse_args(argv)
    t0 = time.perf_counter()
    results = []
    for split in a.splits:
        results.append(score_split(split, None if split == "random" else T.DEFAULT_CACHE / split, a.n, a.shared))
        print(json.dumps(results[-1]), flush=True)
    elapsed = time.perf_counter() - t0
    pct = lambda x: f"{100 * x:.1f} %"  # noqa: E731

    def row(label, f):
        return f"| {label} | " + " | ".join(f(r) for r in results) + " |"

    def quartiles(key):
        return lambda r: f"{pct(r[key][0])} ({pct(r[key][1])}, {pct(r[key][2])})"

    lines = [
        "# Starting structures from known analogues (`seed_structure`)", "",
        f"Produced by `python benchmarks/formula_seeds.py --n {a.n}` ({elapsed / 60:.1f} min). Each "
        "split's test formulas against that split's analogue table (its training formulas; the "
        "shipped one for `random`, `cache/formula/future` for `future`, written by `python -m "
        "cryspext.training.formula analogues --split future`) and its formula model; of the test "
        "formulas with an analogue, a seeded sample is scored against their own Materials Project "
        "structure.", "",
        "| figure | " + " | ".join(f"`{r['split']}`" for r in results) + " |",
        "|---|" + "---|" * len(results),
        row("test formulas with an analogue that has a stored structure",
            lambda r: f"{r['n_eligible']} of {r['n_test']} ({pct(r['n_eligible'] / r['n_test'])})"),
        row("training formulas with a stored structure", lambda r: f"{r['stored']} of {r['n_table']}"),
        row("scored", lambda r: str(r["n_scored"])),
        row(f"`seed_structure` (model-ranked of the {SEED_K} nearest): analogue's space group is the true one",
            lambda r: pct(r["same_spacegroup_model"])),
        row("`seed_structure`: seed is the true structure (StructureMatcher, volume scaled)",
            lambda r: pct(r["same_structure_model"])),
        row("nearest analogue: its space group is the true one", lambda r: pct(r["same_spacegroup"])),
        row("nearest analogue: seed is the true structure", lambda r: pct(r["same_structure_nearest"])),
        row("one of the 3 nearest analogues' seeds is", lambda r: pct(r["same_structure_any_of_3"])),
        row("volume per atom, scaled by elemental volumes: median abs. error (quartiles of the signed error)",
            quartiles("volume_error_scaled")),
        row("the same, the analogue's own cell", quartiles("volume_error_unscaled")),
        row("median atoms per seed (conventional cell)", lambda r: f"{r['median_atoms_per_seed']:.0f}"),
        "", "The volume rows are of the nearest analogue's seed. The model-ranked choice (`SEED_K`, "
        "`SEED_TAU` in `formula.analogues`) was made on the random split's validation slice "
        "(`benchmarks/seed_choice_validation.py`, validation models fitted without it: 55.1 → 59.0 %).", "",
        "A seed is the analogue's arrangement with the formula's elements on its sites: where the "
        "new compound takes another structure, no relaxation from it will find that one. The models' "
        "space-group ranking (`predict_formula`) tells how likely the analogue's group is.", ""]
    a.out.write_text("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
