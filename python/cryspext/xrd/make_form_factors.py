"""Regenerate ``form_factors_it92.json`` (shipped package data) from gemmi's IT92 table.

The coefficients are the 4-Gaussian + constant fits of International Tables for
Crystallography Vol. C (1992), Table 6.1.1.4, f(s) = Σ_{i=1..4} a_i exp(-b_i s²) + c with
s = sinθ/λ (Å⁻¹), for neutral atoms H..Cf (Z = 1..98), as shipped by the gemmi package
(MPL-2.0). gemmi is needed only to run this script::

    pip install gemmi && python -m cryspext.xrd.make_form_factors
"""

from __future__ import annotations

import json
from pathlib import Path

OUT = Path(__file__).with_name("form_factors_it92.json")


def build() -> dict:
    import gemmi

    elements = {}
    for z in range(1, 119):
        el = gemmi.Element(z)
        if el.it92 is None:
            continue
        a1, a2, a3, a4, b1, b2, b3, b4, c = el.it92.get_coefs()
        # gemmi stores float32: keep 6 significant digits, which is what the table has.
        row = [float(f"{x:.6g}") for x in (a1, a2, a3, a4, b1, b2, b3, b4, c)]
        elements[el.name] = {"Z": z, "coefficients": row}
    return {
        "description": "atomic X-ray form factors f(s) = sum_{i=1..4} a_i exp(-b_i s^2) + c, s = sin(theta)/lambda in 1/Angstrom",
        "columns": ["a1", "a2", "a3", "a4", "b1", "b2", "b3", "b4", "c"],
        "provenance": (
            "International Tables for Crystallography Vol. C (1992), Table 6.1.1.4 (neutral atoms), "
            f"as tabulated in the gemmi package {gemmi.__version__} (MPL-2.0, gemmi.Element(z).it92); "
            "extracted by cryspext/xrd/make_form_factors.py"
        ),
        "elements": elements,
    }


if __name__ == "__main__":
    table = build()
    OUT.write_text(json.dumps(table, indent=1) + "\n")
    print(f"wrote {len(table['elements'])} elements to {OUT}")
