"""Neighbour lists against ASE's reference implementation (pair sets must be equal)."""

from __future__ import annotations

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk, molecule
from ase.neighborlist import neighbor_list as ase_neighbor_list
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import cryspext
from helpers import pair_set, random_triclinic_cell


def assert_same_as_ase(atoms: Atoms, cutoff: float):
    ours = cryspext.neighbor_list(atoms, cutoff, vectors=True)
    i, j, S, d, D = ase_neighbor_list("ijSdD", atoms, cutoff)
    # Pairs closer to the cutoff than rounding can resolve may legitimately differ.
    near = np.abs(d - cutoff) < 1e-9
    assert not near.any(), "test structure has a pair at the cutoff; pick another"
    assert pair_set(ours.i, ours.j, ours.shifts) == pair_set(i, j, S)
    # Same distances and vectors, pair by pair.
    key = lambda a, b, s: np.lexsort((s[:, 2], s[:, 1], s[:, 0], b, a))  # noqa: E731
    o = key(ours.i, ours.j, ours.shifts)
    r = key(i, j, S)
    np.testing.assert_allclose(ours.distances[o], d[r], rtol=0, atol=1e-9)
    np.testing.assert_allclose(ours.vectors[o], D[r], rtol=0, atol=1e-9)
    # Distances agree with the returned shifts.
    pos, cell = atoms.get_positions(), np.asarray(atoms.get_cell())
    vec = pos[ours.j] + ours.shifts @ cell - pos[ours.i]
    np.testing.assert_allclose(np.linalg.norm(vec, axis=1), ours.distances, atol=1e-9)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**32 - 1),
    n_atoms=st.integers(1, 12),
    pbc=st.tuples(st.booleans(), st.booleans(), st.booleans()),
    cutoff=st.floats(0.5, 7.0),
    scale=st.floats(2.0, 6.0),
)
def test_random_triclinic_matches_ase(seed, n_atoms, pbc, cutoff, scale):
    rng = np.random.default_rng(seed)
    cell = random_triclinic_cell(rng, scale)
    # Fractional coordinates outside [0, 1) too: negative coordinates and far images.
    frac = rng.uniform(-1.5, 2.5, size=(n_atoms, 3))
    atoms = Atoms("C" * n_atoms, scaled_positions=frac, cell=cell, pbc=pbc)
    assert_same_as_ase(atoms, cutoff)


def test_two_atom_cell_with_large_cutoff():
    atoms = bulk("NaCl", "rocksalt", a=2.8)  # 2 atoms, cell heights ~1.6 Å
    assert_same_as_ase(atoms, 10.0)
    # Each atom sees its own periodic images: pairs (i, i, S != 0) must be present.
    nl = cryspext.neighbor_list(atoms, 10.0)
    assert np.any((nl.i == nl.j) & np.any(nl.shifts != 0, axis=1))


def test_atoms_exactly_on_cell_faces():
    cell = np.diag([3.0, 3.5, 4.0])
    frac = np.array([[0, 0, 0], [1.0, 0.5, 0.5], [0.5, 1.0, 0.0], [0.25, 0.75, 1.0], [-1.0, 0.0, 2.0]])
    atoms = Atoms("Cu5", scaled_positions=frac, cell=cell, pbc=True)
    # scaled_positions wraps; set positions explicitly to keep the faces.
    atoms.set_positions(frac @ cell)
    assert_same_as_ase(atoms, 3.3)


@pytest.mark.parametrize("pbc", [(True, True, False), (True, False, False), (False, False, False)])
def test_mixed_periodicity_with_zero_cell_vectors(pbc):
    rng = np.random.default_rng(1)
    cell = np.diag([5.0, 4.0, 0.0]) if pbc[1] else np.diag([5.0, 0.0, 0.0])
    if not any(pbc):
        cell = np.zeros((3, 3))
    atoms = Atoms("Ar20", positions=rng.uniform(-3, 8, size=(20, 3)), cell=cell, pbc=pbc)
    assert_same_as_ase(atoms, 4.1)


def test_nearly_flat_open_direction():
    # A planar cluster whose z spread is rounding noise (a real case: flat 2D prototypes).
    rng = np.random.default_rng(5)
    pos = np.c_[rng.uniform(0, 10, (40, 2)), rng.uniform(0, 1e-14, 40)]
    assert_same_as_ase(Atoms("C40", positions=pos), 2.0)


def test_molecule_non_periodic():
    atoms = molecule("C6H6")
    assert_same_as_ase(atoms, 2.5)


def test_fcc_neighbour_counts():
    atoms = bulk("Cu", "fcc", a=3.6, cubic=True).repeat((3, 3, 3))
    nl = cryspext.neighbor_list(atoms, 3.0)
    assert np.all(np.bincount(nl.i, minlength=len(atoms)) == 12)
    np.testing.assert_allclose(nl.distances, 3.6 / np.sqrt(2), atol=1e-12)


def test_half_list_is_half_of_full():
    rng = np.random.default_rng(3)
    atoms = Atoms("C8", positions=rng.uniform(0, 4, (8, 3)), cell=random_triclinic_cell(rng, 3.0), pbc=True)
    full = cryspext.neighbor_list(atoms, 5.0)
    half = cryspext.neighbor_list(atoms, 5.0, half=True)
    assert 2 * len(half) == len(full)
    both = pair_set(half.i, half.j, half.shifts) | pair_set(half.j, half.i, -half.shifts)
    assert both == pair_set(full.i, full.j, full.shifts)


def test_output_sorted_by_i_and_dtypes():
    atoms = bulk("Fe", "bcc", a=2.87).repeat((4, 4, 4))
    atoms.rattle(0.05, seed=2)
    nl = cryspext.neighbor_list(atoms, 4.0)
    assert np.all(np.diff(nl.i) >= 0)
    assert nl.i.dtype == np.int32 and nl.shifts.dtype == np.int32 and nl.distances.dtype == np.float64


@pytest.mark.parametrize("cutoff", [-1.0, float("nan"), float("inf")])
def test_bad_cutoff(cutoff):
    with pytest.raises(ValueError, match="cutoff"):
        cryspext.neighbor_list(bulk("Cu"), cutoff)


def test_zero_cutoff_gives_no_pairs():
    assert len(cryspext.neighbor_list(bulk("Cu"), 0.0)) == 0


def test_absurd_cutoff_refused():
    with pytest.raises(ValueError, match="cutoff"):
        cryspext.neighbor_list(bulk("Cu", "fcc", a=3.6).repeat((2, 2, 2)), 1000.0)
