"""End members of a fractional formula, for Vegard's-law lattice parameters.

A formula with fractional amounts (Ba0.5Sr0.5TiO3, LiNi0.8Co0.15Al0.05O2, Fe0.95O) is a solid
solution, a doped or a non-stoichiometric compound: a disordered crystal whose small cell
holds the mixed sites. The lattice regressors learned ordered Materials Project cells only;
for such a formula they give about the cell of an ordered compound of the same mole fractions,
several formula units large (Ba0.5Sr0.5TiO3 in Pm-3m: a = 4.92 Å, a cell of about twice
the measured volume, a = 3.95 Å). Vegard's law instead takes the lattice parameters of a
solid solution as the composition-weighted mean of those of its end members
(0.5 · a(BaTiO3) + 0.5 · a(SrTiO3)); ``predict.predict_formula`` does that, with every end
member's parameters predicted in the same Bravais lattice and space groups as the formula's.

Which elements share a site is not written in a formula; ``end_members`` guesses it:

* the elements with fractional amounts are sorted by electronegativity (elements that
  substitute for each other are chemically alike: Ba/Sr cations, N/O anions), the anion-like
  ``NON_METALS`` after all others;
* they are cut into runs of neighbours, each run one mixed site whose total amount is a whole
  number where possible (Ba0.5 + Sr0.5 = 1); no run holds both a non-metal and another
  element (Si/N in a sialon); the cut minimises Σ |total − whole| over the runs, plus
  ``GROUPING_COST`` per element beyond the first in a run, so a near-whole amount stays alone
  (Ti3.996Al8.004O20: Ti4 and Al8, not a Ti/Al site);
* each run's total is rounded to a whole number, at least 1 (vacancies and interstitials are
  not modelled: Fe0.95O → FeO, Li0.5CoO2 → LiCoO2), and one end member per choice of one
  element per run takes that whole amount; its weight is the product of the chosen elements'
  shares of their runs.
"""

from __future__ import annotations

import numpy as np

__all__ = ["GROUPING_COST", "MAX_END_MEMBERS", "NON_METALS", "end_members", "is_fractional"]

# Elements that sit on anion sites (or are noble gases); they share a site only among
# themselves (N/O, As/P, Se/Te), never with a metal or metalloid.
NON_METALS = frozenset("H He C N O F Ne P S Cl Ar As Se Br Kr Te I Xe Rn".split())

# Cost of each element beyond the first in a mixed site, in units of |total − whole number|.
GROUPING_COST = 0.05
# At most this many end members (the heaviest; their weights renormalised to 1).
MAX_END_MEMBERS = 16
# Amounts within this of a whole number are whole (as ``features.reduced_amounts``).
_WHOLE = 1e-6


def is_fractional(composition: dict[str, float]) -> bool:
    """Whether any amount of ``composition`` is not a whole number."""
    return any(abs(n - round(n)) > _WHOLE for n in composition.values())


def _whole(total: float) -> int:
    return max(1, int(round(total)))


def _runs(amounts: list[float], kinds: list[bool]) -> list[tuple[int, int]]:
    """Cut ``amounts`` (in site order) into runs [i, j) with the least cost (module
    docstring), by dynamic programming over the run ends; ties keep runs short. A run holds
    elements of one kind only (``kinds``: non-metal or not)."""
    n = len(amounts)
    best = [0.0] + [np.inf] * n
    cut = [0] * (n + 1)
    for j in range(1, n + 1):
        for i in range(j - 1, -1, -1):  # the shortest run first wins ties
            if kinds[i] != kinds[j - 1]:
                break
            total = sum(amounts[i:j])
            cost = best[i] + abs(total - _whole(total)) + GROUPING_COST * (j - i - 1)
            if cost < best[j] - 1e-12:
                best[j], cut[j] = cost, i
    runs, j = [], n
    while j > 0:
        runs.append((cut[j], j))
        j = cut[j]
    return runs[::-1]


def end_members(composition: dict[str, float]) -> list[tuple[dict[str, float], float]]:
    """[(end-member composition, weight)] of a fractional ``composition`` ({element: amount}),
    the weights summing to 1, heaviest first; [] for a formula of whole numbers (its own end
    member). Every end member has whole-number amounts. Element order follows
    ``composition``."""
    from .elements import element_table
    from .features import _IDX, _atomic_numbers

    if not is_fractional(composition):
        return []
    elements = list(composition)
    fractional = [el for el in elements if abs(composition[el] - round(composition[el])) > _WHOLE]
    z = _atomic_numbers({el: 1 for el in fractional})
    chi = element_table()[0][z - 1, _IDX["electronegativity"]]
    non_metal = np.array([el in NON_METALS for el in fractional])
    site_order = [fractional[i] for i in np.lexsort((z, chi, non_metal))]
    amounts = [float(composition[el]) for el in site_order]
    kinds = [el in NON_METALS for el in site_order]
    sites = [(site_order[i:j], amounts[i:j]) for i, j in _runs(amounts, kinds)]
    # One site at a time, keeping the heaviest partial choices: weights are products of
    # positive shares, so this beam keeps exactly the MAX_END_MEMBERS heaviest end members
    # without listing all of them (a product over many sites).
    beam = [(1.0, {})]
    for els, amts in sites:
        total = sum(amts)
        beam = [(weight * amount / total, {**chosen, **{e: 0.0 for e in els}, el: float(_whole(total))})
                for weight, chosen in beam for el, amount in zip(els, amts)]
        beam = sorted(beam, key=lambda m: -m[0])[:MAX_END_MEMBERS]
    members = []
    for weight, chosen in beam:
        member = {el: chosen.get(el, float(round(composition[el]))) for el in elements}
        members.append(({el: n for el, n in member.items() if n > 0}, weight))
    total = sum(w for _, w in members)
    return [(c, w / total) for c, w in members]
