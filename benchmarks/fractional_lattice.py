"""Lattice parameters of fractional formulas: the formula read directly against Vegard's law
over its end members (``predict_formula(..., vegard=False / True)``), on well-known solid
solutions and non-stoichiometric compounds with measured room-temperature cells.

    python benchmarks/fractional_lattice.py [--model-dir DIR]

The space group is given (``spacegroup=N``, the one the compound has), so only the lattice
parameters are compared. The reference values are standard literature values, rounded: for
In0.53Ga0.47As and Ga0.51In0.49P the constants of the substrates they are lattice-matched to
(InP, GaAs); for Al0.5Ga0.5N Vegard's law over measured AlN and GaN; hexagonal-setting cells of
R-3m compounds are converted to the rhombohedral cell cryspext gives. Nothing here was used to
choose ``formula.vegard``'s rules. A small sanity check, not a benchmark with statistical power.
Prints a markdown table and the mean |error| of each way; next to them, the answer for the
heaviest end member alone (the parent compound, e.g. FeO for Fe0.95O).
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "python"))


def rhombohedral(a_hex: float, c_hex: float) -> dict:
    """The rhombohedral cell (a in Å, alpha in degrees) of a hexagonal-setting R lattice."""
    from cryspext.formula.lattice import hexagonal_to_rhombohedral

    return dict(zip(("a", "alpha"), hexagonal_to_rhombohedral(a_hex, c_hex)))


# (formula, space group, measured free parameters (Å, degrees), what it is)
REFERENCES = [
    ("Ba0.5Sr0.5TiO3", 221, {"a": 3.95}, "perovskite solid solution (BST)"),
    ("Ce0.8Gd0.2O1.9", 225, {"a": 5.42}, "fluorite, gadolinia-doped ceria"),
    ("Zr0.852Y0.148O1.926", 225, {"a": 5.14}, "fluorite, 8 mol% yttria-stabilised zirconia"),
    ("In0.53Ga0.47As", 216, {"a": 5.869}, "zinc blende, lattice-matched to InP"),
    ("Ga0.51In0.49P", 216, {"a": 5.653}, "zinc blende, lattice-matched to GaAs"),
    ("Al0.5Ga0.5N", 186, {"a": 3.150, "c": 5.084}, "wurtzite (Vegard over AlN, GaN)"),
    ("Si0.5Ge0.5", 227, {"a": 5.54}, "diamond-structure alloy"),
    ("Cu0.5Ni0.5", 225, {"a": 3.57}, "fcc alloy"),
    ("Fe0.95O", 225, {"a": 4.30}, "rock salt, wüstite"),
    ("Al2.667O4", 227, {"a": 7.91}, "defect spinel, gamma-alumina"),
    ("LiMn1.5Ni0.5O4", 227, {"a": 8.17}, "spinel, disordered LNMO"),
    ("LiNi0.8Co0.15Al0.05O2", 166, rhombohedral(2.865, 14.18), "layered oxide (NCA)"),
    ("LiNi0.33Mn0.33Co0.34O2", 166, rhombohedral(2.86, 14.23), "layered oxide (NMC111)"),
]


def main(argv=None) -> int:
    from cryspext.formula.predict import predict_formula

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model-dir", type=Path, default=None, help="default: the shipped formula models")
    a = ap.parse_args(argv)
    print("| formula | space group | what | end members | parameter | measured | read directly | "
          "heaviest end member alone | Vegard |")
    print("|---|---|---|---|---|---|---|---|---|")
    errors = {"direct": [], "main": [], "vegard": []}
    for formula, sg, measured, what in REFERENCES:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            direct = predict_formula(formula, spacegroup=sg, vegard=False, model_dir=a.model_dir)
            vegard = predict_formula(formula, spacegroup=sg, vegard=True, model_dir=a.model_dir)
            # the parent-compound answer: the heaviest end member alone, in the same group
            main = predict_formula(vegard["end_members"][0]["formula"], spacegroup=sg, model_dir=a.model_dir)
        members = " + ".join(f"{e['weight']:.2f} {e['formula']}" for e in vegard["end_members"])
        for name, value in measured.items():
            got = {way: r["candidates"][0]["lattice"][name]["value"]
                   for way, r in (("direct", direct), ("main", main), ("vegard", vegard))}
            unit = "°" if name == "alpha" else " Å"
            print(f"| {formula} | {sg} | {what} | {members} | {name} | {value:.3f}{unit} | "
                  + " | ".join(f"{got[w]:.3f}{unit}" for w in ("direct", "main", "vegard")) + " |")
            if unit == " Å":  # the mean is over lengths; angles are listed only
                for way in errors:
                    errors[way].append(abs(got[way] - value))
    n = len(errors["direct"])
    closer = sum(v < d for d, v in zip(errors["direct"], errors["vegard"]))
    print(f"\nMean |error| over the {n} lengths: read directly {sum(errors['direct']) / n:.3f} Å, "
          f"heaviest end member alone {sum(errors['main']) / n:.3f} Å, Vegard "
          f"{sum(errors['vegard']) / n:.3f} Å; Vegard closer than read directly on {closer} of {n}.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
