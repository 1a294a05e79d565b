"""Structure adapters: ASE, pymatgen, OVITO, files; validation of bad input."""

from __future__ import annotations

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk

import cryspext
from cryspext import Structure, as_structure


def test_from_ase_keeps_everything():
    atoms = bulk("NaCl", "rocksalt", a=5.64).repeat((2, 1, 1))
    atoms.pbc = (True, False, True)
    s = as_structure(atoms)
    np.testing.assert_array_equal(s.positions, atoms.positions)
    np.testing.assert_array_equal(s.cell, atoms.cell.array)
    assert s.pbc.tolist() == [True, False, True]
    assert s.numbers.tolist() == atoms.numbers.tolist()


def test_from_pymatgen_structure_and_molecule():
    pmg = pytest.importorskip("pymatgen.core")
    st = pmg.Structure(pmg.Lattice.cubic(4.0), ["Cs", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    s = as_structure(st)
    assert s.numbers.tolist() == [55, 17] and s.pbc.all()
    np.testing.assert_allclose(s.positions[1], [2, 2, 2])
    mol = pmg.Molecule(["O", "H", "H"], [[0, 0, 0], [0.96, 0, 0], [-0.24, 0.93, 0]])
    m = as_structure(mol)
    assert not m.pbc.any() and len(m) == 3


def test_pymatgen_ase_subclass():
    adaptor = pytest.importorskip("pymatgen.io.ase")
    pmg = pytest.importorskip("pymatgen.core")
    st = pmg.Structure(pmg.Lattice.cubic(4.0), ["Cs", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    atoms = adaptor.AseAtomsAdaptor.get_atoms(st)  # an MSONAtoms, defined in pymatgen
    assert as_structure(atoms).numbers.tolist() == [55, 17]


def test_pymatgen_disordered_refused():
    pmg = pytest.importorskip("pymatgen.core")
    st = pmg.Structure(pmg.Lattice.cubic(4.0), [{"Fe": 0.5, "Ni": 0.5}], [[0, 0, 0]])
    with pytest.raises(ValueError, match="disordered"):
        as_structure(st)


def test_from_ovito_data_collection():
    ovito_io = pytest.importorskip("ovito.io.ase")
    atoms = bulk("Cu", "fcc", a=3.6, cubic=True).repeat((2, 2, 2))
    atoms.positions += 0.3
    data = ovito_io.ase_to_ovito(atoms)
    s = as_structure(data)
    np.testing.assert_allclose(s.cell, atoms.cell.array, atol=1e-12)
    np.testing.assert_allclose(s.positions, atoms.positions, atol=1e-12)
    assert s.numbers.tolist() == atoms.numbers.tolist()
    # Same neighbour list from either front door.
    a = cryspext.neighbor_list(atoms, 3.0)
    b = cryspext.neighbor_list(data, 3.0)
    assert len(a) == len(b)


def test_from_file(tmp_path):
    atoms = bulk("Si", "diamond", a=5.43)
    path = tmp_path / "si.extxyz"
    atoms.write(path)
    s = as_structure(str(path))
    assert len(s) == 2 and s.numbers.tolist() == [14, 14]
    assert len(as_structure(path)) == 2


def test_malformed_and_missing_files(tmp_path):
    bad = tmp_path / "bad.xyz"
    bad.write_text("this is not\nan xyz file\n")
    with pytest.raises(ValueError, match="could not read"):
        as_structure(bad)
    with pytest.raises(ValueError, match="no such file"):
        as_structure(tmp_path / "missing.cif")


def test_unsupported_type():
    with pytest.raises(TypeError, match="cannot interpret"):
        as_structure(42)


def test_nan_positions():
    atoms = Atoms("H2", positions=[[0, 0, 0], [np.nan, 0, 0]])
    with pytest.raises(ValueError, match="not finite"):
        as_structure(atoms)


def test_unknown_element():
    with pytest.raises(ValueError, match="unknown element"):
        Structure(np.zeros((1, 3)), np.eye(3), [True] * 3, [0])


def test_singular_cell_with_pbc():
    atoms = Atoms("H", positions=[[0, 0, 0]], cell=[[1, 0, 0], [2, 0, 0], [0, 0, 1]], pbc=True)
    with pytest.raises(ValueError, match="singular"):
        cryspext.neighbor_list(atoms, 1.0)


def test_singular_cell_allowed_without_pbc():
    atoms = Atoms("H2", positions=[[0, 0, 0], [0.7, 0, 0]])
    nl = cryspext.neighbor_list(atoms, 1.0)
    assert len(nl) == 2


def test_empty_structure():
    with pytest.raises(ValueError, match="no atoms"):
        cryspext.neighbor_list(Atoms(), 2.0)
    with pytest.raises(ValueError, match="no atoms"):
        cryspext.strided_boxes(Atoms(), 10.0, 2.0)


def test_round_trip_to_ase_and_pymatgen():
    pytest.importorskip("pymatgen.core")
    atoms = bulk("Cu", "fcc", a=3.6)
    s = as_structure(atoms)
    assert as_structure(s.to_ase()).numbers.tolist() == [29]
    np.testing.assert_allclose(as_structure(s.to_pymatgen()).positions, s.positions, atol=1e-12)
