"""``cryspext formula FORMULA`` and ``cryspext formula cell a b c alpha beta gamma``."""

from __future__ import annotations

import contextlib
import json
import math
import sys
import warnings

_SG_SYMBOLS = None


def _sg_symbol(number: int) -> str:
    """Hermann–Mauguin symbol of space group ``number`` (spglib's table)."""
    import spglib

    global _SG_SYMBOLS
    if _SG_SYMBOLS is None:
        _SG_SYMBOLS = {}
        for hall in range(1, 531):
            t = spglib.get_spacegroup_type(hall)
            _SG_SYMBOLS.setdefault(t.number, t.international_short)
    return _SG_SYMBOLS.get(number, "")


def _read_formulas(path: str) -> list[str]:
    """Formulas of a text file, one per line ('-': standard input); blank lines and text after
    '#' are skipped."""
    from pathlib import Path

    text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
    lines = [line.split("#", 1)[0].strip() for line in text.splitlines()]
    return [line for line in lines if line]


@contextlib.contextmanager
def _reading_notes():
    """Runs the block with its UserWarnings held back (the training-coverage ones are said in
    the output itself), then prints how a formula was read (``FormulaReadingWarning``) to
    standard error as a note."""
    from .parse import FormulaReadingWarning

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UserWarning)
        yield
    for w in caught:
        if issubclass(w.category, FormulaReadingWarning):
            print(f"cryspext formula: note: {w.message}", file=sys.stderr)
        elif not issubclass(w.category, UserWarning):
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)


def _check(args) -> int:
    """--check / --structure: how well a space group and cell fit the formula model."""
    from .check import check_cell, check_structure

    if args.file is not None or args.png or args.csv or args.spacegroup is not None or args.cell:
        raise ValueError("--check and --structure go without --file, --png, --csv, --spacegroup and 'cell'")
    with _reading_notes():
        if args.structure is not None:
            if args.formula is not None or args.check is not None:
                raise ValueError("--structure reads the formula, space group and cell from the file: "
                                 "give neither a formula nor --check")
            result = check_structure(args.structure)
        else:
            if args.formula is None:
                raise ValueError("--check needs a formula: cryspext formula LiFePO4 --check 62 10.33 6.01 4.69 90 90 90")
            try:
                number, *cell = [float(v) for v in args.check]
            except ValueError:
                raise ValueError(f"--check takes a space group and six numbers, got {args.check}") from None
            if number != int(number):
                raise ValueError(f"space group must be a whole number, got {number:g}")
            result = check_cell(args.formula, int(number), cell, vegard=args.vegard)
    print(json.dumps(result) if args.json else _describe_check(result))
    return 0


def _describe_check(r: dict) -> str:
    """The human-readable answer of ``check_cell``."""
    from .lattice import spacegroups_of_bravais

    sg = f"{r['spacegroup']} {_sg_symbol(r['spacegroup'])}".strip()
    lines = []
    coverage = r.get("training_coverage")
    if coverage and not coverage["in_training_range"]:
        lines.append(f"(an extrapolation: {'; '.join(coverage['reasons'])})")
    lines += [f"{r['formula']} in space group {sg}: how it fits the formula model",
              f"   Bravais lattice {r['bravais']}: rank {r['bravais_rank']} of 14 "
              f"(p = {r['bravais_probability']:.2f})",
              f"   space group {sg}: rank {r['spacegroup_rank']} of "
              f"{len(spacegroups_of_bravais(r['bravais']))} in {r['bravais']} "
              f"(p = {r['spacegroup_probability']:.2f} given {r['bravais']}); rank "
              f"{r['with_cell']['rank']} of 230 given this cell too (p = {r['with_cell']['probability']:.2f})"]
    for n, v in r["lattice"].items():
        unit = "°" if n in ("alpha", "beta", "gamma") else " Å"
        lines.append(f"   {n:<5} given {v['given']:.3f}{unit}, expected {v['predicted']:.3f} "
                     f"± {v['uncertainty']:.3f}{unit} in this group  (z = {v['z']:+.2f})")
    lines.append(f"   largest |z| = {r['max_abs_z']:.2f} (below 2 for 82 % of held-out compounds' own cells, "
                 "33 % of other compounds' cells of the same group; a low rank or |z| > 3 is unusual "
                 "for such a formula, not proof of an error)")
    return "\n".join(lines)


