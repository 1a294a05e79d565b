"""ARISE's nearest-neighbour distance (histogram mode), checked against numpy and ASE."""

from __future__ import annotations

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk
from ase.neighborlist import neighbor_list

from cryspext import _core
from cryspext.descriptors import nearest_neighbor_distance


def arise_rule(distances):
    """ai4materials get_nn_distance, quantile_nn branch, written with numpy as ARISE does."""
    hist, edges = np.histogram(distances, bins=100)
    scaled = [float(h) / edges[k] ** 2 for k, h in enumerate(hist)]
    k = int(np.argmax(scaled))
    return (edges[k] + edges[k + 1]) / 2.0


def test_histogram_matches_numpy_bit_for_bit():
    rng = np.random.default_rng(0)
    for trial in range(300):
        n = int(rng.integers(1, 60))
        base = rng.uniform(0.8, 4.0)
        kind = trial % 3
        if kind == 0:  # a few shells: ties on bin edges are likely
            d = base * rng.choice([1.0, 1.05, 1.2, 1.41421356], n)
        elif kind == 1:
            d = base + rng.normal(0, 0.05, n)
        else:  # exactly equal values: numpy's [x - 0.5, x + 0.5] range
            d = np.full(n, base)
        assert _core.histogram_distance(d) == arise_rule(d)


def test_rounding_spread_does_not_raise():
    x = 2.5527136788005009
    d = np.array([x, np.nextafter(x, 3), np.nextafter(np.nextafter(x, 3), 3)])
    with pytest.raises(ValueError, match="Too many bins"):
        arise_rule(d)  # what ARISE hits with current numpy
    assert _core.histogram_distance(d) == x  # cryspext: min (older numpy returned x to rounding)
    # "robust" treats it as exactly equal values, i.e. numpy's rule for x
    assert _core.histogram_distance(d, degenerate=1) == arise_rule(np.full(3, x))


def _ase_nearest(atoms, center=None, neighbor=None):
    i, j, dist = neighbor_list("ijd", atoms, 8.0)
    out = []
    for a in range(len(atoms)):
        if center is not None and atoms.numbers[a] != center:
            continue
        mask = (i == a) & ((atoms.numbers[j] == neighbor) if neighbor is not None else True)
        if mask.any():
            out.append(dist[mask].min())
    return np.array(out)


def test_species_pairs_match_ase_distances():
    atoms = bulk("NaCl", "rocksalt", a=5.64, cubic=True) * (2, 2, 2)
    numbers = atoms.get_atomic_numbers()
    numbers[[0, 5, 9]] = 19
    atoms.set_atomic_numbers(numbers)
    atoms.rattle(0.04, seed=3)
    for center, neighbor in [(11, 17), (17, 11), (17, 17), (19, 11), (None, None), ("K", "Cl")]:
        z = {"K": 19, "Cl": 17}
        c = z.get(center, center)
        nb = z.get(neighbor, neighbor)
        expected = arise_rule(_ase_nearest(atoms, c, nb))
        assert nearest_neighbor_distance(atoms, center, neighbor) == pytest.approx(expected, rel=1e-12)


def test_perfect_crystals_follow_numpy_equal_rule():
    fcc = bulk("Cu", "fcc", a=3.6)
    x = 3.6 / np.sqrt(2)
    d = nearest_neighbor_distance(fcc)
    assert abs(abs(d - x) - 0.005) < 1e-9  # ARISE: centre of the 0.01 Å bin holding x
    assert nearest_neighbor_distance(fcc * (2, 2, 2), degenerate="robust") == pytest.approx(
        nearest_neighbor_distance(fcc, degenerate="robust"), abs=1e-12
    )


def test_non_periodic_and_missing_neighbours():
    dimer = Atoms("NaCl", positions=[[0, 0, 0], [2.4, 0, 0]])
    assert nearest_neighbor_distance(dimer, "Na", "Cl") == pytest.approx(2.4 + 0.005, abs=1e-3)
    with pytest.raises(ValueError, match="no nearest neighbour"):
        nearest_neighbor_distance(dimer, "Na", "Na")  # a single Na in a cluster has no Na neighbour
    far = Atoms("Cu2", positions=[[0, 0, 0], [30.0, 0, 0]])
    with pytest.raises(ValueError, match="no nearest neighbour"):
        nearest_neighbor_distance(far)
    assert nearest_neighbor_distance(far, max_radius=40.0) == pytest.approx(30.0, abs=0.01)


def test_bad_input():
    atoms = bulk("Cu", "fcc", a=3.6)
    with pytest.raises(ValueError, match="no atom"):
        nearest_neighbor_distance(atoms, "Fe")
    with pytest.raises(ValueError, match="unknown element"):
        nearest_neighbor_distance(atoms, "Xx")
    with pytest.raises(TypeError):
        nearest_neighbor_distance(atoms, 2.5)
    with pytest.raises(ValueError, match="bins"):
        nearest_neighbor_distance(atoms, bins=0)
    with pytest.raises(ValueError, match="degenerate"):
        nearest_neighbor_distance(atoms, degenerate="mean")
    with pytest.raises(ValueError, match="max_radius"):
        nearest_neighbor_distance(atoms, max_radius=-1)
