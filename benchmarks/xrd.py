"""Benchmark: ideal powder profiles per second, cryspext (C++) vs pymatgen XRDCalculator.

Same 200 Materials Project structures (every 700th record of shared/data/mp), same reflections
(1/d in [0.1131, 1.0625] Å⁻¹, i.e. 2θ from 10.0° to 110.1° with Cu Kα λ = 1.54184 Å), same
Debye–Waller B = 2 Å². cryspext bins |F|² on 10001 points (seed defaults) in one batched,
OpenMP-parallel call; pymatgen computes its pattern (peaks merged, LP factor, hkl families)
structure by structure. One run; the last line is JSON with the ratio.

    python benchmarks/xrd.py [--n 200] [--threads N]
"""

from __future__ import annotations

import argparse
import gzip
import json
import math
import os
import time
from pathlib import Path



def load_structures(n: int):
    from pymatgen.core import Lattice, Structure

    root = Path(os.environ.get("CRYSPEXT_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
    out = []
    with gzip.open(root / "mp" / "mp_structures.jsonl.gz", "rt") as f:
        for i, line in enumerate(f):
            if i % 700 == 0:
                r = json.loads(line)
                out.append(Structure(Lattice(r["lattice"]), r["species"], r["frac"]))
                if len(out) == n:
                    break
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=200)
    args = parser.parse_args()

    from pymatgen.analysis.diffraction.xrd import XRDCalculator

    from cryspext import _core
    from cryspext.xrd import delta_profiles

    structures = load_structures(args.n)
    atoms = sum(len(s) for s in structures)
    lam = 1.54184
    tt_range = [2 * math.degrees(math.asin(g * lam / 2)) for g in (0.1131, 1.0625)]

    t0 = time.perf_counter()
    prof = delta_profiles(structures, b_factor=2.0)
    t_cx = time.perf_counter() - t0

    calc = XRDCalculator(wavelength=lam, debye_waller_factors={})
    t0 = time.perf_counter()
    n_peaks = 0
    for s in structures:
        calc.debye_waller_factors = {el.symbol: 2.0 for el in s.composition.elements}
        n_peaks += len(calc.get_pattern(s, two_theta_range=tt_range).x)
    t_pm = time.perf_counter() - t0

    threads = int(os.environ.get("OMP_NUM_THREADS", os.cpu_count() or 1))
    print(f"{len(structures)} structures, {atoms} atoms, 2θ {tt_range[0]:.2f}-{tt_range[1]:.2f}° (Cu Kα)")
    print(f"cryspext delta_profiles : {t_cx:8.3f} s  {len(structures) / t_cx:10.1f} profiles/s "
          f"({int((prof > 0).sum())} non-empty bins; OpenMP threads {threads if _core.has_openmp else 1})")
    print(f"pymatgen get_pattern    : {t_pm:8.3f} s  {len(structures) / t_pm:10.1f} profiles/s ({n_peaks} peaks)")
    print(json.dumps({"benchmark": "xrd_delta_profiles", "structures": len(structures), "atoms": atoms,
                      "cryspext_profiles_per_s": len(structures) / t_cx,
                      "pymatgen_profiles_per_s": len(structures) / t_pm,
                      "speedup_vs_pymatgen": t_pm / t_cx, "omp_threads": threads}))


if __name__ == "__main__":
    main()
