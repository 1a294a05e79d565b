"""``cryspext spm`` (strided pattern matching of a structure file) and ``cryspext demo``."""

from __future__ import annotations

import argparse
import sys
import time

__all__ = ["register"]

_AXES = {"x": 0, "y": 1, "z": 2}


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "spm",
        help="map which crystal prototype each region of a large sample resembles (ARISE, strided pattern matching)",
        description=(
            "Strided pattern matching (ARISE thesis ch. 6): a cubic box slides over the sample; the atoms in each "
            "box are classified into 108 prototypes with Monte Carlo dropout. Writes class-probability and "
            "uncertainty (mutual information) maps, optionally a picture and per-atom labels."
        ),
        epilog=(
            "examples:\n"
            "  cryspext spm grains.extxyz --box 16 --stride 2 --out maps.npz --png maps.png\n"
            "  cryspext spm dump.lammpstrj --stride 3 --extxyz labelled.extxyz --scheduler tcp://host:8786\n"
            "Files are read with ASE (extxyz, POSCAR, CIF, LAMMPS dump, ...); the last frame is used."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("file", help="structure file (any format ASE reads)")
    p.add_argument("--box", type=float, default=16.0, help="box edge in Å (default 16; use >= 10-12 Å)")
    p.add_argument("--stride", type=float, default=3.0, help="step between boxes in Å (default 3; smaller = finer maps, cost ~ 1/stride^3)")
    p.add_argument("--mc-samples", type=int, default=1000, help="maximum MC-dropout passes per box (default 1000)")
    p.add_argument("--no-adaptive", action="store_true", help="draw all passes for every box (no early stopping)")
    p.add_argument("--tolerance", type=float, default=0.02,
                   help="adaptive stop: standard error of top probability and MI (nats) below this (default 0.02)")
    p.add_argument("--min-atoms", type=int, default=20, help="boxes with fewer atoms are left empty (default 20)")
    p.add_argument("--slab-axis", choices=sorted(_AXES), help="force a single layer of boxes along this axis (slabs)")
    p.add_argument("--periodic", action="store_true", help="wrap boxes across periodic faces (orthorhombic cells)")
    p.add_argument("--out", help="write the maps to this .npz file")
    p.add_argument("--png", help="write a picture of one slice of the maps (class, probability, MI)")
    p.add_argument("--slice", default="z", metavar="AXIS[:INDEX]", help="slice for --png, e.g. z or z:10 (default: middle along z)")
    p.add_argument("--extxyz", help="write the atoms with per-atom arise_label, arise_top_probability, arise_mutual_information")
    p.add_argument("--scheduler", help="dask.distributed scheduler address to run the boxes on a cluster")
    p.add_argument("--threads", type=int, help="torch threads (default: torch's choice)")
    p.add_argument("--seed", type=int, default=0, help="random seed of the MC sampling (default 0)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run_spm)

    d = subparsers.add_parser(
        "demo",
        help="classify a synthetic 4-grain fcc/bcc/hcp/diamond polycrystal and write maps, labels and pictures",
        description=(
            "Builds a 4-grain polycrystal slab (fcc, bcc, hcp, diamond; random orientations), runs strided "
            "pattern matching with the shipped ARISE model and writes maps.npz, maps.png, atoms.extxyz "
            "(per-atom labels), OVITO renderings and summary.json (accuracy inside grains, MI at boundaries)."
        ),
    )
    d.add_argument("--out", default="cryspext-demo", help="output folder (default ./cryspext-demo)")
    d.add_argument("--size", type=float, default=90.0, help="edge of the square slab in Å (default 90)")
    d.add_argument("--box", type=float, default=16.0, help="box edge in Å, also the slab thickness (default 16)")
    d.add_argument("--stride", type=float, default=2.0, help="stride in Å (default 2)")
    d.add_argument("--mc-samples", type=int, default=1000, help="maximum MC-dropout passes per box (default 1000)")
    d.add_argument("--seed", type=int, default=0, help="seed for grain orientations and MC sampling")
    d.add_argument("--no-render", action="store_true", help="skip the OVITO renderings")
    d.add_argument("--quiet", action="store_true", help="no progress bar")
    d.set_defaults(func=run_demo_cli)


def _slice(text: str):
    axis, _, index = text.partition(":")
    if axis not in _AXES:
        raise ValueError(f"--slice axis must be x, y or z, got {axis!r}")
    return axis, (int(index) if index else None)


def run_spm(args) -> int:
    import numpy as np

    from .spm import spm
    from .structure import as_structure

    if args.out and not args.out.endswith(".npz"):
        raise ValueError("--out must end in .npz")
    axis, index = _slice(args.slice)
    structure = as_structure(args.file)
    t0 = time.perf_counter()
    try:
        result = spm(
            structure,
            box=args.box,
            stride=args.stride,
            mc_samples=args.mc_samples,
            adaptive=not args.no_adaptive,
            tolerance=args.tolerance,
            min_atoms=args.min_atoms,
            slab_axis=_AXES.get(args.slab_axis) if args.slab_axis else None,
            periodic=args.periodic,
            client=args.scheduler,
            threads=args.threads,
            seed=args.seed,
            progress=False if args.quiet else None,
        )
    except ImportError as exc:
        print(f"cryspext spm: error: {exc}", file=sys.stderr)
        return 2
    elapsed = time.perf_counter() - t0
    valid = result.valid
    print(f"{len(structure)} atoms, {valid.size} boxes ({int(valid.sum())} with >= {args.min_atoms} atoms), "
          f"grid (z, y, x) = {result.shape}, {elapsed:.1f} s")
    if valid.any():
        print(f"MI (nats): median {np.nanmedian(result.mutual_information):.3f}, "
              f"max {np.nanmax(result.mutual_information):.3f}; mean passes {result.passes[valid].mean():.0f}")
        print("assigned classes (fraction of boxes):")
        for name, f in list(result.class_fractions().items())[:8]:
            print(f"  {f:6.1%}  {name}")
    if args.out:
        print(f"maps -> {result.save(args.out)}")
    if args.png:
        import matplotlib

        matplotlib.use("Agg")
        result.plot(args.png, axis=axis, index=index)
        print(f"picture -> {args.png}")
    if args.extxyz:
        import ase.io

        ase.io.write(args.extxyz, result.annotate(structure.to_ase()))
        print(f"per-atom labels -> {args.extxyz}")
    return 0


def run_demo_cli(args) -> int:
    from .spm.demo import run_demo

    try:
        summary = run_demo(args.out, size=args.size, box=args.box, stride=args.stride, mc_samples=args.mc_samples,
                           seed=args.seed, render=not args.no_render, progress=False if args.quiet else None)
    except ImportError as exc:
        print(f"cryspext demo: error: {exc}", file=sys.stderr)
        return 2
    print(f"{summary['atoms']} atoms, {summary['boxes']} boxes, SPM {summary['time_spm_s']} s")
    print(f"interior boxes assigned their grain's prototype: {summary['interior_accuracy']:.1%} "
          f"of {summary['interior_boxes']}")
    print(f"median MI: interior {summary['mi_median_interior']:.3f}, boundary {summary['mi_median_boundary']:.3f} nats")
    print(f"outputs in {args.out}/: maps.npz maps.png atoms.extxyz polycrystal.extxyz summary.json "
          + " ".join(summary["renders"].values()))
    return 0