def _formula(args) -> int:
    from .predict import predict_formula, predict_formulas

    if args.cell_formula is not None and args.formula != "cell":
        raise ValueError("--of goes with 'cell': cryspext formula cell A B C ALPHA BETA GAMMA --of FORMULA")
    if args.standard_setting and args.formula != "cell":
        raise ValueError("--standard-setting goes with 'cell': cryspext formula cell A B C ALPHA BETA "
                         "GAMMA --standard-setting")
    if args.analogues and (args.csv or args.check is not None or args.structure is not None
                           or args.formula == "cell"):
        raise ValueError("--analogues goes with a formula or --file, printed or --json "
                         "(not with --csv, --check, --structure or 'cell')")
    if args.seed_structure and (args.file is not None or args.csv or args.check is not None
                                or args.structure is not None or args.formula in (None, "cell")):
        raise ValueError("--seed-structure goes with one formula (not with --file, --csv, --check, "
                         "--structure or 'cell')")
    if args.check is not None or args.structure is not None:
        return _check(args)
    if args.file is not None:
        if args.formula is not None or args.png:
            raise ValueError("--file goes without a formula and without --png")
        formulas = _read_formulas(args.file)
        with _reading_notes():
            results = predict_formulas(formulas, top_k=args.top, spacegroup=args.spacegroup,
                                       vegard=args.vegard, progress=len(formulas) > 2048,
                                       analogues=args.analogues)
        if args.csv:
            return _write_csv(results, args.csv)
        for result in results:
            print(json.dumps(result) if args.json else _describe(result, args.spacegroup))
        return 0
    if args.formula is None:
        raise ValueError("give a formula (e.g. cryspext formula LiFePO4), 'cell' and six numbers, "
                         "or --file")
    if args.formula == "cell":
        if len(args.cell) != 6:
            raise ValueError(
                "usage: cryspext formula cell A B C ALPHA BETA GAMMA (Å and degrees); "
                f"got {len(args.cell)} numbers"
            )
        if args.spacegroup is not None:
            raise ValueError("--spacegroup goes with a formula, not with 'cell'")
        return _cell(args)
    if args.cell:
        raise ValueError(f"unexpected extra arguments {args.cell} after the formula")
    with _reading_notes():
        result = predict_formula(args.formula, top_k=args.top, spacegroup=args.spacegroup,
                                 vegard=args.vegard, analogues=args.analogues)
    if args.csv:
        _write_csv(result, args.csv)
    else:
        print(json.dumps(result) if args.json else _describe(result, args.spacegroup))
    if args.png:
        from .plot import plot_formula

        plot_formula(result, args.png)
    if args.seed_structure:
        _write_seed(args.formula, args.seed_structure, quiet=args.json)
    return 0


def _write_seed(formula: str, path: str, quiet: bool) -> None:
    """Write ``seed_structure(formula)`` to ``path`` (format from the name, as ``ase.io.write``)."""
    from ase.io import write

    from .analogues import seed_structure

    seed = seed_structure(formula)
    write(path, seed)
    i = seed.info
    of = f" (end member {i['end_member']})" if i["end_member"] else ""
    message = (f"seed structure{of}: {seed.get_chemical_formula()} in the structure of {i['seed_of']} "
               f"({i['mp_id']}, space group {i['spacegroup']}, model probability "
               f"{i['spacegroup_probability']:.2f}), volume x {i['volume_scale']:.3f}, "
               f"written to {path}; a guess to relax, not a prediction")
    print(message, file=sys.stderr if quiet else sys.stdout)


def _write_csv(results, path: str) -> int:
    from .table import write_csv

    n = write_csv(results, path)
    print(f"cryspext formula: wrote {n} rows (one per formula and candidate lattice) to {path}",
          file=sys.stderr)
    return 0


