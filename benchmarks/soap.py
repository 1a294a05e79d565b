"""Benchmark: ARISE SOAP in cryspext vs dscribe and quippy, single-threaded, in one run.

    python benchmarks/soap.py            # full run (quippy parts take a minute)
    python benchmarks/soap.py --quick    # smaller per-atom case, fewer quippy repeats

Cases (fcc Cu, a = 3.615 Å, ARISE settings: r_cut = 4 d_NN, sigma = 0.1 d_NN, n_max = 9,
l_max = 6, lengths scaled by d_NN):
1. one 16 Å box (~365 atoms) cut from a non-periodic fcc sample: the ARISE descriptor;
2. 100 boxes of ~400 atoms from strided box extraction (cryspext: one call, boxes in C++);
3. per-atom SOAP of a periodic 32,000-atom fcc crystal.
Anchors: dscribe SOAP (rbf "gto", same n_max/l_max/r_cut/sigma on the d_NN-scaled structure,
average="inner" for boxes) and, when quippy-ase is installed, quippy's soap descriptor as ARISE
calls it (one call per species pair on the scaled structure). quippy on 100 boxes and on 32,000
atoms would take minutes; it is timed on a subset and reported per box / per atom (marked
"extrapolated"). Memory: peak RSS of soap_per_atom in subprocesses for 4k..32k atoms.
The last line is JSON with the timings and ratios.

The C++ kernel picks its instruction set at run time (AVX-512, AVX2 + FMA, or the x86-64
baseline; `cryspext._core.soap_isa()`). On an AVX-512 machine the one-box and 100-box cases are
also timed with the kernel capped at AVX2 (CRYSPEXT_SOAP_ISA=avx2), the figure for CPUs without
AVX-512.
"""

from __future__ import annotations

import os

# Single-threaded comparison: fix the thread count before any OpenMP runtime starts.
os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse
import contextlib
import json
import subprocess
import sys
import time
import warnings

import numpy as np
from ase.build import bulk

import cryspext
from cryspext.descriptors import arise_soap, arise_soap_boxes, nearest_neighbor_distance, soap_per_atom

A = 3.615
SETTINGS = dict(cutoff=4.0, n_max=9, l_max=6, sigma=0.1)


def best_of(fn, repeat):
    """Best CPU time (s) of `repeat` calls, and the result. CPU time (time.process_time) rather
    than wall time: the benchmark machine is shared, and every contender is single-threaded."""
    times = []
    out = None
    for _ in range(repeat):
        t0 = time.process_time()
        out = fn()
        times.append(time.process_time() - t0)
    return min(times), out


@contextlib.contextmanager
def capped_isa(isa):
    """Caps the SOAP kernel's instruction set (read by the C++ core at each call)."""
    old = os.environ.get("CRYSPEXT_SOAP_ISA")
    os.environ["CRYSPEXT_SOAP_ISA"] = isa
    try:
        yield
    finally:
        if old is None:
            del os.environ["CRYSPEXT_SOAP_ISA"]
        else:
            os.environ["CRYSPEXT_SOAP_ISA"] = old


def fcc_sample(nx, ny, nz):
    s = bulk("Cu", "fcc", a=A, cubic=True) * (nx, ny, nz)
    s.pbc = False
    s.cell = np.zeros((3, 3))
    return s


def scaled(atoms, d):
    a = atoms.copy()
    a.positions = a.positions / d
    if a.pbc.any():
        a.set_cell(a.cell.array / d)
    return a


def dscribe_soap(average, periodic):
    from dscribe.descriptors import SOAP

    return SOAP(species=["Cu"], r_cut=4.0, n_max=9, l_max=6, sigma=0.1, rbf="gto", average=average, periodic=periodic)


def quippy_descriptor(average):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from quippy.descriptors import Descriptor
    avg = "T" if average else "F"
    return Descriptor(f"soap cutoff=4.0 l_max=6 n_max=9 atom_sigma=0.1 n_Z=1 Z={{29}} n_species=1 species_Z={{29}} central_weight=0.0 average={avg}")


