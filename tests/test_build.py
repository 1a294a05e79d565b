"""Polycrystal and superalloy builders, checked with ASE and spglib."""

from __future__ import annotations

import numpy as np
import pytest
from ase.neighborlist import neighbor_list as ase_neighbor_list

from cryspext.build import polycrystal, prototype_cell, superalloy


def test_polycrystal_grains_voronoi_and_spacing():
    atoms = polycrystal((40.0, 40.0, 12.0), ("fcc", "bcc", "hcp", "diamond"), seed=2)
    grain = atoms.arrays["grain"]
    assert set(np.unique(grain)) == {0, 1, 2, 3}
    assert atoms.info["grain_prototypes"] == ["fcc", "bcc", "hcp", "diamond"]
    pos = atoms.get_positions()
    assert np.all(pos >= 0) and np.all(pos < [40, 40, 12])
    # Columnar Voronoi (thin along z): every atom is nearest, in the xy plane, to its own centre.
    c = atoms.info["grain_centres"]
    d = np.linalg.norm(pos[:, None, :2] - c[None, :, :2], axis=-1)
    np.testing.assert_array_equal(np.argmin(d, axis=1), grain)
    # No two atoms closer than the default 0.75 d_NN (ASE's neighbour list as the oracle).
    i, j = ase_neighbor_list("ij", atoms, 0.75 * 2.5 - 1e-6)
    assert i.size == 0
    # Inside a grain the nearest-neighbour distance is the requested 2.5 Å.
    i, j, dist = ase_neighbor_list("ijd", atoms, 2.6)
    inner = (grain[i] == 0) & (grain[j] == 0)
    assert np.min(dist[inner]) == pytest.approx(2.5, abs=1e-6)


def test_polycrystal_grain_is_the_rotated_prototype():
    spglib = pytest.importorskip("spglib")
    # One grain filling a periodic-free box: cut a cube from its centre and check the lattice.
    atoms = polycrystal((30.0, 30.0, 30.0), ("bcc",), seed=5, columnar=False)
    i, j, dist = ase_neighbor_list("ijd", atoms, 2.6)
    coordination = np.bincount(i, minlength=len(atoms))
    centre = np.linalg.norm(atoms.get_positions() - 15.0, axis=1) < 8
    assert np.all(coordination[centre] == 8)  # bcc: 8 nearest neighbours at d_NN
    cell = prototype_cell("hcp", "Mg", 3.2)
    ds = spglib.get_symmetry_dataset((cell.cell[:], cell.get_scaled_positions(), cell.numbers))
    assert ds.number == 194


def test_polycrystal_reproducible_and_periodic():
    a = polycrystal((30.0, 30.0, 30.0), ("fcc", "bcc"), seed=7)
    b = polycrystal((30.0, 30.0, 30.0), ("fcc", "bcc"), seed=7)
    np.testing.assert_array_equal(a.get_positions(), b.get_positions())
    p = polycrystal((30.0, 30.0, 30.0), ("fcc", "bcc"), seed=7, periodic=True)
    assert p.pbc.all()
    i = ase_neighbor_list("i", p, 0.75 * 2.5 - 1e-6)
    assert i.size == 0  # thinned across periodic faces too


def test_superalloy_order_and_composition():
    atoms = superalloy(n_cells=8, a=3.57, precipitate=0.5, al_fraction=0.25, seed=1)
    assert len(atoms) == 4 * 8**3
    inside = atoms.arrays["precipitate"].astype(bool)
    z = atoms.numbers
    assert np.sum(z[inside] == 13) * 3 == np.sum(z[inside] == 28)  # Ni3Al
    # L12: every Al in the precipitate has 12 Ni nearest neighbours (ASE oracle).
    i, j = ase_neighbor_list("ij", atoms, 3.57 / np.sqrt(2) + 0.1)
    lo, hi = atoms.info["precipitate_bounds"]
    core = inside & np.all((atoms.positions > lo + 3) & (atoms.positions < hi - 3), axis=1) & (z == 13)
    for a in np.flatnonzero(core):
        assert np.all(z[j[i == a]] == 28) and np.sum(i == a) == 12
    al_outside = np.mean(z[~inside] == 13)
    assert 0.15 < al_outside < 0.35


@pytest.mark.parametrize(
    "call",
    [
        lambda: polycrystal((10.0, -1.0, 10.0)),
        lambda: polycrystal((10.0, 10.0, 10.0), ()),
        lambda: polycrystal((10.0, 10.0, 10.0), ("quasicrystal",)),
        lambda: polycrystal((10.0, 10.0, 10.0), ("fcc", "bcc"), centres=np.zeros((3, 3))),
        lambda: superalloy(n_cells=0),
        lambda: superalloy(precipitate=1.5),
        lambda: prototype_cell("fcc", d_nn=-1.0),
    ],
)
def test_bad_input(call):
    with pytest.raises(ValueError):
        call()


def test_bad_grain_type():
    with pytest.raises(TypeError):
        polycrystal((10.0, 10.0, 10.0), (42,))
