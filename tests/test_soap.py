"""SOAP descriptor: quippy parity, ARISE's published vectors, invariances, batches, boxes, errors.

Oracles: quippy (skipped when not installed), reference vectors in tests/data/soap/reference.npz
produced by tests/data/soap/make_reference.py (ASE + numpy + quippy, ARISE's procedure, no
cryspext), and ARISE's own vectors in ../shared/data/arise/golden_soap (Tutorial_ARISE and
ai4materials, Apache-2.0) computed from the prototypes in ../shared/data/arise/prototypes.
"""

from __future__ import annotations

import glob
import pickle
import warnings
from pathlib import Path

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk

import cryspext
from cryspext.descriptors import (
    arise_soap,
    arise_soap_batch,
    arise_soap_boxes,
    soap_dimension,
    soap_per_atom,
)
from cryspext.structure import Structure

DATA = Path(__file__).parent / "data" / "soap"
ARISE = dict(cutoff=4.0, n_max=9, l_max=6, sigma=0.1)


def _quippy():
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from quippy.descriptors import Descriptor
    except Exception:  # ImportError, or a broken binary
        pytest.skip("quippy not installed (optional oracle)")
    return Descriptor


def _random_cluster(seed, n=30, species=(11, 17), box=7.0, periodic=False):
    rng = np.random.default_rng(seed)
    # Random positions with a minimum separation, so that no pair is absurdly close.
    pos = []
    while len(pos) < n:
        p = rng.uniform(0, box, 3)
        if all(np.linalg.norm(p - q) > 1.6 for q in pos):
            pos.append(p)
    numbers = rng.choice(species, n)
    return Atoms(numbers=numbers, positions=pos, cell=np.eye(3) * box if periodic else None, pbc=periodic)


# ---------------------------------------------------------------- quippy parity (optional oracle)


@pytest.mark.parametrize("periodic", [False, True])
@pytest.mark.parametrize(
    "settings",
    [
        dict(cutoff=4.0, n_max=9, l_max=6, sigma=0.5),
        dict(cutoff=3.0, n_max=5, l_max=4, sigma=0.3, central_weight=1.0),
        dict(cutoff=4.0, n_max=9, l_max=6, sigma=0.05),  # narrow Gaussians: the scalar (non-block) path
    ],
)
def test_soap_matches_quippy_without_scaling(periodic, settings):
    Descriptor = _quippy()
    atoms = _random_cluster(3, periodic=periodic)
    cw = settings.get("central_weight", 0.0)
    base = (
        f"soap cutoff={settings['cutoff']} n_max={settings['n_max']} l_max={settings['l_max']} "
        f"atom_sigma={settings['sigma']} central_weight={cw}"
    )
    species = sorted(set(atoms.numbers.tolist()))
    expected = np.mean(
        [
            Descriptor(base + f" average=T n_Z=1 Z={{{a}}} n_species=1 species_Z={{{b}}}").calc(atoms)["data"].ravel()
            for a in species
            for b in species
        ],
        axis=0,
    )
    got = arise_soap(atoms, scale=False, **settings)
    assert got.shape == (soap_dimension(settings["n_max"], settings["l_max"]),)
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12)

    per_atom = Descriptor(base + " average=F").calc(atoms)["data"]
    np.testing.assert_allclose(soap_per_atom(atoms, scale=False, **settings), per_atom, rtol=0, atol=1e-12)


@pytest.mark.parametrize("seed", range(8))
def test_random_settings_match_quippy(seed):
    # The block kernel evaluates only a window of radial centres per neighbour, sized from sigma,
    # the basis spacing and n_max; random settings cover narrow/wide windows and the edges.
    Descriptor = _quippy()
    rng = np.random.default_rng(100 + seed)
    cutoff, sigma = float(rng.uniform(2.5, 6.0)), float(rng.uniform(0.06, 0.7))
    n_max, l_max = int(rng.integers(2, 13)), int(rng.integers(0, 9))
    atoms = _random_cluster(seed, n=25, species=(29,), box=6.0)
    q = Descriptor(
        f"soap cutoff={cutoff} n_max={n_max} l_max={l_max} atom_sigma={sigma} central_weight=0.0 "
        "average=T n_Z=1 Z={29} n_species=1 species_Z={29}"
    ).calc(atoms)["data"].ravel()
    got = arise_soap(atoms, scale=False, cutoff=cutoff, n_max=n_max, l_max=l_max, sigma=sigma)
    np.testing.assert_allclose(got, q, rtol=0, atol=1e-12)