def _describe(result: dict, spacegroup: int | None) -> str:
    """The human-readable answer of ``predict_formula``, several lines."""
    lines = []
    coverage = result.get("training_coverage")
    if coverage and not coverage["in_training_range"]:
        lines.append(f"(an extrapolation: {'; '.join(coverage['reasons'])})")
    if spacegroup is None:
        lines.append(f"{result['formula']}: most likely Bravais lattices (probability ± network "
                     "spread; lattice parameters ± their uncertainty σ)")
    else:
        lines.append(f"{result['formula']} in space group {spacegroup} {_sg_symbol(spacegroup)}: "
                     "the lattice parameters given that group (probabilities: what the model would "
                     "have said without it)".replace("  ", " "))
    if "end_members" in result:
        mean = " + ".join(f"{e['weight']:.2f} {e['formula']}" for e in result["end_members"])
        lines.append(f"   (lattice parameters by Vegard's law over the end members {mean})")
    for i, cand in enumerate(result["candidates"], 1):
        lines.append(f"{i}. {cand['name']:<15} ({cand['bravais']})  p = {cand['probability']:.2f} "
                     f"± {cand['spread']:.2f}")
        sgs = ", ".join(
            f"{s['number']} {_sg_symbol(s['number'])} ({s['probability']:.2f})".replace("  ", " ")
            for s in cand["spacegroups"]
        )
        lines.append(f"   space groups: {sgs}")
        lat = cand["lattice"]
        # ± the calibrated σ where the model has one, else the members' std
        err = {k: v["std"] if math.isnan(v["uncertainty"]) else v["uncertainty"] for k, v in lat.items()}
        lengths = "  ".join(f"{k} = {lat[k]['value']:.2f}±{err[k]:.2f} Å" for k in "abc")
        angles = "  ".join(
            f"{k} = {lat[k]['value']:.1f}±{err[k]:.1f}°" for k in ("alpha", "beta", "gamma")
        )
        lines.append(f"   lattice: {lengths}\n            {angles}")
        if "hexagonal_setting" in cand:
            hexagonal = cand["hexagonal_setting"]
            lines.append("            hexagonal axes: " + "  ".join(
                f"{k} = {v['value']:.2f}±{v['std'] if math.isnan(v['uncertainty']) else v['uncertainty']:.2f} Å"
                for k, v in hexagonal.items()))
    if "analogues" in result:
        lines += _describe_analogues(result)
    return "\n".join(lines)


def _describe_analogues(result: dict) -> list[str]:
    """Lines listing the known analogues of an answer (``predict_formula(..., analogues=n)``)."""
    of = f" (of the end member {result['analogues_of']})" if result.get("analogues_of") else ""
    if not result["analogues"]:
        return [f"known analogues{of}: none (no training formula has this stoichiometry)"]
    lines = [f"known analogues{of}: same stoichiometry, nearest elements (distance = sum of "
             "Mendeleev-number differences; Materials Project, conventional cell):"]
    for a in result["analogues"]:
        c = a["conventional"]
        sg = f"{a['spacegroup']} {_sg_symbol(a['spacegroup'])}".strip()
        lines.append(f"   {a['formula']:<14} {a['mp_id']:<11} {sg:<14} ({a['bravais']})  "
                     f"distance {a['distance']:g}  a b c = {c['a']:.2f} {c['b']:.2f} {c['c']:.2f} Å  "
                     f"{c['alpha']:.1f} {c['beta']:.1f} {c['gamma']:.1f}°")
    vote = result.get("analogues_vote")
    if vote:
        first = result["candidates"][0]["bravais"] if result.get("candidates") else None
        agree = ("the same as candidate 1" if vote[0]["bravais"] == first else
                 "not candidate 1: on held-out formulas such disagreement made candidate 1 less "
                 "often right (benchmarks/RESULTS_formula_analogues.md)")
        from .analogues import VOTE_K

        lines.append(f"   their vote (nearest {VOTE_K}, weighted by distance): "
                     + ", ".join(f"{v['bravais']} {v['share']:.2f}" for v in vote[:3]) + f"; {agree}")
    return lines


