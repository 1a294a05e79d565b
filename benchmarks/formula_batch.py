"""``predict_formulas`` (batched) against ``predict_formula`` called once per formula, on the
same formulas, in one run; also checks that both give the same answers.

    python benchmarks/formula_batch.py [--n 1000] [--threads 2]

The formulas are random binary to quaternary compositions (seeded) of the elements most
common in Materials Project, a quarter of them with fractional amounts (Vegard end members).
Prints the time per formula each way and their ratio.
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

ELEMENTS = "Li Na K Mg Ca Sr Ba Al Ga In Si Ge Sn Ti Zr V Nb Cr Mo W Mn Fe Co Ni Cu Zn La Ce Y B P As Sb Bi O S Se N F Cl".split()


def random_formulas(n: int, seed: int = 0) -> list[str]:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        els = rng.choice(ELEMENTS, size=rng.integers(2, 5), replace=False)
        amounts = rng.integers(1, 7, size=len(els)).astype(float)
        if i % 4 == 0:  # a fractional formula: one amount split over two elements
            amounts[0] = round(float(rng.uniform(0.1, 0.9)), 2)
        out.append("".join(f"{e}{a:g}" for e, a in zip(els, amounts)))
    return out


def main(argv=None) -> int:
    import torch

    from cryspext.formula.predict import predict_formula, predict_formulas

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=1000, help="number of formulas")
    ap.add_argument("--threads", type=int, default=2, help="torch threads")
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    formulas = random_formulas(a.n)
    warnings.simplefilter("ignore", UserWarning)
    predict_formula("NaCl")  # load the models outside the timings
    t0 = time.perf_counter()
    one = [predict_formula(f) for f in formulas]
    t1 = time.perf_counter()
    many = predict_formulas(formulas)
    t2 = time.perf_counter()
    same = sum([c["bravais"] for c in x["candidates"]] == [c["bravais"] for c in y["candidates"]]
               for x, y in zip(one, many))
    print(f"{a.n} formulas, {a.threads} torch threads: predict_formula one at a time "
          f"{(t1 - t0) / a.n * 1e3:.1f} ms per formula, predict_formulas "
          f"{(t2 - t1) / a.n * 1e3:.1f} ms per formula ({(t1 - t0) / (t2 - t1):.1f}× faster); "
          f"same Bravais ranking for {same} of {a.n}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
