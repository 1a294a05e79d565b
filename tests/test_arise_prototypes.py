"""ARISE prototypes, training supercells and random defects.

Data: shared/data/arise (Tutorial_ARISE, Apache-2.0). Oracles: ASE (``Atoms.repeat``, file
reading), the thesis counts (108 classes, 396 pristine training structures).
"""

from __future__ import annotations

import numpy as np
import pytest

from cryspext import Structure
from cryspext.arise.defects import displace_atoms, make_defective, remove_atoms
from cryspext.arise.prototypes import (
    isotropic_supercells,
    load_class_names,
    load_prototypes,
    supercell,
    training_structures,
)


@pytest.fixture(scope="module")
def prototypes(shared_data):
    return load_prototypes(shared_data)


def test_classes_in_output_order(shared_data, prototypes):
    names = load_class_names(shared_data)
    assert len(names) == 108 == len(set(names))
    assert names == sorted(names)  # ARISE's output order is Python's sorted()
    assert [p.name for p in prototypes] == names
    groups = {}
    for p in prototypes:
        groups[p.group] = groups.get(p.group, 0) + 1
    # Thesis Tables 4.2-4.4: 27 elemental, 11 binary, 6 ternary, 6 quaternary, 46 2D, 12 nanotubes.
    assert groups == {"Elemental_solids": 27, "Binaries": 11, "Ternaries": 6, "Quaternaries": 6, "2D_materials": 46, "Nanotubes": 12}


def test_training_set_has_396_structures(prototypes):
    tagged = [t for p in prototypes for t in training_structures(p)]
    assert len(tagged) == 396  # 96 x (periodic + 3 finite) + 12 nanotubes
    for p in prototypes:
        tags = [t for t, _ in training_structures(p)]
        if p.kind == "nanotube":
            assert tags == ["cluster0"] and not p.structure.pbc.any()
        else:
            assert tags == ["periodic", "cluster0", "cluster1", "cluster2"]


@pytest.mark.parametrize("name", ["fcc_Cu_A_cF4_225_a", "RockSalt_NaCl", "MoS2", "PbA2I4", "Cu2ZnSnS4"])
def test_supercells_match_ase_repeat(prototypes, name):
    p = next(q for q in prototypes if q.name == name)
    atoms = p.structure.to_ase()
    cells = isotropic_supercells(p)
    assert len(cells) == 3
    n_atoms = [len(s) for s in cells]
    assert n_atoms[0] >= 100
    flat = p.kind == "2d"
    n0 = round((n_atoms[0] / len(p.structure)) ** (1 / (2 if flat else 3)))
    if n0 > 1:  # the smallest is the first with >= 100 atoms
        assert len(p.structure) * (n0 - 1) ** (2 if flat else 3) < 100
    for k, s in enumerate(cells):
        n = n0 + k
        reps = (n, n, 1) if flat else (n, n, n)
        ref = atoms.repeat(reps)
        assert not s.pbc.any()
        np.testing.assert_array_equal(np.sort(s.numbers), np.sort(ref.numbers))
        # Same point set (order may differ).
        a, b = np.round(s.positions, 6), np.round(ref.positions, 6)
        np.testing.assert_allclose(a[np.lexsort(a.T)], b[np.lexsort(b.T)], atol=1e-5)
        if flat:  # in-plane only: the slab keeps its thickness
            assert np.ptp(s.positions[:, 2]) == pytest.approx(np.ptp(p.structure.positions[:, 2]), abs=1e-9)
    periodic = isotropic_supercells(p, periodic=True)
    assert all(s.pbc.all() for s in periodic)


def test_supercell_rejects_bad_reps():
    s = Structure(np.zeros((1, 3)), np.eye(3), True, [29])
    with pytest.raises(ValueError):
        supercell(s, (0, 1, 1), periodic=True)


def _cubic(n=20, a=2.5):
    g = np.stack(np.meshgrid(*[np.arange(n)] * 3, indexing="ij"), -1).reshape(-1, 3) * a
    return Structure(g, np.eye(3) * n * a, True, np.full(len(g), 26))


def test_displacements_have_requested_spread():
    s = _cubic()
    d = displace_atoms(s, 0.07, 2.5, seed=0, distribution="gaussian")
    step = d.positions - s.positions
    assert abs(step.std() / (0.07 * 2.5) - 1) < 0.03
    assert abs(step.mean()) < 0.01
    np.testing.assert_array_equal(d.numbers, s.numbers)
    u = displace_atoms(s, 0.07, 2.5, seed=0).positions - s.positions  # uniform in [-δ d, δ d]
    assert np.abs(u).max() <= 0.07 * 2.5 and np.abs(u).max() > 0.99 * 0.07 * 2.5
    assert abs(u.std() / (0.07 * 2.5 / np.sqrt(3)) - 1) < 0.03
    with pytest.raises(ValueError):
        displace_atoms(s, 0.07, 2.5, distribution="cauchy")


def test_missing_atoms_fraction_and_reproducibility():
    s = _cubic(10)
    r = remove_atoms(s, 0.25, seed=1)
    assert len(r) == 750
    assert len(remove_atoms(Structure(np.zeros((3, 3)), np.zeros((3, 3)), False, [6, 6, 6]), 0.01, seed=0)) == 2
    a = make_defective(s, delta=0.02, eta=0.1, d_nn=2.5, seed=5)
    b = make_defective(s, delta=0.02, eta=0.1, d_nn=2.5, seed=5)
    np.testing.assert_array_equal(a.positions, b.positions)
    assert len(a) == 900


@pytest.mark.parametrize("kwargs", [dict(delta=-0.1, d_nn=1.0), dict(delta=0.1, d_nn=0.0), dict(eta=1.0), dict(delta=0.1)])
def test_bad_defect_parameters(kwargs):
    with pytest.raises(ValueError):
        make_defective(_cubic(3), **kwargs)
