"""How well a known or proposed cell fits what the formula model expects: a check of an indexing.

``check_cell("LiFePO4", 62, (10.33, 6.01, 4.69, 90, 90, 90))`` compares a space group and a
conventional cell (from an indexed powder pattern, a CIF, a relaxation) with ``predict_formula``'s
answer for the formula: the rank and probability of the cell's Bravais lattice and of its space
group within that lattice, and each free lattice parameter against the one predicted *given that
space group*, as z = (given − predicted) / σ. ``check_structure(atoms)`` does the same for a
structure (ASE, pymatgen, OVITO or a file), its space group and conventional standard cell found by
spglib with the settings of the training labels.

Reading the numbers (``benchmarks/RESULTS_formula_check.md``, 1000 held-out Materials Project
formulas): the true Bravais lattice ranks first for about two in three formulas and within the
first three for 89 %; given the formula and the true cell together its space group ranks first
of 230 for 79 %; the largest |z| of the true cell is below 2 for 82 % of them, of another
compound's cell of the same space group for 33 % (ROC area 0.82). A rank far down or |z| > 3 says
that the cell is unusual for such a formula, which a wrong indexing often is; it does not prove
it wrong: new structure types are unusual too.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np

from .cellgeom import _check
from .lattice import ANGLES, BRAVAIS, FREE_PARAMETERS, PARAMETER_NAMES, bravais_of_spacegroup, full_parameters
from .lattice import cell_parameters, hexagonal_to_rhombohedral
from .parse import as_composition

__all__ = ["check_cell", "check_structure", "SYMPREC", "ANGLE_TOLERANCE"]

# spglib settings of the training labels (``training.formula.conventional_parameters``).
SYMPREC = 0.1  # Å
ANGLE_TOLERANCE = 5.0  # degrees
# How far the parameters that the lattice ties together (a = b in tP, α = 90° in oP, ...) may be
# from it in the given cell: indexing results and relaxed cells carry small errors.
TIED_LENGTH_TOLERANCE = 0.01  # relative
TIED_ANGLE_TOLERANCE = 1.0  # degrees


def _in_lattice(bravais: str, params: np.ndarray) -> dict[str, float]:
    """The free parameters of ``bravais`` read from a six-parameter cell, after checking that the
    others are what the lattice makes them; hR cells may be given on hexagonal axes."""
    p = dict(zip(PARAMETER_NAMES, params.tolist()))
    if bravais == "hR" and abs(p["gamma"] - 120.0) <= TIED_ANGLE_TOLERANCE:
        # hexagonal axes (a = b, c; 90°, 90°, 120°), as databases quote R groups
        if (abs(p["a"] - p["b"]) > TIED_LENGTH_TOLERANCE * p["a"]
                or max(abs(p["alpha"] - 90.0), abs(p["beta"] - 90.0)) > TIED_ANGLE_TOLERANCE):
            raise ValueError(f"an R cell on hexagonal axes needs a = b and α = β = 90°, got {params.tolist()}")
        a_r, alpha_r = hexagonal_to_rhombohedral(p["a"], p["c"])
        p = dict(a=a_r, b=a_r, c=a_r, alpha=alpha_r, beta=alpha_r, gamma=alpha_r)
    free = {n: p[n] for n in FREE_PARAMETERS[bravais]}
    expected = full_parameters(bravais, free)
    for n in PARAMETER_NAMES:
        off = abs(p[n] - expected[n])
        if (n in ANGLES and off > TIED_ANGLE_TOLERANCE) or (n not in ANGLES and off > TIED_LENGTH_TOLERANCE * expected[n]):
            raise ValueError(
                f"the cell {[round(v, 4) for v in params.tolist()]} does not have the metric of a "
                f"{bravais} lattice ({n} should be {expected[n]:.4g}); give the conventional "
                "standard cell of the space group (ITA / spglib setting; R groups on hexagonal or "
                "rhombohedral axes)")
    return free


def _setting(m, bravais: str, params: np.ndarray) -> str:
    """``predict_cell``'s setting for a checked cell: "standard" (the cell is the group's
    conventional standard cell), unless the models have no standard-setting trees or an R cell
    is given on rhombohedral axes (the trees learned R groups on hexagonal axes)."""
    if m.cell_standard_trees is None:
        return "any"
    if bravais == "hR" and abs(params[5] - 120.0) > TIED_ANGLE_TOLERANCE:
        return "any"
    return "standard"


def check_cell(formula, spacegroup: int, cell, model_dir: str | Path | None = None,
               vegard: bool = True) -> dict:
    """How well space group ``spacegroup`` (1–230) and ``cell`` (a, b, c in Å; α, β, γ in degrees:
    the conventional standard cell, ITA / spglib setting; R groups on hexagonal or rhombohedral
    axes) fit the formula model's expectations for ``formula`` (str, pymatgen ``Composition`` or
    mapping).

    Returns ``{"formula", "spacegroup", "bravais", "bravais_probability", "bravais_rank",
    "spacegroup_probability", "spacegroup_rank", "with_cell", "lattice", "max_abs_z"}`` (and
    ``"training_coverage"``, ``"end_members"`` where ``predict_formula`` gives them). Ranks count
    from 1 (the likeliest): the Bravais lattice among all 14, the space group among its lattice's
    groups (probability given the lattice). ``with_cell``: ``{probability, rank}`` of the space
    group among all 230 given the formula and the cell together (``predict_cell(...,
    formula=..., setting="standard")``, the cell being a standard one; R cells on rhombohedral
    axes with ``setting="any"``), for an indexing the most telling of the three. ``lattice``: for each free parameter of the lattice
    (hR: the rhombohedral a and α), ``{given, predicted, uncertainty, z}``, predicted given the
    space group (``predict_formula(..., spacegroup=N)``), z = (given − predicted) / σ (NaN for a
    model without calibrated σ). Raises ``ValueError`` for a space group outside 1–230, a cell
    that is not one (``predict_cell``'s checks) or whose metric is not the group's lattice.
    """
    from .predict import _models, predict_cell, predict_formula

    bravais = bravais_of_spacegroup(spacegroup)  # checks 1..230
    spacegroup = int(spacegroup)
    params = _check(cell)
    free = _in_lattice(bravais, params)
    comp = as_composition(formula)  # read once: any note on how it was read is said once
    m = _models(str(model_dir) if model_dir else None)
    x = m.features([comp])
    # The same probabilities and orders as predict_formula's ranking, without its lattice
    # parameters for every lattice.
    p_bravais = m.bravais(x, [comp])[0]
    groups, p_group = m.spacegroup(x, bravais)
    p_group = p_group[0]
    by_bravais = [BRAVAIS[k] for k in np.argsort(-p_bravais)]
    by_group = [groups[g] for g in np.argsort(-p_group)]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UserWarning)
        answer = predict_formula(comp, top_k=1, model_dir=model_dir, spacegroup=spacegroup, vegard=vegard)
        with_cell = predict_cell(*params, top_k=230, model_dir=model_dir, formula=comp,
                                 setting=_setting(m, bravais, params))["spacegroups"]
    for message in dict.fromkeys((str(w.message), w.category) for w in caught):
        warnings.warn(message[0], message[1], stacklevel=2)  # each once (both calls warn alike)
    given = answer["candidates"][0]
    out = {
        "formula": formula if isinstance(formula, str) else answer["formula"],
        "spacegroup": spacegroup,
        "bravais": bravais,
        "bravais_probability": float(p_bravais[BRAVAIS.index(bravais)]),
        "bravais_rank": by_bravais.index(bravais) + 1,
        "spacegroup_probability": float(p_group[groups.index(spacegroup)]),
        "spacegroup_rank": by_group.index(spacegroup) + 1,
        "with_cell": next({"probability": s["probability"], "rank": r}
                          for r, s in enumerate(with_cell, 1) if s["number"] == spacegroup),
        "lattice": {},
    }
    for n, value in free.items():
        predicted = given["lattice"][n]
        sigma = predicted["uncertainty"]
        z = (value - predicted["value"]) / sigma if sigma > 0 else math.nan
        out["lattice"][n] = {"given": float(value), "predicted": predicted["value"],
                             "uncertainty": sigma, "z": float(z)}
    zs = [abs(v["z"]) for v in out["lattice"].values() if not math.isnan(v["z"])]
    out["max_abs_z"] = max(zs) if zs else math.nan
    for key in ("end_members", "training_coverage"):
        if key in answer:
            out[key] = answer[key]
    return out


def check_structure(structure, symprec: float = SYMPREC, angle_tolerance: float = ANGLE_TOLERANCE,
                    model_dir: str | Path | None = None) -> dict:
    """``check_cell`` for a periodic structure (ASE ``Atoms``, pymatgen ``Structure``, OVITO data
    or a file ``ase.io.read`` reads): its composition, and its space group and conventional
    standard cell found by spglib (``symprec`` in Å, ``angle_tolerance`` in degrees; the defaults
    are those of the training labels). The answer also has ``"symprec"``."""
    import spglib

    from ..structure import as_structure
    from .elements import SYMBOLS
    from .features import reduced_amounts

    s = as_structure(structure)
    if len(s.numbers) == 0:
        raise ValueError("the structure has no atoms")
    if not np.all(s.pbc):
        raise ValueError("check_structure needs a crystal: periodic along all three cell vectors")
    cell = (s.cell, np.linalg.solve(s.cell.T, s.positions.T).T % 1.0, s.numbers)
    ds = spglib.get_symmetry_dataset(cell, symprec=symprec, angle_tolerance=angle_tolerance)
    if ds is None:
        raise ValueError(f"spglib found no symmetry for this structure at symprec {symprec} Å "
                         "(overlapping atoms?)")
    counts: dict[str, float] = {}
    for z in s.numbers:
        counts[SYMBOLS[int(z) - 1]] = counts.get(SYMBOLS[int(z) - 1], 0.0) + 1.0
    # the reduced formula: Na4Cl4 of a conventional cell is NaCl
    reduced = dict(zip(counts, reduced_amounts(list(counts.values())).tolist()))
    out = check_cell(reduced, int(ds.number), cell_parameters(ds.std_lattice), model_dir=model_dir)
    out["symprec"] = float(symprec)
    return out