def test_coincident_atoms_match_quippy():
    Descriptor = _quippy()
    atoms = _random_cluster(5, n=12)
    atoms += Atoms("Na", positions=[atoms.positions[0]])  # a second atom exactly on atom 0
    q = Descriptor("soap cutoff=4.0 n_max=9 l_max=6 atom_sigma=0.3 central_weight=0 average=F").calc(atoms)["data"]
    ours = soap_per_atom(atoms, scale=False, sigma=0.3)
    # quippy's rows of the two coincident atoms are NaN (0/0 direction); ours are finite (the
    # l = 0 density of the partner), the other rows agree.
    bad = np.isnan(q).any(axis=1)
    assert set(np.flatnonzero(bad)) <= {0, len(atoms) - 1}
    assert np.isfinite(ours).all()
    np.testing.assert_allclose(ours[~bad], q[~bad], rtol=0, atol=1e-12)


def test_radial_basis_matches_quippy():
    _quippy()
    from quippy.descriptors_module import soap

    from cryspext import _core

    q = soap("cutoff=4.0 l_max=6 n_max=9 atom_sigma=0.1 central_weight=0 average=T")
    ours = _core.soap_basis(4.0, 9, 6, 0.1)
    np.testing.assert_allclose(ours["r_basis"], np.asarray(q.r_basis).ravel(), atol=1e-14)
    np.testing.assert_allclose(ours["transform"], np.asarray(q.transform_basis), atol=1e-12)


# ---------------------------------------------------------------- committed reference data


def _reference():
    ref = np.load(DATA / "reference.npz")
    for name in ref["names"]:
        s = Structure(ref[f"{name}/positions"], ref[f"{name}/cell"], ref[f"{name}/pbc"], ref[f"{name}/numbers"])
        yield str(name), s, ref


@pytest.mark.parametrize("key", ["arise", "small"])
def test_arise_soap_matches_reference_data(key):
    for name, s, ref in _reference():
        cutoff, n_max, l_max, sigma = ref[f"settings/{key}"]
        got = arise_soap(s, cutoff=cutoff, n_max=int(n_max), l_max=int(l_max), sigma=sigma)
        np.testing.assert_allclose(got, ref[f"{name}/arise/{key}"], rtol=0, atol=1e-10, err_msg=name)


def test_per_atom_matches_reference_data():
    for name, s, ref in _reference():
        expected = ref[f"{name}/per_atom/arise"]
        got = soap_per_atom(s, **ARISE)
        assert got.shape == (len(s), 316)
        np.testing.assert_allclose(got[: len(expected)], expected, rtol=0, atol=1e-10, err_msg=name)
        np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-12)


@pytest.mark.parametrize("cap", ["generic", "avx2"])
def test_every_kernel_instruction_set_matches_reference_data(cap, monkeypatch):
    # The C++ kernel is compiled for several instruction sets and picks one at run time; each
    # capped variant must give quippy's numbers too (the native one is tested above).
    native = cryspext._core.soap_isa()
    monkeypatch.setenv("CRYSPEXT_SOAP_ISA", cap)
    used = cryspext._core.soap_isa()
    assert used in ("generic", "avx2", "avx512")
    assert used == cap or (cap == "avx2" and native == "generic")
    for name, s, ref in _reference():
        cutoff, n_max, l_max, sigma = ref["settings/arise"]
        got = arise_soap(s, cutoff=cutoff, n_max=int(n_max), l_max=int(l_max), sigma=sigma)
        np.testing.assert_allclose(got, ref[f"{name}/arise/arise"], rtol=0, atol=1e-10, err_msg=name)
        expected = ref[f"{name}/per_atom/arise"]
        np.testing.assert_allclose(soap_per_atom(s, **ARISE)[: len(expected)], expected, rtol=0, atol=1e-10, err_msg=name)


# ---------------------------------------------------------------- ARISE's own vectors


def _read_prototype(path):
    import ase.io

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return ase.io.read(path, format="aims")


@pytest.mark.parametrize(
    "name, folder",
    [
        ("fcc_Cu_A_cF4_225_a", "Elemental_solids"),
        ("bcc_W_A_cI2_229_a", "Elemental_solids"),
        ("RockSalt_NaCl", "Binaries"),
    ],
)
def test_golden_vectors_of_arise(shared_data, name, folder):
    """ARISE's saved descriptors equal ours for the periodic prototype cell (max |diff| <= 1e-6)."""
    golden = np.load(shared_data / "arise" / "golden_soap" / f"{name}.npy").ravel()
    atoms = _read_prototype(shared_data / "arise" / "prototypes" / folder / name / f"{name}.in")
    assert np.abs(arise_soap(atoms) - golden).max() <= 1e-6


def test_golden_fcc_bcc_pair(shared_data):
    golden = np.load(shared_data / "arise" / "golden_soap" / "fcc_Cu_A_cF4_225_a_bcc_W_A_cI2_229_a.npy")
    root = shared_data / "arise" / "prototypes" / "Elemental_solids"
    atoms = [_read_prototype(root / n / f"{n}.in") for n in ("fcc_Cu_A_cF4_225_a", "bcc_W_A_cI2_229_a")]
    assert np.abs(arise_soap_batch(atoms) - golden).max() <= 1e-6