def have_quippy():
    try:
        quippy_descriptor(True)
        return True
    except Exception:
        return False


def peak_rss_mb(n_cells):
    # Peak resident memory during soap_per_atom only: the kernel's high-water mark is reset
    # (/proc/self/clear_refs) after imports and structure set-up.
    code = (
        "import re, numpy as np\n"
        "from ase.build import bulk\n"
        "from cryspext.descriptors import soap_per_atom\n"
        f"a = bulk('Cu', 'fcc', a={A}, cubic=True) * {n_cells}\n"
        "a.rattle(0.01, seed=1)\n"
        "kb = lambda key: int(re.search(key + r':\\s+(\\d+)', open('/proc/self/status').read()).group(1))\n"
        "open('/proc/self/clear_refs', 'w').write('5')\n"
        "base = kb('VmRSS')\n"
        "x = soap_per_atom(a)\n"
        "print(len(a), (kb('VmHWM') - base) / 1024.0, x.nbytes / 2**20)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    return int(out[0]), float(out[1]), float(out[2])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="smaller per-atom case and fewer repeats")
    args = ap.parse_args()
    from cryspext import _core

    results = {"threads": os.environ.get("OMP_NUM_THREADS"), "settings": SETTINGS, "isa": _core.soap_isa()}
    print(f"SOAP kernel instruction set: {results['isa']}")
    quippy = have_quippy()
    results["quippy_available"] = quippy

    # 1. one 16 Å box (365 atoms): a 16 Å cube holding 9 lattice planes per axis
    sample = fcc_sample(8, 8, 8)
    centre = np.full(3, 7.5 + 2 * A)
    box = sample[np.all(np.abs(sample.positions - centre) <= 8.0, axis=1)]
    d = nearest_neighbor_distance(box)
    t_c, v_c = best_of(lambda: arise_soap(box, **SETTINGS), 5)
    ds_box = dscribe_soap("inner", False)
    sbox = scaled(box, d)
    t_d, _ = best_of(lambda: ds_box.create(sbox), 3)
    one = {"atoms": len(box), "d_nn": d, "cryspext_s": t_c, "dscribe_s": t_d}
    if results["isa"] == "avx512":
        with capped_isa("avx2"):
            one["cryspext_avx2_s"], _ = best_of(lambda: arise_soap(box, **SETTINGS), 5)
    if quippy:
        q = quippy_descriptor(True)
        t_q, v_q = best_of(lambda: q.calc(sbox)["data"].ravel(), 1 if args.quick else 2)
        one["quippy_s"] = t_q
        one["max_abs_diff_vs_quippy"] = float(np.abs(v_q - v_c).max())
    results["one_box"] = one
    print(f"one box: {len(box)} atoms, cryspext {t_c * 1e3:.2f} ms, dscribe {t_d * 1e3:.1f} ms"
          + (f", quippy {one['quippy_s'] * 1e3:.0f} ms (max |diff| {one['max_abs_diff_vs_quippy']:.1e})" if quippy else ""))

    # 2. 100 boxes of ~400 atoms (5 x 5 x 4 grid of 16.8 Å boxes, stride 4 Å)
    sample = fcc_sample(10, 10, 9)
    grid = cryspext.strided_boxes(sample, 16.8, 4.0)
    assert grid.n_boxes == 100, grid.shape
    boxes = [sample[grid.members(k)] for k in range(grid.n_boxes)]
    t_c, rows = best_of(lambda: arise_soap_boxes(sample, grid, **SETTINGS), 1 if args.quick else 2)
    scaled_boxes = [scaled(bx, nearest_neighbor_distance(bx)) for bx in boxes]
    t_d, _ = best_of(lambda: [ds_box.create(bx) for bx in scaled_boxes], 1)
    many = {"boxes": grid.n_boxes, "mean_atoms": float(grid.counts.mean()), "cryspext_s": t_c, "dscribe_s": t_d}
    if results["isa"] == "avx512":
        with capped_isa("avx2"):
            many["cryspext_avx2_s"], _ = best_of(lambda: arise_soap_boxes(sample, grid, **SETTINGS), 1 if args.quick else 2)
    if quippy:
        sub = scaled_boxes[:5]
        t_q, _ = best_of(lambda: [q.calc(bx) for bx in sub], 1)
        many["quippy_s_extrapolated"] = t_q / len(sub) * grid.n_boxes
    results["boxes_100"] = many
    print(f"100 boxes (~{many['mean_atoms']:.0f} atoms): cryspext {t_c:.3f} s, dscribe {t_d:.2f} s"
          + (f", quippy ~{many['quippy_s_extrapolated']:.0f} s (5 boxes timed)" if quippy else ""))

    # 3. per-atom SOAP, periodic 32,000 atoms (--quick: 4,000)
    reps = (10, 10, 10) if args.quick else (20, 20, 20)
    crystal = bulk("Cu", "fcc", a=A, cubic=True) * reps
    crystal.rattle(0.01, seed=1)
    d = nearest_neighbor_distance(crystal)
    t_c, pa = best_of(lambda: soap_per_atom(crystal, **SETTINGS), 1)
    ds_atoms = dscribe_soap("off", True)
    sc = scaled(crystal, d)
    t_d, _ = best_of(lambda: ds_atoms.create(sc), 1)
    per = {"atoms": len(crystal), "cryspext_s": t_c, "dscribe_s": t_d}
    if quippy:
        small = scaled(bulk("Cu", "fcc", a=A, cubic=True) * (8, 8, 8), d)
        qa = quippy_descriptor(False)
        t_q, _ = best_of(lambda: qa.calc(small), 1)
        per["quippy_s_extrapolated"] = t_q / len(small) * len(crystal)
    results["per_atom"] = per
    print(f"per-atom SOAP, {len(crystal)} atoms: cryspext {t_c:.2f} s, dscribe {t_d:.2f} s"
          + (f", quippy ~{per['quippy_s_extrapolated']:.0f} s (2,048 atoms timed)" if quippy else ""))

    # memory of soap_per_atom: peak RSS growth vs atoms (output is 316 float64 per atom)
    mem = []
    for cells in ([(8, 8, 8), (10, 10, 10)] if args.quick else [(10, 10, 10), (13, 13, 13), (16, 16, 16), (20, 20, 20)]):
        n, grow, out_mb = peak_rss_mb(cells)
        mem.append({"atoms": n, "peak_rss_growth_mb": grow, "output_mb": out_mb})
        print(f"memory: {n} atoms, peak RSS +{grow:.0f} MB (output array {out_mb:.0f} MB)")
    results["memory"] = mem

    ratios = {
        "dscribe_over_cryspext_one_box": one["dscribe_s"] / one["cryspext_s"],
        "dscribe_over_cryspext_100_boxes": many["dscribe_s"] / many["cryspext_s"],
        "dscribe_over_cryspext_per_atom": per["dscribe_s"] / per["cryspext_s"],
    }
    for key, case in (("one_box", one), ("100_boxes", many)):
        if "cryspext_avx2_s" in case:
            ratios[f"dscribe_over_cryspext_avx2_{key}"] = case["dscribe_s"] / case["cryspext_avx2_s"]
    if quippy:
        ratios["quippy_over_cryspext_one_box"] = one["quippy_s"] / one["cryspext_s"]
        ratios["quippy_over_cryspext_100_boxes"] = many["quippy_s_extrapolated"] / many["cryspext_s"]
        ratios["quippy_over_cryspext_per_atom"] = per["quippy_s_extrapolated"] / per["cryspext_s"]
        if "cryspext_avx2_s" in one:
            ratios["quippy_over_cryspext_avx2_one_box"] = one["quippy_s"] / one["cryspext_avx2_s"]
            ratios["quippy_over_cryspext_avx2_100_boxes"] = many["quippy_s_extrapolated"] / many["cryspext_avx2_s"]
    results["ratios"] = ratios
    print(json.dumps(results))


if __name__ == "__main__":
    main()
