"""Chemical formulas to {element: amount}, without pymatgen.

Accepted: element symbols with integer or decimal amounts (``"Al2.6652O4"``, ``"Li0.5CoO2"``),
nested groups in ``()``, ``[]`` or ``{}`` with a multiplier (``"Ca3(Al(SiO4))2"``), hydrates and
adducts joined by ``·``, ``•``, ``⋅`` or ``*`` with an optional leading count
(``"CuSO4·5H2O"``, ``"CaSO4*0.5H2O"``). A ``.`` is always a decimal point, never a hydrate dot;
where it looks like one (``"CuSO4.5H2O"``, read as CuSO4.5 H2 O) a ``FormulaReadingWarning`` (a
``UserWarning``) says so.
Refused with a ``ValueError`` that says why: charges (``"SO4^2-"``, ``"Fe3+"``), variable
stoichiometry (``"La2-xSrxCuO4"``), unknown symbols, zero or negative amounts, unbalanced
brackets. A pymatgen ``Composition`` (or a ``{symbol: amount}`` mapping) is taken as is.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Mapping

from .elements import SYMBOLS

__all__ = ["parse_formula", "as_composition", "FormulaReadingWarning"]


class FormulaReadingWarning(UserWarning):
    """A formula was read one way where its writer may have meant another."""


_HYDRATE_DOTS = "·•⋅*∙"
_OPEN = {"(": ")", "[": "]", "{": "}"}
_NUMBER = re.compile(r"(\d+(?:\.\d*)?|\.\d+)")
_SYMBOL = re.compile(r"[A-Z][a-z]{0,2}")
_KNOWN = set(SYMBOLS)
# A decimal point followed by a count of water or ammonia: a hydrate written with '.' ?
_DOT_HYDRATE = re.compile(r"([A-Za-z)\]}][1-9]\d*)\.(\d+)((?:H2O|D2O|NH3)(?![a-z\d]))")


def _amount(text: str, pos: int) -> tuple[float, int]:
    m = _NUMBER.match(text, pos)
    if not m:
        return 1.0, pos
    return float(m.group(1)), m.end()


def _parse_group(text: str, pos: int, closing: str | None, out_formula: str) -> tuple[dict, int]:
    counts: dict[str, float] = {}
    while pos < len(text):
        ch = text[pos]
        if ch in _OPEN:
            inner, pos = _parse_group(text, pos + 1, _OPEN[ch], out_formula)
            mult, pos = _amount(text, pos)
            for el, n in inner.items():
                counts[el] = counts.get(el, 0.0) + n * mult
        elif closing is not None and ch == closing:
            if not counts:
                raise ValueError(f"empty brackets in formula {out_formula!r}")
            return counts, pos + 1
        elif ch in ")]}":
            raise ValueError(f"unbalanced {ch!r} at position {pos} in formula {out_formula!r}")
        elif ch.isupper():
            m = _SYMBOL.match(text, pos)
            sym = m.group(0)
            # Longest known symbol first ("Co" before "C"), but "CO" is C + O.
            while sym not in _KNOWN and len(sym) > 1 and sym[:-1] and sym[:-1][-1].islower():
                sym = sym[:-1]
            if sym not in _KNOWN:
                raise ValueError(f"unknown element {sym!r} in formula {out_formula!r}")
            pos += len(sym)
            n, pos = _amount(text, pos)
            counts[sym] = counts.get(sym, 0.0) + n
        elif ch.islower():
            raise ValueError(
                f"unexpected {ch!r} at position {pos} in formula {out_formula!r}: element symbols "
                "start with a capital letter; variable stoichiometry (x, y, δ) is not supported, "
                "give numbers"
            )
        elif ch.isdigit() or ch == ".":
            raise ValueError(
                f"number without an element at position {pos} in formula {out_formula!r}"
            )
        else:
            raise ValueError(f"unexpected character {ch!r} in formula {out_formula!r}")
    if closing is not None:
        raise ValueError(f"missing {closing!r} in formula {out_formula!r}")
    return counts, pos


def parse_formula(formula: str) -> dict[str, float]:
    """Amounts of each element in ``formula`` (order of first appearance; not normalised)."""
    if not isinstance(formula, str):
        raise TypeError(f"formula must be a str, got {type(formula).__name__}")
    if re.search(r"[\d.]\s+[\d.]", formula):
        raise ValueError(f"space between two numbers in formula {formula!r} is ambiguous")
    text = "".join(formula.split())
    if not text:
        raise ValueError("empty formula")
    if "^" in text or re.search(r"\d*[+\-]$", text) or re.search(r"[+\-]\d*$", text):
        raise ValueError(
            f"charged formula {formula!r}: cryspext predicts neutral solids; give the neutral "
            "compound (e.g. 'Na2SO4' rather than 'SO4^2-')"
        )
    if "-" in text or "+" in text:
        raise ValueError(
            f"'-'/'+' inside formula {formula!r}: variable stoichiometry (e.g. 'La2-xSrxCuO4') "
            "and charges are not supported"
        )
    hydrate = _DOT_HYDRATE.search(text)
    if hydrate:
        before, digits, molecule = hydrate.groups()
        dotted = text[: hydrate.start()] + before + "·" + digits + text[hydrate.start(3):]
        warnings.warn(f"'.' in formula {formula!r} is a decimal point ({before}.{digits}, then "
                      f"{molecule}), not a hydrate dot; for a hydrate write {dotted!r}",
                      FormulaReadingWarning, stacklevel=2)
    total: dict[str, float] = {}
    for part in re.split("[" + re.escape(_HYDRATE_DOTS) + "]", text):
        if not part:
            raise ValueError(f"empty part around a hydrate dot in formula {formula!r}")
        mult, start = _amount(part, 0)
        counts, _ = _parse_group(part, start, None, formula)
        if not counts:
            raise ValueError(f"no elements in {part!r} of formula {formula!r}")
        for el, n in counts.items():
            total[el] = total.get(el, 0.0) + n * mult
    bad = [el for el, n in total.items() if not n > 0]
    if bad:
        raise ValueError(f"element {bad[0]} has a zero amount in formula {formula!r}")
    return total


def as_composition(obj) -> dict[str, float]:
    """{element: amount} from a formula string, a pymatgen ``Composition`` or a mapping."""
    if isinstance(obj, str):
        return parse_formula(obj)
    if hasattr(obj, "get_el_amt_dict"):  # pymatgen Composition (oxidation states dropped)
        items = obj.get_el_amt_dict().items()
    elif isinstance(obj, Mapping):
        items = ((str(k), v) for k, v in obj.items())
    else:
        raise TypeError(
            "expected a formula str, a pymatgen Composition or a {element: amount} mapping, "
            f"got {type(obj).__name__}"
        )
    out: dict[str, float] = {}
    for el, n in items:
        if el not in _KNOWN:
            raise ValueError(f"unknown element {el!r}")
        try:
            n = float(n)
        except (TypeError, ValueError):
            raise TypeError(f"amount of {el} must be a number, got {n!r}") from None
        if not n > 0 or n != n or n == float("inf"):
            raise ValueError(f"amount of {el} must be a positive finite number, got {n}")
        out[el] = out.get(el, 0.0) + n
    if not out:
        raise ValueError("empty composition")
    return out