def pristine_protocol(path):
    """The structures behind ARISE's 396 pristine vectors (thesis section 4.3.3.2).

    Per prototype: the periodic cell as given, and (except for nanotubes, which are only
    non-periodic) three non-periodic isotropic replicas n, n+1, n+2 with n the smallest
    replication giving >= 100 atoms (2D materials: in-plane replicas n x n x 1 only).
    """
    atoms = _read_prototype(path)
    yield atoms
    if "Nanotubes" in str(path):
        return
    two_d = "2D_materials" in str(path)
    n = 1
    while len(atoms) * n ** (2 if two_d else 3) < 100:
        n += 1
    for rep in (n, n + 1, n + 2):
        big = atoms * ((rep, rep, 1) if two_d else (rep, rep, rep))
        big.pbc = False
        big.cell = np.zeros((3, 3))
        yield big


def test_pristine_set_of_arise(shared_data):
    """Each of the 396 pristine rows is matched within 1e-5 (float32 data) by the protocol above."""
    golden = shared_data / "arise" / "golden_soap"
    with open(golden / "soap_pristine_x.pkl", "rb") as f:
        x = np.asarray(pickle.load(f, encoding="latin1"), dtype=np.float64)
    with open(golden / "soap_pristine_y.pkl", "rb") as f:
        y = np.asarray(pickle.load(f, encoding="latin1"))
    classes = (shared_data / "arise" / "classes.txt").read_text().split()
    files = {Path(p).parent.name: Path(p) for p in glob.glob(str(shared_data / "arise" / "prototypes" / "*" / "*" / "*.in"))}
    assert x.shape == (396, 316) and len(classes) == 108

    structures, labels = [], []
    for k, name in enumerate(classes):
        for atoms in pristine_protocol(files[name]):
            structures.append(atoms)
            labels.append(k)
    ours = arise_soap_batch(structures, progress=False)
    labels = np.array(labels)
    matched = 0
    for row, k in zip(x, y):
        err = np.abs(ours[labels == k] - row).max(axis=1)
        matched += bool(err.min() <= 1e-5)
    assert matched / len(x) >= 0.99, f"{matched} of {len(x)} rows matched"


# ---------------------------------------------------------------- invariances


def _rotation(seed):
    q, _ = np.linalg.qr(np.random.default_rng(seed).normal(size=(3, 3)))
    return q * np.sign(np.linalg.det(q))


def test_rotation_translation_permutation_invariance():
    atoms = _random_cluster(7, n=40, species=(26, 8, 29))
    ref = arise_soap(atoms)
    moved = atoms.copy()
    moved.positions = atoms.positions @ _rotation(1).T + np.array([3.2, -7.1, 0.4])
    perm = np.random.default_rng(2).permutation(len(atoms))
    moved = moved[perm]
    np.testing.assert_allclose(arise_soap(moved), ref, atol=1e-10)
    np.testing.assert_allclose(soap_per_atom(moved), soap_per_atom(atoms)[perm], atol=1e-10)


def test_periodic_rotation_and_supercell_invariance():
    # Rattled, with several atoms of each species: a genuine spread of the same-species nearest
    # distances, so d_NN's histogram is not on a tie. (With one atom per species, as in the
    # primitive cell, each same-species d_NN rests on a single distance, whose last bits, and
    # so ARISE's tie rule, move with the rotation; see descriptors.nn.)
    atoms = bulk("NaCl", "rocksalt", a=5.64) * (2, 2, 2)
    atoms.rattle(0.05, seed=4)
    ref = arise_soap(atoms)
    rot = atoms.copy()
    rot.set_cell(atoms.cell.array @ _rotation(5).T, scale_atoms=True)
    np.testing.assert_allclose(arise_soap(rot), ref, atol=1e-9)
    # Perfect crystal: supercells agree exactly in "robust" mode (ARISE's own rule is not
    # supercell-stable there, see nearest_neighbor_distance).
    perfect = bulk("Cu", "fcc", a=3.6)
    base = arise_soap(perfect, degenerate="robust")
    for rep in [(2, 2, 2), (3, 1, 2)]:
        np.testing.assert_allclose(arise_soap(perfect * rep, degenerate="robust"), base, atol=1e-10)
    np.testing.assert_allclose(arise_soap(perfect * (2, 1, 1), scale=False), arise_soap(perfect, scale=False), atol=1e-10)


