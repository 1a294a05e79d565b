"""``predict_formula`` answers as a flat table: one row per formula and candidate lattice, for
CSV files, spreadsheets and pandas (``pandas.DataFrame(answer_rows(answers))``).

Columns (``COLUMNS``): ``formula``; ``rank`` of the candidate (1 = likeliest); ``bravais``;
``probability`` and ``spread`` (std over the network members); the likeliest ``spacegroup`` of
that lattice and its ``spacegroup_probability`` (given the lattice); the six lattice parameters
``a b c`` (Å) and ``alpha beta gamma`` (degrees) with their calibrated σ ``sigma_a`` … (same
units); for hR candidates ``hexagonal_a``, ``hexagonal_c`` (Å) and their σ, empty otherwise;
``in_training_range`` (empty where the model records no training coverage).
"""

from __future__ import annotations

import csv
from pathlib import Path

from .lattice import PARAMETER_NAMES

__all__ = ["COLUMNS", "answer_rows", "write_csv"]

COLUMNS = (["formula", "rank", "bravais", "probability", "spread", "spacegroup", "spacegroup_probability"]
           + PARAMETER_NAMES + [f"sigma_{n}" for n in PARAMETER_NAMES]
           + ["hexagonal_a", "hexagonal_c", "sigma_hexagonal_a", "sigma_hexagonal_c", "in_training_range"])


def answer_rows(answers) -> list[dict]:
    """One dict per (formula, candidate) of ``predict_formula`` / ``predict_formulas`` answers
    (one answer or a list of them), keys ``COLUMNS``, in the answers' order."""
    if isinstance(answers, dict):
        answers = [answers]
    rows = []
    for answer in answers:
        coverage = answer.get("training_coverage")
        for rank, cand in enumerate(answer["candidates"], 1):
            best = cand["spacegroups"][0]
            row = {"formula": answer["formula"], "rank": rank, "bravais": cand["bravais"],
                   "probability": cand["probability"], "spread": cand["spread"],
                   "spacegroup": best["number"], "spacegroup_probability": best["probability"]}
            for n in PARAMETER_NAMES:
                row[n] = cand["lattice"][n]["value"]
                row[f"sigma_{n}"] = cand["lattice"][n]["uncertainty"]
            hexagonal = cand.get("hexagonal_setting", {})
            for n in ("a", "c"):
                row[f"hexagonal_{n}"] = hexagonal[n]["value"] if hexagonal else ""
                row[f"sigma_hexagonal_{n}"] = hexagonal[n]["uncertainty"] if hexagonal else ""
            row["in_training_range"] = coverage["in_training_range"] if coverage else ""
            rows.append({k: row[k] for k in COLUMNS})
    return rows


def write_csv(answers, path: str | Path) -> int:
    """Write ``answer_rows(answers)`` to a CSV file with a header line; returns the row count."""
    rows = answer_rows(answers)
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    return len(rows)
