"""How well ``check_cell`` tells a compound's own cell from another compound's cell of the same
space group, on held-out formulas.

    python benchmarks/formula_check.py [--n 1000] [--threads 2]

Rows: a seeded sample of the *test* formulas of the random split (the shipped formula model never
saw them; ``cache/formula/dataset.json.gz`` from ``python -m cryspext.training.formula data``).
For each, ``check_cell`` is asked twice with the row's true space group: with its own conventional
cell (true), and with the conventional cell of another test formula of the same space group
(swapped, drawn at random; rows whose group has no other test formula are left out). Reported: the
shares of max |z| below 1, 2 and 3 for both, the area under the ROC curve of max |z| as a score
for "not this compound's cell" (the chance that a swapped cell scores above a true one), and the
ranks of the true Bravais lattice and space group. Also the σ of ``hexagonal_setting`` (propagated
from the rhombohedral a and α) on every hR test formula: the shares of true hexagonal a and c
within 1 and 2 σ, next to those of the rhombohedral a and α. Writes
benchmarks/RESULTS_formula_check.md.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "python"))


def auc(positive: np.ndarray, negative: np.ndarray) -> float:
    """P(a negative's score > a positive's) + ½ P(equal): the ROC area of the score."""
    both = np.concatenate([positive, negative])
    ranks = np.argsort(np.argsort(both, kind="stable"), kind="stable").astype(float) + 1
    # mid-ranks for ties
    for v in np.unique(both):
        same = both == v
        if same.sum() > 1:
            ranks[same] = ranks[same].mean()
    r_neg = ranks[len(positive):].sum()
    n_pos, n_neg = len(positive), len(negative)
    return float((r_neg - n_neg * (n_neg + 1) / 2) / (n_pos * n_neg))


def hexagonal_coverage(rows: list[dict], test) -> list[str]:
    """Markdown lines: how often the true cell of each hR test formula lies within 1 and 2 σ of
    ``predict_formula``'s hR candidate, on hexagonal axes and on rhombohedral ones."""
    from cryspext.formula.predict import predict_formulas

    hr = [int(i) for i in test if rows[i]["bravais"] == "hR"]
    answers = predict_formulas([rows[i]["formula"] for i in hr], top_k=14)
    z = {"hexagonal a": [], "hexagonal c": [], "rhombohedral a": [], "rhombohedral α": []}
    for i, answer in zip(hr, answers):
        cand = next(c for c in answer["candidates"] if c["bravais"] == "hR")
        hexagonal, lattice = cand["hexagonal_setting"], cand["lattice"]
        conventional, rhombohedral = rows[i]["conventional"], rows[i]["params"]
        for name, v, truth in (("hexagonal a", hexagonal["a"], conventional[0]),
                               ("hexagonal c", hexagonal["c"], conventional[2]),
                               ("rhombohedral a", lattice["a"], rhombohedral[0]),
                               ("rhombohedral α", lattice["alpha"], rhombohedral[3])):
            z[name].append(abs(v["value"] - truth) / v["uncertainty"])
    lines = [f"hR candidates on hexagonal axes ({len(hr)} hR test formulas; σ of `hexagonal_setting` "
             "propagated to first order from the rhombohedral a and α, taken as independent):", "",
             "| parameter | within 1 σ | within 2 σ |", "|---|---|---|"]
    for name, v in z.items():
        v = np.array(v)
        lines.append(f"| {name} | {100 * np.mean(v < 1):.1f} % | {100 * np.mean(v < 2):.1f} % |")
    return lines + [""]


def main(argv=None) -> int:
    import torch

    from cryspext.formula.check import check_cell
    from cryspext.training import formula as T

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=1000, help="test formulas sampled (default 1000)")
    ap.add_argument("--threads", type=int, default=2, help="torch threads")
    ap.add_argument("--cache", type=Path, default=T.DEFAULT_CACHE)
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "RESULTS_formula_check.md")
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    rows = T.load_dataset(a.cache / "dataset.json.gz")
    _, test = T.split_indices(rows, "random")
    rng = np.random.default_rng(0)
    by_group: dict[int, list[int]] = {}
    for i in test:
        by_group.setdefault(rows[i]["sg"], []).append(int(i))
    sample = [int(i) for i in rng.permutation(test) if len(by_group[rows[i]["sg"]]) > 1][: a.n]
    warnings.simplefilter("ignore", UserWarning)
    t0 = time.perf_counter()
    true_z, swap_z, bravais_rank, group_rank, with_cell_rank = [], [], [], [], []
    for i in sample:
        r = rows[i]
        others = [j for j in by_group[r["sg"]] if j != i]
        j = others[rng.integers(len(others))]
        own = check_cell(r["formula"], r["sg"], r["conventional"])
        swapped = check_cell(r["formula"], r["sg"], rows[j]["conventional"])
        true_z.append(own["max_abs_z"])
        swap_z.append(swapped["max_abs_z"])
        bravais_rank.append(own["bravais_rank"])
        group_rank.append(own["spacegroup_rank"])
        with_cell_rank.append(own["with_cell"]["rank"])
    seconds = time.perf_counter() - t0
    true_z, swap_z = np.array(true_z), np.array(swap_z)
    bravais_rank, group_rank, with_cell_rank = np.array(bravais_rank), np.array(group_rank), np.array(with_cell_rank)

    def pct(x):
        return f"{100 * float(np.mean(x)):.1f} %"

    lines = [
        "# Checking a cell against the formula model (`check_cell`)", "",
        f"Produced by `python benchmarks/formula_check.py --n {a.n}` ({len(sample)} test formulas of "
        f"the random split, the shipped model; {seconds / 60:.1f} min, {1000 * seconds / (2 * len(sample)):.0f} "
        "ms per check).", "",
        "Each formula is checked with its own conventional cell (true) and with the cell of another "
        "test formula of the same space group (swapped). max |z| is the largest |given − expected| / σ "
        "over the lattice's free parameters, expected given the space group.", "",
        "| cell | median max \\|z\\| | max \\|z\\| < 1 | < 2 | < 3 |",
        "|---|---|---|---|---|",
    ]
    for name, z in (("true", true_z), ("swapped", swap_z)):
        lines.append(f"| {name} | {np.median(z):.2f} | {pct(z < 1)} | {pct(z < 2)} | {pct(z < 3)} |")
    lines += [
        "",
        f"ROC area of max |z| for 'not this compound's cell' (true against swapped): "
        f"{auc(true_z, swap_z):.3f} (0.5 = no better than chance).", "",
        f"True Bravais lattice ranked 1 / ≤ 2 / ≤ 3 of 14: {pct(bravais_rank == 1)} / "
        f"{pct(bravais_rank <= 2)} / {pct(bravais_rank <= 3)}; true space group ranked first in its "
        f"lattice: {pct(group_rank == 1)}, within the first 3: {pct(group_rank <= 3)}; given the "
        f"formula and the true cell together (`with_cell`), first of 230: {pct(with_cell_rank == 1)}, "
        f"within the first 3: {pct(with_cell_rank <= 3)}.", "",
    ]
    lines += hexagonal_coverage(rows, test)
    text = "\n".join(lines)
    a.out.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
