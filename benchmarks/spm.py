"""SPM benchmark: the Ni–Al superalloy cube of ARISE thesis 6.3, end to end.

    OMP_NUM_THREADS=2 python benchmarks/spm.py [--n-cells 32 --a 3.75 --box 16 --stride 3]

A 120 Å cube (32³ fcc cells, a = 3.75 Å, 131,072 atoms; ARISE scales every box by its d_NN, so
the lattice constant does not change the classification) with a random Ni/Al fcc matrix (25 %
Al) around an ordered L1₂ Ni₃Al cube of half the edge. Box 16 Å, stride 3 Å.

Timed in one run:
- cryspext: box extraction, ARISE SOAP of all boxes (exact per-box path), MC dropout with
  adaptive stopping and shared masks (cryspext.spm defaults), total;
- anchors on a random sample of boxes: the plain MC path (``AriseModel.predict``, per-row masks,
  T = 1000 for every box, as ARISE does) for speed and as the reference for the adaptive error;
  quippy's SOAP (ARISE's descriptor code) per box for the descriptor speed, when installed.
Scores: precipitate found (L1₂ inside, fcc outside: fraction of pure boxes assigned), passes
saved by adaptive sampling, error of adaptive vs T = 1000. Last line: JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np


def quippy_box_soap(atoms_box, settings) -> None:
    """ARISE's own recipe with quippy: per species pair, scale by d_NN(alpha, beta), averaged SOAP."""
    from quippy.descriptors import Descriptor

    species = sorted(set(atoms_box.numbers))
    for za in species:
        for zb in species:
            a = atoms_box.copy()
            pos = a.positions
            ia, ib = np.flatnonzero(a.numbers == za), np.flatnonzero(a.numbers == zb)
            if ia.size == 0 or ib.size == 0:
                continue
            d = np.linalg.norm(pos[ia][:, None] - pos[ib][None], axis=-1)
            d[d < 1e-8] = np.inf
            dnn = float(np.median(d.min(axis=1)))
            a.positions = pos / dnn
            a.cell = np.eye(3) * 1000
            a.pbc = False
            desc = Descriptor(
                f"soap cutoff={settings.get('cutoff', 4.0)} n_max=9 l_max=6 atom_sigma=0.1 central_weight=0 "
                f"average=T Z={za} species_Z={{{zb}}} n_species=1"
            )
            desc.calc(a)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n-cells", type=int, default=32)
    ap.add_argument("--a", type=float, default=3.75)
    ap.add_argument("--precipitate", type=float, default=0.5)
    ap.add_argument("--box", type=float, default=16.0)
    ap.add_argument("--stride", type=float, default=3.0)
    ap.add_argument("--mc-samples", type=int, default=1000)
    ap.add_argument("--anchor-boxes", type=int, default=300, help="boxes in the anchor / reference sample")
    ap.add_argument("--quippy-boxes", type=int, default=10)
    ap.add_argument("--threads", type=int, default=int(os.environ.get("OMP_NUM_THREADS", "2")))
    ap.add_argument("--reference-passes", type=int, default=8000, help="passes of the long reference run on the sample")
    ap.add_argument("--model", default="arise", help="shipped ARISE model name (default arise)")
    ap.add_argument("--out", help="save the maps (.npz) and a picture (.png next to it)")
    args = ap.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    from cryspext import _core
    from cryspext.arise import load_model
    from cryspext.build import superalloy
    from cryspext.descriptors import arise_soap_boxes
    from cryspext.spm import SharedMaskMLP, mc_dropout, spm

    if hasattr(_core, "set_num_threads"):
        _core.set_num_threads(args.threads)
    model = load_model(args.model)
    settings = model.descriptor_settings
    times = {}
    t0 = time.perf_counter()
    atoms = superalloy(n_cells=args.n_cells, a=args.a, precipitate=args.precipitate, seed=0)
    times["build_s"] = time.perf_counter() - t0
    print(f"{len(atoms)} atoms, edge {atoms.cell[0, 0]:.1f} Å, threads {args.threads}")

    # --- cryspext end to end (timed as a user runs it) ----------------------------------------
    t0 = time.perf_counter()
    result = spm(atoms, box=args.box, stride=args.stride, mc_samples=args.mc_samples, model=model, progress=True)
    times["spm_total_s"] = time.perf_counter() - t0
    valid = result.valid
    n_valid = int(valid.sum())
    print(f"SPM: {result.shape} grid, {n_valid} boxes, {times['spm_total_s']:.1f} s")

    times["descriptors_s"] = result.timings["descriptor_s"]
    times["mc_adaptive_s"] = result.timings["mc_s"]

    # --- anchors on a random sample of boxes ------------------------------------------------
    from dataclasses import replace

    grid = result.grid
    rng = np.random.default_rng(1)
    sample = np.sort(rng.choice(np.flatnonzero(valid.ravel()), size=min(args.anchor_boxes, n_valid), replace=False))
    only = np.zeros(grid.n_boxes, dtype=bool)
    only[sample] = True
    x = arise_soap_boxes(atoms, replace(grid, valid=only.reshape(grid.shape)), **settings)[sample]
    fast = SharedMaskMLP.from_model(model)
    ada_sample = mc_dropout(fast, x, mc_samples=args.mc_samples, seed=3)
    t0 = time.perf_counter()
    ref = model.predict(x, mc_samples=args.mc_samples, seed=4)  # ARISE's way: T passes, per-row masks
    times["mc_plain_sample_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    fixed_fast = mc_dropout(fast, x, mc_samples=args.mc_samples, adaptive=False, seed=5)
    times["mc_shared_fixed_sample_s"] = time.perf_counter() - t0
    long_ref = fast.predict(x, mc_samples=args.reference_passes, seed=6)
    rows = np.arange(len(sample))

    def err(r, ref):
        top = np.argmax(ref.probabilities, axis=1)
        dp = np.abs(r.probabilities[rows, top] - ref.probabilities[rows, top])
        dm = np.abs(r.mutual_information - ref.mutual_information)
        agree = np.mean(np.argmax(r.probabilities, axis=1) == top)
        return {"p_top_p95": float(np.percentile(dp, 95)), "p_top_max": float(dp.max()),
                "mi_p95": float(np.percentile(dm, 95)), "mi_max": float(dm.max()), "label_agreement": float(agree)}

    errors = {
        "adaptive_vs_plain_T1000": err(ada_sample, ref),
        "shared_T1000_vs_plain_T1000": err(fixed_fast, ref),
        f"adaptive_vs_T{args.reference_passes}": err(ada_sample, long_ref),
        f"plain_T1000_vs_T{args.reference_passes}": err(ref, long_ref),
        f"shared_T1000_vs_T{args.reference_passes}": err(fixed_fast, long_ref),
        "adaptive_mean_passes_on_sample": float(ada_sample.passes.mean()),
    }

    quippy_rate = None
    try:
        import quippy  # noqa: F401

        boxes_q = sample[: args.quippy_boxes]
        t0 = time.perf_counter()
        for b in boxes_q:
            quippy_box_soap(atoms[grid.members(b)], settings)
        quippy_rate = len(boxes_q) / (time.perf_counter() - t0)
    except ImportError:
        pass

    # --- scores ------------------------------------------------------------------------------
    inside = atoms.arrays["precipitate"].astype(bool)
    flat_valid = valid.ravel()
    frac_inside = np.array([inside[grid.members(b)].mean() if flat_valid[b] else np.nan for b in range(grid.n_boxes)])
    labels = result.labels.ravel()
    l12 = result.class_index("L12_Cu3Au")
    fcc = result.class_index("fcc_Cu_A_cF4_225_a")
    pure_in = flat_valid & (frac_inside == 1.0)
    pure_out = flat_valid & (frac_inside == 0.0)
    mixed = flat_valid & (frac_inside > 0.2) & (frac_inside < 0.8)
    mi = result.mutual_information.ravel()
    scores = {
        "precipitate_boxes": int(pure_in.sum()),
        "precipitate_L12_fraction": float(np.mean(labels[pure_in] == l12)) if pure_in.any() else float("nan"),
        "matrix_boxes": int(pure_out.sum()),
        "matrix_fcc_fraction": float(np.mean(labels[pure_out] == fcc)) if pure_out.any() else float("nan"),
        "mi_median_precipitate": float(np.nanmedian(mi[pure_in])) if pure_in.any() else float("nan"),
        "mi_median_matrix": float(np.nanmedian(mi[pure_out])) if pure_out.any() else float("nan"),
        "mi_median_interface": float(np.nanmedian(mi[mixed])) if mixed.any() else float("nan"),
        "class_fractions": {k: round(v, 4) for k, v in list(result.class_fractions().items())[:5]},
    }
    mean_passes = float(result.passes[valid].mean())
    rates = {
        "boxes_per_s_end_to_end": n_valid / times["spm_total_s"],
        "soap_boxes_per_s": n_valid / times["descriptors_s"],
        "mc_adaptive_boxes_per_s": n_valid / times["mc_adaptive_s"],
        "mc_plain_T1000_boxes_per_s": len(sample) / times["mc_plain_sample_s"],
        "mc_shared_T1000_boxes_per_s": len(sample) / times["mc_shared_fixed_sample_s"],
        "quippy_soap_boxes_per_s": quippy_rate,
    }
    plain_total = n_valid / rates["mc_plain_T1000_boxes_per_s"] + (
        n_valid / quippy_rate if quippy_rate else times["descriptors_s"])
    summary = {
        "atoms": len(atoms),
        "edge_A": float(atoms.cell[0, 0]),
        "boxes": n_valid,
        "grid": list(result.shape),
        "threads": args.threads,
        "times_s": {k: round(v, 2) for k, v in times.items()},
        "rates": {k: (round(v, 2) if v else v) for k, v in rates.items()},
        "mean_passes": round(mean_passes, 1),
        "passes_saved_fraction": round(1 - mean_passes / args.mc_samples, 4),
        "errors_on_sample": errors,
        "scores": scores,
        "ratios": {
            "mc_speedup_adaptive_shared_vs_plain_T1000": round(rates["mc_adaptive_boxes_per_s"] / rates["mc_plain_T1000_boxes_per_s"], 2),
            "mc_speedup_shared_vs_plain_fixed_T1000": round(rates["mc_shared_T1000_boxes_per_s"] / rates["mc_plain_T1000_boxes_per_s"], 2),
            "soap_speedup_vs_quippy": round(rates["soap_boxes_per_s"] / quippy_rate, 2) if quippy_rate else None,
            "end_to_end_vs_arise_style_estimate": round(plain_total / times["spm_total_s"], 2),
        },
        "goal_under_300_s": times["spm_total_s"] < 300,
    }
    if args.out:
        result.save(args.out)
        result.plot(os.path.splitext(args.out)[0] + ".png", classes=["L12_Cu3Au", "fcc_Cu_A_cF4_225_a"],
                    title=f"Ni–Al superalloy, box {args.box:g} Å, stride {args.stride:g} Å, central z slice")
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
