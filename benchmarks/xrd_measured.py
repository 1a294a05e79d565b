"""Measured single-phase powder patterns (shared/data/xrd_measured) run end to end.

For each pattern: peaks extracted automatically (Cu Kα1+Kα2, Kα2 stripped), prediction of the
shipped ensemble, next to the known phase. The known space groups are the phases these samples
are (from their peak positions and the literature); reference volumes are Materials Project
primitive-cell volumes of that phase from shared/data/mp (DFT, typically 1-5 % above
experiment), except TaCr2O6 whose refined cell is in the Rietveld file next to its data.
As a control, the ideal δ-profile of the same MP structure is predicted too (Scheme 1 alone).

    python benchmarks/xrd_measured.py            # prints a Markdown table, then one JSON line
"""

from __future__ import annotations

import gzip
import json
import os
from pathlib import Path


ROOT = Path(os.environ.get("CRYSPEXT_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))

# file, phase, known space group (number, symbol), MP id of that phase (None: no MP record), V_ref (Å³) override
KNOWN = [
    ("MnO.xy", "MnO (rock salt)", 225, "Fm-3m", "mp-19006", None),
    ("TiO2.xy", "TiO2 (anatase)", 141, "I4_1/amd", "mp-390", None),
    ("MnO2.xy", "β-MnO2 (pyrolusite)", 136, "P4_2/mnm", "mp-510408", None),
    ("LiMnO2.xy", "LiMnO2 (orthorhombic)", 59, "Pmmn", "mp-18767", None),
    ("Mn2O3.xy", "α-Mn2O3 (bixbyite)", 206, "Ia-3 (not a model class)", "mp-510604", 835.7952 / 2),
    ("xrd_measurement_TaCr2O6.dat", "TaCr2O6 (rutile type, disordered)", 136, "P4_2/mnm", None,
     4.648826 * 4.648826 * 3.028236),
]


def mp_structures(ids):
    from pymatgen.core import Lattice, Structure

    sup = json.loads(gzip.open(ROOT / "mp" / "mp_supercells.json.gz", "rt").read())
    out = {}
    with gzip.open(ROOT / "mp" / "mp_structures.jsonl.gz", "rt") as f:
        for line in f:
            r = json.loads(line)
            if r["id"] in ids:
                out[r["id"]] = (Structure(Lattice(r["lattice"]), r["species"], r["frac"]),
                                r["volume"] / sup.get(r["id"], {}).get("mult", 1))
    return out


def main() -> None:
    from cryspext.xrd import load_model, predict_pattern

    model = load_model()
    refs = mp_structures({k[4] for k in KNOWN if k[4]})
    rows, summary = [], []
    for fname, phase, sg, symbol, mp_id, v_override in KNOWN:
        res = predict_pattern(ROOT / "xrd_measured" / fname, "CuKa", top=3)
        pred = res.prediction
        v_ref = v_override if v_override is not None else refs[mp_id][1]
        ideal = model.predict_structures([refs[mp_id][0]], top=3)[0] if mp_id else None
        rank = pred.space_groups.index(sg) + 1 if sg in pred.space_groups else None
        top3 = ", ".join(f"{g} {s} ({p:.2f})" for g, s, p in zip(pred.space_groups, pred.symbols, pred.probabilities))
        ideal_txt = f"{ideal.space_groups[0]} {ideal.symbols[0]}, {ideal.volume:.1f}" if ideal else "–"
        rows.append(f"| {fname} | {phase} | {sg} {symbol} | {top3} | {len(res.peaks)} | {v_ref:.1f} | "
                    f"{pred.volume:.1f} ({100 * (pred.volume / v_ref - 1):+.0f} %) | {ideal_txt} |")
        summary.append({"file": fname, "known_sg": sg, "predicted_sg": pred.space_groups[0], "rank_of_known": rank,
                        "v_ref": v_ref, "v_pred": pred.volume, "peaks": len(res.peaks),
                        "ideal_sg": ideal.space_groups[0] if ideal else None,
                        "ideal_v": ideal.volume if ideal else None})
    print("| file | phase | known space group | predicted top 3 (ensemble probability) | peaks | V_ref (Å³) | "
          "V_pred (Å³) | ideal MP profile: top 1, V |")
    print("|---|---|---|---|---|---|---|---|")
    print("\n".join(rows))
    correct = sum(s["predicted_sg"] == s["known_sg"] for s in summary)
    print(json.dumps({"benchmark": "xrd_measured", "patterns": len(summary), "top1_correct": correct,
                      "known_in_top3": sum(s["rank_of_known"] is not None for s in summary), "rows": summary}))


if __name__ == "__main__":
    main()
