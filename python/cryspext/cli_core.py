"""Core sub-commands: ``cryspext neighbors`` (neighbour-list statistics of a structure file)."""

from __future__ import annotations

import json


def _neighbors(args) -> int:
    from .neighbors import neighbor_list
    from .structure import as_structure

    s = as_structure(args.file)
    nl = neighbor_list(s, args.cutoff)
    counts = [0] * len(s) if len(s) else []
    for i in nl.i:
        counts[i] += 1
    result = {
        "atoms": len(s),
        "pairs": len(nl),
        "cutoff_A": args.cutoff,
        "mean_neighbors": (len(nl) / len(s)) if len(s) else 0.0,
        "min_distance_A": float(nl.distances.min()) if len(nl) else None,
    }
    if args.json:
        print(json.dumps(result))
    else:
        for k, v in result.items():
            print(f"{k:>16}: {v}")
    return 0


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "neighbors",
        help="neighbour-list summary of a structure file",
        description="Read a structure (any format ase.io.read knows) and summarise its neighbour list.",
    )
    p.add_argument("file", help="structure file (extxyz, cif, POSCAR, ...)")
    p.add_argument("--cutoff", type=float, default=3.0, help="cutoff radius in Å (default 3.0)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=_neighbors)
