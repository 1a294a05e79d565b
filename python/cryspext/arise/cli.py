"""``cryspext classify FILE [--json]``: which of the 108 ARISE prototypes a structure is."""

from __future__ import annotations

import json


def _classify(args) -> int:
    from . import classify

    result = classify(args.file, mc_samples=args.samples, seed=args.seed)
    if args.json:
        out = result.as_dict(args.top)
        out["file"] = str(args.file)
        print(json.dumps(out))
        return 0
    print(f"file:                {args.file}")
    print(f"label:               {result.label}")
    print(f"mutual information:  {result.mutual_information:.4f} nats")
    print(f"predictive entropy:  {result.predictive_entropy:.4f} nats")
    print(f"top {args.top}:")
    for name, p in result.ranking(args.top):
        print(f"  {p:8.2%}  {name}")
    return 0


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "classify",
        help="which crystal prototype (of 108) a structure is, with its uncertainty",
        description=(
            "Classify a whole structure (a single crystal, a 2D material or a nanotube; periodic "
            "or a finite cluster) into one of the 108 ARISE prototypes: elemental solids (fcc, bcc, "
            "hcp, diamond, ...), binaries (NaCl, CsCl, L1_2, wurtzite, ...), ternary/quaternary "
            "compounds, 2D materials and carbon nanotubes. Prints the most probable prototype, the "
            "top-k ranking and the uncertainty (mutual information, in nats: near 0 means confident; "
            "values above ~0.1 mean the structure is defective or unlike any prototype). "
            "Which elements are present does not matter, only the geometry of each species pair."
        ),
        epilog="Example: cryspext classify POSCAR --top 3 --json",
    )
    p.add_argument("file", help="structure file in any format ase.io.read knows (cif, POSCAR, extxyz, ...)")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    p.add_argument("--top", type=int, default=5, help="how many candidates to list (default 5)")
    p.add_argument(
        "--samples", type=int, default=1000, help="Monte-Carlo dropout passes T (default 1000; fewer is faster, noisier)"
    )
    p.add_argument("--seed", type=int, default=None, help="random seed for reproducible uncertainties")
    p.set_defaults(func=_classify)
