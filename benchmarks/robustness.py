"""Robustness of cryspext's ARISE classifier to random defects, next to OVITO and spglib (thesis 5.1).

Protocol (thesis 4.3.3.2 / 5.1): for every prototype, the supercells of the training set (the
three isotropic replicas with >= 100 atoms, both periodic and finite; nanotubes finite only) are
made defective ``--realisations`` times (default 10) with

- random displacements of every Cartesian component, uniform in [−δ·d_NN, +δ·d_NN] (ARISE's
  ``uniform_scaled`` noise; ``--noise gaussian`` uses a Gaussian of standard deviation δ·d_NN,
  √3 times stronger), δ ∈ {0.1, 0.2, 0.6, 1, 2, 4, 7, 10} %. With uniform noise the OVITO
  baselines reproduce the thesis's Table 5.2 numbers, which is how the protocol was pinned down;
- missing atoms: a fraction η ∈ {1, 2, 5, 10, 15, 20, 25, 30} % removed at random;
- both combined: the pairs (δ_i, η_i) at the same position of the two lists;

then classified. ARISE is scored on all 108 classes (periodic and finite). The baselines are
scored, as in the thesis, on periodic structures of the classes they are designed for, per atom:
OVITO PTM (RMSD cutoff 0.1; fcc, hcp, bcc, sc, diamond, hex. diamond, graphene, h-BN, L1_0,
L1_2, zinc blende, wurtzite), adaptive CNA, CNA (fixed 3.2 Å cutoff) and Ackland–Jones (fcc,
bcc, hcp); spglib per structure on the AFLOW elemental and binary prototypes, tight
(symprec 1e-3 Å) and loose (0.1 Å), correct when it returns the pristine space group.

    python benchmarks/robustness.py                     # full protocol
    python benchmarks/robustness.py --sizes 0 --realisations 2 --mc-samples 100   # quick
    python benchmarks/robustness.py --baseline-sizes 0 --mc-samples 100          # what RESULTS uses

ARISE's accuracy is reported pooled over the sizes run (the thesis pools all three: 588
structures per realisation, 5 880 per level) and per size; the most frequent confusions are
kept in the JSON.

Writes a JSON file with everything (``--out``) and, with ``--markdown``, the result table. The
last line printed is a JSON summary whose ratios compare cryspext to ARISE's Table 5.2.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

DELTAS = (0.001, 0.002, 0.006, 0.01, 0.02, 0.04, 0.07, 0.10)
ETAS = (0.01, 0.02, 0.05, 0.10, 0.15, 0.20, 0.25, 0.30)
BENCH_SEED = 2021  # training validation uses 12345
# ARISE's published accuracies (thesis Table 5.2), in %.
ARISE_TABLE_5_2 = {("delta", 0.07): 97.82, ("delta", 0.10): 94.56, ("eta", 0.25): 99.86, ("eta", 0.30): 99.76}
AFLOW_GROUPS = ("Elemental_solids", "Binaries")

# Baseline-supported classes → expected per-atom label.
LOCAL_FCC_BCC_HCP = {"fcc_Cu_A_cF4_225_a": "FCC", "bcc_W_A_cI2_229_a": "BCC", "hcp_Mg_A_hP2_194_c": "HCP"}
PTM_CLASSES = {
    "fcc_Cu_A_cF4_225_a": ("FCC", None),
    "bcc_W_A_cI2_229_a": ("BCC", None),
    "hcp_Mg_A_hP2_194_c": ("HCP", None),
    "sc_alphaPo_A_cP1_221_a": ("SC", None),
    "diam_C_A_cF8_227_a": ("CUBIC_DIAMOND", None),
    "HexDiam_C_A_hP4_194_f": ("HEX_DIAMOND", None),
    "C": ("GRAPHENE", None),
    "BN": ("GRAPHENE", ("BORON_NITRIDE",)),
    "L10_CuAu": ("FCC", ("L10",)),
    "L12_Cu3Au": ("FCC", ("L12_A", "L12_B")),
    "Zincblende_ZnS": ("CUBIC_DIAMOND", ("ZINCBLENDE_WURTZITE",)),
    "Wurtzite_ZnS": ("HEX_DIAMOND", ("ZINCBLENDE_WURTZITE",)),
}


@dataclass
class Case:
    label: int
    name: str
    group: str
    periodic: bool
    size: int
    structure: object
    d_nn: float
    spacegroup: int | None = None


def levels(families):
    out = [("pristine", 0.0, 0.0)]
    if "delta" in families:
        out += [("delta", d, 0.0) for d in DELTAS]
    if "eta" in families:
        out += [("eta", 0.0, e) for e in ETAS]
    if "both" in families:
        out += [("both", d, e) for d, e in zip(DELTAS, ETAS)]
    return out


def build_cases(sizes, data=None):
    from cryspext.arise.defects import typical_nn_distance
    from cryspext.arise.prototypes import isotropic_supercells, load_prototypes

    cases = []
    for label, p in enumerate(load_prototypes(data)):
        finite = isotropic_supercells(p)
        periodic = [] if p.kind == "nanotube" else isotropic_supercells(p, periodic=True)
        d_nn = typical_nn_distance(p.structure)  # δ is a fraction of the prototype's d_NN
        for k in sizes:
            for is_periodic, group in ((False, finite), (True, periodic)):
                if k < len(group):
                    cases.append(Case(label, p.name, p.group, is_periodic, k, group[k], d_nn))
    return cases


# ----------------------------------------------------------------------------- baselines


def _ovito_pipeline(structure, modifier):
    from ovito.io.ase import ase_to_ovito
    from ovito.pipeline import Pipeline, StaticSource

    data = ase_to_ovito(structure.to_ase())
    pipe = Pipeline(source=StaticSource(data=data))
    pipe.modifiers.append(modifier)
    return pipe.compute()


def ovito_methods():
    """name → (classes dict, function(structure) -> per-atom label strings)."""
    import ovito.modifiers as om

    def typed(modifier, enum):
        names = {int(getattr(enum, n)): n for n in dir(enum) if n.isupper()}

        def run(structure):
            out = _ovito_pipeline(structure, modifier)
            types = np.asarray(out.particles["Structure Type"])
            return np.array([names.get(int(t), "OTHER") for t in types], dtype=object)

        return run

    ptm = om.PolyhedralTemplateMatchingModifier(rmsd_cutoff=0.1, output_ordering=True)
    T = om.PolyhedralTemplateMatchingModifier.Type
    for t in (T.FCC, T.HCP, T.BCC, T.SC, T.CUBIC_DIAMOND, T.HEX_DIAMOND, T.GRAPHENE):
        ptm.structures[t].enabled = True
    ptm.structures[T.ICO].enabled = False
    st_names = {int(getattr(T, n)): n for n in dir(T) if n.isupper()}
    O = om.PolyhedralTemplateMatchingModifier.OrderingType
    or_names = {int(getattr(O, n)): n for n in dir(O) if n.isupper()}

    def run_ptm(structure):
        out = _ovito_pipeline(structure, ptm)
        st = np.asarray(out.particles["Structure Type"])
        order = np.asarray(out.particles["Ordering Type"])
        return np.array([f"{st_names.get(int(a), 'OTHER')}/{or_names.get(int(b), 'NONE')}" for a, b in zip(st, order)], dtype=object)

    cna_mode = om.CommonNeighborAnalysisModifier.Mode
    return {
        "PTM": (PTM_CLASSES, run_ptm),
        "a-CNA": (LOCAL_FCC_BCC_HCP, typed(om.CommonNeighborAnalysisModifier(mode=cna_mode.AdaptiveCutoff), om.CommonNeighborAnalysisModifier.Type)),
        "CNA": (LOCAL_FCC_BCC_HCP, typed(om.CommonNeighborAnalysisModifier(mode=cna_mode.FixedCutoff, cutoff=3.2), om.CommonNeighborAnalysisModifier.Type)),
        "Ackland-Jones": (LOCAL_FCC_BCC_HCP, typed(om.AcklandJonesModifier(), om.AcklandJonesModifier.Type)),
    }


def per_atom_correct(method, expected, labels) -> int:
    if method == "PTM":
        structure_type, orderings = expected
        ok = 0
        for lab in labels:
            st, order = lab.split("/")
            if st == structure_type and (orderings is None or order in orderings):
                ok += 1
        return ok
    return int(np.sum(labels == expected))


def spglib_number(structure, symprec: float):
    import spglib

    cell = (structure.cell, structure.positions @ np.linalg.inv(structure.cell), structure.numbers)
    ds = spglib.get_symmetry_dataset(cell, symprec=symprec)
    return None if ds is None else int(ds.number)


# ----------------------------------------------------------------------------- main


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--realisations", type=int, default=10)
    ap.add_argument("--sizes", default="0,1,2", help="which supercells (0 = smallest >= 100 atoms); default all three")
    ap.add_argument("--families", default="delta,eta,both")
    ap.add_argument("--mc-samples", type=int, default=1000)
    ap.add_argument("--noise", choices=["uniform", "gaussian"], default="uniform", help="displacement distribution (default uniform, as ARISE)")
    ap.add_argument("--no-baselines", action="store_true", help="ARISE only (no OVITO, no spglib)")
    ap.add_argument("--baseline-sizes", default=None, help="run the baselines only on these supercell sizes (default: all of --sizes)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--model", default="arise")
    ap.add_argument("--data", default=None)
    ap.add_argument("--out", default=str(Path(__file__).with_name("robustness_results.json")))
    ap.add_argument("--markdown", default=None, help="write the result table to this Markdown file")
    args = ap.parse_args(argv)

    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    import torch
    from tqdm import tqdm

    from cryspext.arise import load_model
    from cryspext.arise.defects import make_defective

    torch.set_num_threads(args.threads)
    model = load_model(args.model)
    sizes = [int(s) for s in args.sizes.split(",")]
    families = args.families.split(",")
    baseline_sizes = set(sizes if args.baseline_sizes is None else (int(s) for s in args.baseline_sizes.split(",")))
    t_setup = time.perf_counter()
    cases = build_cases(sizes, args.data)
    methods = {} if args.no_baselines else ovito_methods()
    for c in cases:
        if c.periodic and c.group in AFLOW_GROUPS and not args.no_baselines and c.size in baseline_sizes:
            c.spacegroup = spglib_number(c.structure, 1e-3)
    print(f"{len(cases)} structures per realisation ({sum(len(c.structure) for c in cases)} atoms); setup {time.perf_counter() - t_setup:.0f}s", flush=True)

    results = []
    timing = {"soap": 0.0, "arise_mc": 0.0, "spglib": 0.0, **{m: 0.0 for m in methods}}
    for family, delta, eta in levels(families):
        reals = 1 if family == "pristine" else args.realisations
        counts = {"arise": [0, 0], **{m: [0, 0] for m in methods}}
        by_size = {k: [0, 0] for k in sizes}
        confusions: dict = {}
        if not args.no_baselines:
            counts.update({"spglib (tight)": [0, 0], "spglib (loose)": [0, 0]})
        mi_sum, mi_n = 0.0, 0
        for r in tqdm(range(reals), desc=f"{family} δ={delta:.3f} η={eta:.2f}", leave=False):
            structs = []
            for i, c in enumerate(cases):
                rng = np.random.default_rng([BENCH_SEED, int(round(delta * 1e4)), int(round(eta * 1e4)), r, i])
                structs.append(make_defective(c.structure, delta=delta, eta=eta, d_nn=c.d_nn, seed=rng, distribution=args.noise))
            t = time.perf_counter()
            x = model.describe(structs, progress=False)  # (n, views, 316): the model's descriptor views
            timing["soap"] += time.perf_counter() - t
            t = time.perf_counter()
            pred = model.predict(x, mc_samples=args.mc_samples, seed=r)
            timing["arise_mc"] += time.perf_counter() - t
            y = np.array([c.label for c in cases])
            ok = pred.label_indices == y
            counts["arise"][0] += int(np.sum(ok))
            counts["arise"][1] += len(cases)
            for c, good, guess in zip(cases, ok, pred.label_indices):
                by_size[c.size][0] += int(good)
                by_size[c.size][1] += 1
                if not good:
                    key = f"{c.name} -> {model.classes[guess]} (size {c.size})"
                    confusions[key] = confusions.get(key, 0) + 1
            mi_sum += float(pred.mutual_information.sum())
            mi_n += len(cases)
            for c, s in zip(cases, structs):
                if not c.periodic or c.size not in baseline_sizes:
                    continue
                for m, (classes, fn) in methods.items():
                    if c.name in classes:
                        t = time.perf_counter()
                        labels = fn(s)
                        timing[m] += time.perf_counter() - t
                        counts[m][0] += per_atom_correct(m, classes[c.name], labels)
                        counts[m][1] += len(s)
                if c.spacegroup is not None:
                    t = time.perf_counter()
                    for key, prec in (("spglib (tight)", 1e-3), ("spglib (loose)", 1e-1)):
                        counts[key][0] += int(spglib_number(s, prec) == c.spacegroup)
                        counts[key][1] += 1
                    timing["spglib"] += time.perf_counter() - t
        row = {
            "family": family,
            "delta": delta,
            "eta": eta,
            "realisations": reals,
            "mean_mi_nats": mi_sum / max(1, mi_n),
            "accuracy": {k: (100.0 * a / n if n else None) for k, (a, n) in counts.items()},
            "n": {k: n for k, (a, n) in counts.items()},
            "arise_by_size": {str(k): 100.0 * a / n for k, (a, n) in by_size.items() if n},
            "arise_confusions": dict(sorted(confusions.items(), key=lambda kv: -kv[1])[:15]),
        }
        results.append(row)
        acc = " ".join(f"{k} {v:.2f}" for k, v in row["accuracy"].items() if v is not None)
        print(f"{family:8s} δ={100 * delta:5.1f}% η={100 * eta:4.0f}%  {acc}  MI {row['mean_mi_nats']:.3f}", flush=True)
        # Written after every level, so that a long run that is stopped keeps what it measured.
        write(args, argv, cases, sizes, baseline_sizes, methods, model, timing, results, complete=False)

    meta = write(args, argv, cases, sizes, baseline_sizes, methods, model, timing, results, complete=True)
    ratios = {}
    for row in results:
        key = (row["family"], row["delta"] if row["family"] == "delta" else row["eta"])
        if key in ARISE_TABLE_5_2:
            ratios[f"{key[0]}={100 * key[1]:g}%"] = round(row["accuracy"]["arise"] / ARISE_TABLE_5_2[key], 4)
    summary = {
        "benchmark": "robustness",
        "accuracy_ratio_vs_ARISE_table_5_2": ratios,
        "beats_ARISE_everywhere": all(v >= 1.0 for v in ratios.values()) if ratios else None,
        "timing_s": meta["timing_s"],
    }
    print(json.dumps(summary))
    return 0


def write(args, argv, cases, sizes, baseline_sizes, methods, model, timing, results, complete: bool) -> dict:
    """Write the JSON (and Markdown) result files; returns the run's metadata."""
    meta = {
        "command": "python benchmarks/robustness.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "complete": complete,
        "structures_per_realisation": len(cases),
        "sizes": sizes,
        "baseline_sizes": sorted(baseline_sizes) if methods else [],
        "realisations": args.realisations,
        "mc_samples": args.mc_samples,
        "noise": args.noise,
        "threads": args.threads,
        "model": args.model,
        "model_card_metrics": model.card.get("metrics"),
        "model_training": {k: model.card.get("training", {}).get(k) for k in ("data_hash_sha256", "settings_grid", "epochs", "best_epoch", "optimizer")},
        "model_ensemble": model.card.get("ensemble"),
        "descriptor_views": model.descriptor_views,
        "timing_s": {k: round(v, 1) for k, v in timing.items()},
    }
    Path(args.out).write_text(json.dumps({"meta": meta, "results": results}, indent=1) + "\n")
    if args.markdown:
        Path(args.markdown).write_text(markdown(results, meta))
    return meta