def test_continuity_when_an_atom_crosses_the_cutoff():
    # Two atoms; the second one moves through the cosine transition and beyond r_cut.
    cutoff, width = 4.0, 0.5

    def vec(r):
        atoms = Atoms("Cu3", positions=[[0, 0, 0], [1.0, 0.3, 0], [r, 0.7, 0.2]])
        return soap_per_atom(atoms, scale=False, cutoff=cutoff, transition=width, sigma=0.3)[0]

    inside = vec(np.sqrt(cutoff**2 - 0.53) - 1e-7)
    outside = vec(np.sqrt(cutoff**2 - 0.53) + 1e-7)
    np.testing.assert_allclose(inside, outside, atol=1e-9)
    # Smooth inside the transition (no jump between close points), and a real change across it.
    a, b = vec(3.6), vec(3.6 + 1e-6)
    assert np.abs(a - b).max() < 1e-5
    assert np.abs(vec(3.0) - outside).max() > 1e-3


# ---------------------------------------------------------------- batches, boxes, per-atom


def test_batch_equals_single_and_reports_errors():
    good = [bulk("Cu", "fcc", a=3.6), _random_cluster(11, n=20), bulk("NaCl", "rocksalt", a=5.6)]
    batch = arise_soap_batch(good, progress=False)
    for k, atoms in enumerate(good):
        np.testing.assert_allclose(batch[k], arise_soap(atoms), atol=1e-12)
    lonely = Atoms("Cu", positions=[[0, 0, 0]])  # no neighbour: ARISE's d_NN is undefined
    with pytest.raises(ValueError, match="structure 1"):
        arise_soap_batch([good[0], lonely], progress=False)
    mixed = arise_soap_batch([good[0], lonely], errors="nan", progress=False)
    assert np.isnan(mixed[1]).all() and np.isfinite(mixed[0]).all()
    with pytest.raises(ValueError):
        arise_soap(lonely)
    assert arise_soap_batch([], progress=False).shape == (0, 316)


def test_boxes_equal_isolated_clusters():
    sample = bulk("Cu", "fcc", a=3.61, cubic=True) * (6, 6, 6)
    numbers = sample.get_atomic_numbers()
    numbers[np.random.default_rng(0).choice(len(sample), 150, replace=False)] = 28  # Ni on some sites
    sample.set_atomic_numbers(numbers)
    sample.rattle(0.02, seed=6)
    sample.pbc = False
    grid = cryspext.strided_boxes(sample, 12.0, 5.0, min_atoms=50)
    rows = arise_soap_boxes(sample, grid)
    assert rows.shape == (grid.n_boxes, 316)
    for b in range(grid.n_boxes):
        if not grid.valid.reshape(-1)[b]:
            assert np.isnan(rows[b]).all()
            continue
        box = sample[grid.members(b)]
        np.testing.assert_allclose(rows[b], arise_soap(box), atol=1e-12)


def test_periodic_wrapped_boxes():
    sample = bulk("Cu", "fcc", a=3.61, cubic=True) * (5, 5, 5)
    sample.rattle(0.02, seed=8)
    grid = cryspext.strided_boxes(sample, 10.0, 9.0, periodic=True)
    rows = arise_soap_boxes(sample, grid)
    b = 0
    members = grid.members(b)
    shifts = grid.shifts[grid.offsets[b] : grid.offsets[b + 1]]
    box = Atoms(numbers=sample.numbers[members], positions=sample.positions[members] + shifts @ sample.cell.array)
    np.testing.assert_allclose(rows[b], arise_soap(box), atol=1e-12)
    assert np.isfinite(rows).all()


# ---------------------------------------------------------------- bad input


def test_bad_input_raises_clear_errors():
    atoms = bulk("Cu", "fcc", a=3.6)
    with pytest.raises(ValueError, match="cutoff"):
        arise_soap(atoms, cutoff=-1.0)
    with pytest.raises(ValueError, match="sigma"):
        arise_soap(atoms, sigma=0.0)
    with pytest.raises(ValueError, match="n_max"):
        arise_soap(atoms, n_max=0)
    with pytest.raises(TypeError, match="l_max"):
        arise_soap(atoms, l_max=2.5)
    with pytest.raises(ValueError, match="transition"):
        arise_soap(atoms, transition=5.0)
    with pytest.raises(ValueError, match="degenerate"):
        arise_soap(atoms, degenerate="sometimes")
    with pytest.raises(TypeError, match="unknown settings"):
        arise_soap_batch([atoms], nmax=9)
    with pytest.raises(ValueError, match="errors"):
        arise_soap_batch([atoms], errors="ignore")
    with pytest.raises(TypeError):
        arise_soap(object())
    with pytest.raises(TypeError, match="BoxGrid"):
        arise_soap_boxes(atoms, grid="all")
    with pytest.raises(ValueError, match="no atoms"):
        arise_soap(Structure(np.zeros((0, 3)), np.zeros((3, 3)), [False] * 3, []))