def _cell(args) -> int:
    from .predict import predict_cell

    try:
        values = [float(v) for v in args.cell]
    except ValueError:
        raise ValueError(f"cell parameters must be numbers, got {args.cell}") from None
    with _reading_notes():  # the coverage is said below, in the output itself
        result = predict_cell(*values, top_k=args.top, formula=args.cell_formula,
                              setting="standard" if args.standard_setting else "any")
    if args.json:
        print(json.dumps(result))
        return 0
    r = result["reduced_cell"]
    print(f"metric lattice of this cell: {result['lattice_type']}; Niggli cell "
          f"{r[0]:.3f} {r[1]:.3f} {r[2]:.3f} Å, {r[3]:.2f} {r[4]:.2f} {r[5]:.2f}°")
    if not result["in_training_range"]:
        print("(its lengths leave the range of the training cells: an extrapolation)")
    coverage = result.get("training_coverage")
    if coverage and not coverage["in_training_range"]:
        print(f"(the formula is an extrapolation: {'; '.join(coverage['reasons'])})")
    if "formula" in result:
        print(f"cell volume / formula-unit volume = {result['volume_ratio']:.2f} (about the formula "
              "units per cell times a packing factor; each group is weighed by how common this "
              "ratio is among its training cells)")
        joint = "joint_probability" in result["spacegroups"][0]
        print(f"space groups from this cell and the formula {result['formula']} together "
              "(p; from the cell alone, from the formula alone"
              + ("; from trees that read the formula and the cell together" if joint else "") + "):")
    for i, s in enumerate(result["spacegroups"], 1):
        line = f"{i}. space group {s['number']:>3} {_sg_symbol(s['number']):<12} ({s['bravais']})  p = {s['probability']:.2f}"
        if "spread" in s:
            line += f" ± {s['spread']:.2f}"
        else:
            line += f"  (cell {s['cell_probability']:.2f}, formula {s['formula_probability']:.2f}"
            line += f", both read together {s['joint_probability']:.2f})" if "joint_probability" in s else ")"
        print(line)
    return 0


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "formula",
        help="likely Bravais lattice, space group and cell of a formula (or from a cell)",
        description=(
            "Predict the likely Bravais lattices of a compound from its formula alone, each "
            "with its most likely space groups and lattice parameters (a CRYSPNet-style "
            "network ensemble mixed with gradient-boosted trees, trained on Materials "
            "Project). ± after a probability is the spread over the network members (large = "
            "they disagree); ± after a lattice parameter is its calibrated uncertainty σ (about "
            "68 % of errors fall within it). "
            "With 'cell' instead of a formula, rank space groups from the six cell parameters."
        ),
        epilog=(
            "examples:\n"
            "  cryspext formula LiFePO4\n"
            "  cryspext formula 'CuSO4·5H2O' --top 2 --json\n"
            "  cryspext formula Al2.6652O4\n"
            "  cryspext formula LiFePO4 --spacegroup 62   (lattice parameters in Pnma)\n"
            "  cryspext formula NaMnPO4 --analogues 5   (known compounds like it)\n"
            "  cryspext formula NaMnPO4 --seed-structure NaMnPO4.cif   (a structure to relax)\n"
            "  cryspext formula Ba0.5Sr0.5TiO3 --png bst.png\n"
            "  cryspext formula cell 5.431 5.431 5.431 90 90 90\n"
            "  cryspext formula cell 10.33 6.01 4.69 90 90 90 --of LiFePO4   (cell and formula)\n"
            "  cryspext formula --file formulas.txt --json > predictions.jsonl\n"
            "  cryspext formula --file formulas.txt --csv predictions.csv\n"
            "  cryspext formula LiFePO4 --check 62 10.33 6.01 4.69 90 90 90   (does this cell fit?)\n"
            "  cryspext formula --structure relaxed.cif\n"
            "Formulas: nested (), [] and {} groups, decimal amounts, hydrates joined by · or *. "
            "Charges (SO4^2-) and variables (La2-xSrxCuO4) are refused.\n"
            "Decimal amounts (solid solutions, doped compounds: Ba0.5Sr0.5TiO3) are read as "
            "written for the Bravais lattice and space group (learned from COD's fractional "
            "formulas); the lattice parameters follow Vegard's law, the weighted mean over end "
            "members (0.5 BaTiO3 + 0.5 SrTiO3) in the same lattice, unless --no-vegard. A "
            "slightly off-stoichiometric formula (Fe0.95O) can still look low-symmetric: ask "
            "for the parent formula (FeO) too."
        ),
        formatter_class=__import__("argparse").RawDescriptionHelpFormatter,
    )
    p.add_argument("formula", nargs="?", default=None,
                   help="chemical formula, e.g. LiFePO4; or the word 'cell'")
    p.add_argument("cell", nargs="*", help="with 'cell': a b c (Å) alpha beta gamma (degrees)")
    p.add_argument("--top", type=int, default=3,
                   help="how many Bravais lattices (or space groups with 'cell') to list "
                        "(default 3)")
    p.add_argument("--spacegroup", type=int, default=None, metavar="N",
                   help="a space group you know (1-230): give the lattice parameters of the "
                        "formula in that group")
    p.add_argument("--no-vegard", dest="vegard", action="store_false",
                   help="for a formula with decimal amounts, predict the lattice parameters of "
                        "the formula as written (the content of an ordered cell) instead of "
                        "Vegard's law over its end members")
    p.add_argument("--file", default=None, metavar="PATH",
                   help="predict every formula of a text file, one per line ('-': standard "
                        "input; '#' starts a comment), in batches (faster than one call each); "
                        "with --json, one JSON object per line")
    p.add_argument("--analogues", type=int, default=0, metavar="N",
                   help="also list N known compounds of the same stoichiometry with the most "
                        "similar elements (e.g. NaFePO4 for LiFePO4), with their space groups "
                        "and cells, from the Materials Project training data")
    p.add_argument("--seed-structure", default=None, metavar="PATH",
                   help="also write a starting structure for a first-principles relaxation: of the "
                        "5 nearest known analogues, the one whose space group the model finds "
                        "likeliest, with the formula's elements substituted and the volume scaled "
                        "(a CIF, POSCAR, xyz ... file, format from the name)")
    p.add_argument("--png", default=None, metavar="PATH",
                   help="also draw the answer (probabilities, lattice lengths ± σ) into a PNG file")
    p.add_argument("--check", nargs=7, default=None, metavar=("N", "A", "B", "C", "ALPHA", "BETA", "GAMMA"),
                   help="check a proposed space group N and its conventional cell (Å, degrees; R "
                        "groups on hexagonal or rhombohedral axes), e.g. from indexing a powder "
                        "pattern, against what the model expects for the formula: ranks of the "
                        "lattice and group, and each parameter's z = (given - expected) / σ")
    p.add_argument("--structure", default=None, metavar="PATH",
                   help="the same check for a structure file (CIF, POSCAR, extxyz, ...): its "
                        "formula, and its space group and cell found by spglib")
    p.add_argument("--csv", default=None, metavar="PATH",
                   help="write the answers as a table instead: one row per formula and candidate "
                        "lattice (probability, likeliest space group, a b c in Å and alpha beta "
                        "gamma in degrees with their σ), for spreadsheets and pandas")
    p.add_argument("--of", dest="cell_formula", default=None, metavar="FORMULA",
                   help="with 'cell': the compound's formula too; the space groups are then ranked "
                        "from the cell and the formula together (much surer than either alone)")
    p.add_argument("--standard-setting", action="store_true",
                   help="with 'cell': the cell is the conventional standard cell of its space group "
                        "(as a database CIF gives it); the ranking then also reads the setting "
                        "convention (which axis is unique, the order of the axes). Wrong for "
                        "reduced or primitive cells")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=_formula)