def _cutoffs(views) -> str:
    return ", ".join(f"{v['cutoff']:g}" for v in views)


def markdown(results, meta) -> str:
    methods = [k for k in results[0]["accuracy"]]
    lines = [
        "# Robustness of the ARISE classifier (cryspext) vs local-environment methods and spglib",
        "",
        f"Produced by `{meta['command']}` (supercell sizes {meta['sizes']}, T = {meta['mc_samples']} MC-dropout passes, "
        f"{meta['structures_per_realisation']} structures per realisation, {meta['realisations']} realisations, {meta['threads']} threads, "
        f"{meta['noise']} displacement noise; baselines on supercell sizes {meta['baseline_sizes']}).",
        "",
        *([f"Descriptor views (the T passes spread over them): r_cut = {_cutoffs(meta['descriptor_views'])} d_NN.", ""]
          if len(meta.get("descriptor_views") or []) > 1 else []),
        *([f"Model: deep ensemble of {meta['model_ensemble']['members']} networks (seeds {meta['model_ensemble']['seeds']}), "
           "the T passes spread evenly over the members.", ""] if meta.get("model_ensemble") else []),
        "Accuracy in %. ARISE (cryspext): all 108 classes, periodic and finite structures. Baselines: periodic "
        "structures of the classes they support, per atom (OVITO) or per structure (spglib, AFLOW elemental + binary prototypes). "
        "`both`: δ and η of the same column applied together. `arise` pools all supercell sizes run (as the thesis); "
        "`arise size k`: one size only. Mean MI in nats.",
        "",
    ]
    size_cols = sorted(results[0]["arise_by_size"])
    head = methods[:1] + [f"arise size {k}" for k in size_cols] + ["ARISE published"] + methods[1:]
    lines += ["| defect | δ (% d_NN) | η (%) | " + " | ".join(head) + " | mean MI |", "|---|---|---|" + "---|" * len(head) + "---|"]
    for row in results:
        def cell(v):
            return "–" if v is None else f"{v:.2f}"
        key = (row["family"], row["delta"] if row["family"] == "delta" else row["eta"])
        cells = [cell(row["accuracy"]["arise"])] + [cell(row["arise_by_size"][k]) for k in size_cols]
        cells += [f"{ARISE_TABLE_5_2[key]:.2f}" if key in ARISE_TABLE_5_2 else ""] + [cell(row["accuracy"][m]) for m in methods[1:]]
        lines.append(f"| {row['family']} | {100 * row['delta']:g} | {100 * row['eta']:g} | " + " | ".join(cells) + f" | {row['mean_mi_nats']:.3f} |")
    lines += ["", "ARISE published (thesis Table 5.2): 97.82 (δ = 7 %), 94.56 (δ = 10 %), 99.86 (η = 25 %), 99.76 (η = 30 %).", ""]
    lines += [f"Timing (s): {json.dumps(meta['timing_s'])}", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
