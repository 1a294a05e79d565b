"""Strided box extraction against a brute-force NumPy reference."""

from __future__ import annotations

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk
from hypothesis import given, settings
from hypothesis import strategies as st

import cryspext


def reference_members(positions, x, y, z, box):
    """Brute force: atoms with |r - c| <= L/2 along every axis, box order (z, y, x)."""
    half = box / 2
    out = []
    for cz in z:
        for cy in y:
            for cx in x:
                c = np.array([cx, cy, cz])
                inside = np.all((positions >= c - half) & (positions <= c + half), axis=1)
                out.append(np.flatnonzero(inside))
    return out


def assert_grid_matches_reference(grid, positions):
    ref = reference_members(positions, grid.x, grid.y, grid.z, grid.box)
    assert grid.n_boxes == len(ref)
    for b, members in enumerate(ref):
        np.testing.assert_array_equal(grid.members(b), members)


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n_atoms=st.integers(1, 300),
    box=st.floats(2.0, 12.0),
    ratio=st.floats(0.1, 1.0),
    extent=st.tuples(st.floats(0.0, 30.0), st.floats(0.0, 30.0), st.floats(0.0, 30.0)),
)
def test_membership_equals_bruteforce(seed, n_atoms, box, ratio, extent):
    rng = np.random.default_rng(seed)
    positions = rng.uniform(-5, 5, size=(n_atoms, 3)) * 0 + rng.uniform(0, 1, size=(n_atoms, 3)) * extent
    positions -= 3.0  # negative coordinates
    atoms = Atoms("Cu" * n_atoms, positions=positions)
    grid = cryspext.strided_boxes(atoms, box, box * ratio)
    assert_grid_matches_reference(grid, positions)


def test_grid_geometry_and_order():
    atoms = bulk("Cu", "fcc", a=3.6, cubic=True).repeat((8, 6, 4))  # 28.8 x 21.6 x 14.4 Å
    grid = cryspext.strided_boxes(atoms, 10.0, 2.0)
    nz, ny, nx = grid.shape
    assert (nx, ny, nz) == (len(grid.x), len(grid.y), len(grid.z))
    assert np.allclose(np.diff(grid.x), 2.0) and np.allclose(np.diff(grid.z), 2.0)
    # Grid centred on the sample.
    pos = atoms.positions
    assert np.isclose(grid.x.mean(), (pos[:, 0].min() + pos[:, 0].max()) / 2)
    centres = grid.centres
    assert centres.shape == (nz, ny, nx, 3)
    assert np.allclose(centres[1, 2, 3], [grid.x[3], grid.y[2], grid.z[1]])
    assert_grid_matches_reference(grid, pos)


def test_slab_direction_gets_one_layer():
    atoms = bulk("Cu", "fcc", a=3.6, cubic=True).repeat((8, 8, 2))  # 7.2 Å thick in z
    grid = cryspext.strided_boxes(atoms, 10.0, 2.0)
    assert grid.shape[0] == 1
    forced = cryspext.strided_boxes(atoms.repeat((1, 1, 3)), 10.0, 2.0, slab_axis=2)
    assert forced.shape[0] == 1
    assert_grid_matches_reference(forced, atoms.repeat((1, 1, 3)).positions)


def test_min_atoms_marks_empty_boxes():
    rng = np.random.default_rng(0)
    pos = np.concatenate([rng.uniform(0, 5, (200, 3)), rng.uniform(20, 25, (5, 3))])
    atoms = Atoms("Cu" * len(pos), positions=pos)
    grid = cryspext.strided_boxes(atoms, 6.0, 3.0, min_atoms=20)
    assert np.all(grid.valid == (grid.counts >= 20))
    assert grid.valid.any() and not grid.valid.all()


def test_periodic_wrapping_matches_image_reference():
    atoms = bulk("Cu", "fcc", a=3.6, cubic=True).repeat((4, 4, 4))  # 14.4 Å cube
    atoms.rattle(0.1, seed=1)
    atoms.wrap()
    grid = cryspext.strided_boxes(atoms, 6.0, 2.0, periodic=True)
    L = 14.4
    assert len(grid.x) == round(L / 2.0)
    cell = atoms.cell.array
    half = 3.0
    images = np.array([[a, b, c] for a in (-1, 0, 1) for b in (-1, 0, 1) for c in (-1, 0, 1)])
    for b in range(0, grid.n_boxes, 7):
        kz, ky, kx = np.unravel_index(b, grid.shape)
        c = np.array([grid.x[kx], grid.y[ky], grid.z[kz]])
        expected = set()
        for shift in images:
            p = atoms.positions + shift @ cell
            for a in np.flatnonzero(np.all(np.abs(p - c) <= half, axis=1)):
                expected.add((int(a), *shift.tolist()))
        s, e = grid.offsets[b], grid.offsets[b + 1]
        got = {(int(a), *sh.tolist()) for a, sh in zip(grid.indices[s:e], grid.shifts[s:e])}
        assert got == expected
    # The wrapped boxes tile the cell: every atom lies in at least one box.
    assert np.array_equal(np.unique(grid.indices), np.arange(len(atoms)))


def test_periodic_wrapping_refuses_triclinic():
    with pytest.raises(ValueError, match="orthorhombic"):
        cryspext.strided_boxes(bulk("Cu", "fcc", a=3.6).repeat((6, 6, 6)), 4.0, 2.0, periodic=True)


@pytest.mark.parametrize(
    "box, stride, match",
    [(4.0, 5.0, "stride"), (-1.0, 1.0, "box"), (4.0, 0.0, "stride"), (float("nan"), 1.0, "box")],
)
def test_bad_box_parameters(box, stride, match):
    with pytest.raises(ValueError, match=match):
        cryspext.strided_boxes(bulk("Cu", cubic=True), box, stride)


def test_nan_position_in_boxes():
    atoms = Atoms("H2", positions=[[0, 0, 0], [0, np.nan, 0]])
    with pytest.raises(ValueError, match="not finite"):
        cryspext.strided_boxes(atoms, 4.0, 2.0)
