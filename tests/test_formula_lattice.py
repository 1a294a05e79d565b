"""Bravais classes and lattice-parameter conventions, checked against spglib and pymatgen."""

from __future__ import annotations

import numpy as np
import pytest

from cryspext.formula.lattice import (
    BRAVAIS, FREE_PARAMETERS, bravais_of_spacegroup, cell_parameters, full_parameters,
    hexagonal_to_rhombohedral, rhombohedral_to_hexagonal, spacegroups_of_bravais)

spglib = pytest.importorskip("spglib")

FAMILY = {"triclinic": "a", "monoclinic": "m", "orthorhombic": "o", "tetragonal": "t",
          "trigonal": "h", "hexagonal": "h", "cubic": "c"}


def _family(number):
    if number <= 2:
        return "a"
    if number <= 15:
        return "m"
    if number <= 74:
        return "o"
    if number <= 142:
        return "t"
    if number <= 194:
        return "h"
    return "c"


def test_bravais_matches_spglib_symbols():
    seen = set()
    for hall in range(1, 531):
        t = spglib.get_spacegroup_type(hall)
        if t.number in seen:
            continue
        seen.add(t.number)
        letter = t.international_short[0]
        b = bravais_of_spacegroup(t.number)
        assert b[0] == _family(t.number)
        # CRYSPNet: A-centred orthorhombic groups are base-centred "C".
        expected = {"A": "C", "B": "C"}.get(letter, letter)
        if b == "hR":
            assert letter == "R"
        elif b[0] == "h":
            assert letter == "P"
        else:
            assert b[1] == expected, (t.number, t.international_short)
    assert len(seen) == 230
    assert sorted(n for b in BRAVAIS for n in spacegroups_of_bravais(b)) == list(range(1, 231))


def test_bad_spacegroup_numbers():
    with pytest.raises(ValueError):
        bravais_of_spacegroup(0)
    with pytest.raises(ValueError):
        bravais_of_spacegroup(231)
    with pytest.raises(TypeError):
        bravais_of_spacegroup(12.0)
    with pytest.raises(ValueError):
        spacegroups_of_bravais("xX")


@pytest.mark.parametrize("a, c", [(4.9, 13.6), (3.0, 20.0), (5.5, 6.0)])
def test_hexagonal_to_rhombohedral_matches_spglib_primitive(a, c):
    # A rhombohedral lattice in hexagonal axes (obverse centring), primitive cell by spglib.
    from pymatgen.core import Lattice

    lat = Lattice.hexagonal(a, c).matrix
    frac = np.array([[0, 0, 0], [2 / 3, 1 / 3, 1 / 3], [1 / 3, 2 / 3, 2 / 3]])
    prim = spglib.find_primitive((lat, frac, [1, 1, 1]), symprec=1e-5)
    pa = cell_parameters(prim[0])
    a_r, alpha = hexagonal_to_rhombohedral(a, c)
    np.testing.assert_allclose(pa[:3], a_r, rtol=1e-6)
    # spglib may pick the reverse-angle basis (180 - alpha has the same lattice only if 90)
    assert min(abs(pa[3] - alpha), abs(pa[3] - (180 - alpha))) < 1e-4


@pytest.mark.parametrize("a, c", [(4.9, 13.6), (3.0, 20.0), (5.5, 6.0), (2.865, 14.18)])
def test_rhombohedral_to_hexagonal_inverts_it(a, c):
    np.testing.assert_allclose(rhombohedral_to_hexagonal(*hexagonal_to_rhombohedral(a, c)), (a, c), rtol=1e-9)
    # a 60° rhombohedron is the fcc lattice: on hexagonal axes c / a = √6
    a_hex, c_hex = rhombohedral_to_hexagonal(1.0, 60.0)
    assert (a_hex, c_hex) == pytest.approx((1.0, 6 ** 0.5))


def test_full_parameters():
    assert full_parameters("cF", {"a": 4.0}) == dict(a=4, b=4, c=4, alpha=90, beta=90, gamma=90)
    hp = full_parameters("hP", {"a": 3.0, "c": 5.0})
    assert hp["gamma"] == 120 and hp["b"] == 3.0
    mc = full_parameters("mC", {"a": 5.0, "b": 6.0, "c": 7.0, "beta": 100.0})
    assert mc["beta"] == 100 and mc["alpha"] == 90
    for b, names in FREE_PARAMETERS.items():
        full = full_parameters(b, {n: 1.0 + i for i, n in enumerate(names)})
        assert set(full) == {"a", "b", "c", "alpha", "beta", "gamma"}


def test_cell_parameters_against_ase():
    from ase.cell import Cell

    par = [3.1, 4.7, 9.2, 81.0, 97.5, 113.0]
    np.testing.assert_allclose(cell_parameters(Cell.fromcellpar(par)), par, atol=1e-9)
    with pytest.raises(ValueError):
        cell_parameters(np.eye(2))
