"""Regenerate tests/data/soap/reference.npz: ARISE SOAP vectors computed independently of cryspext.

Run from the repository root with quippy-ase installed (non-commercial licence; used here only to
produce test data):

    python tests/data/soap/make_reference.py

The script re-implements ARISE's pipeline as ai4materials does it (Leitherer et al. 2021;
ai4materials ``quippy_SOAP_descriptor`` with ``get_nn_distance``): for every species pair
(alpha, beta) the nearest beta neighbour of each alpha atom is found with ASE's NeighborList
(10 Å per atom, skin 0.1), the distances are histogrammed with numpy (100 bins, counts divided by
the squared left edge, centre of the fullest bin), positions and cell are divided by that d_NN and
quippy's ``soap ... Z={alpha} species_Z={beta} average=T`` is evaluated; the S^2 vectors are
averaged. Per-atom rows are quippy's ``average=F`` (all species as one) on the structure scaled by
the all-species d_NN. Structures are rattled so that no histogram sits on a rounding tie.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from ase import Atoms
from ase.build import bulk
from ase.neighborlist import NeighborList
from quippy.descriptors import Descriptor

OUT = Path(__file__).with_name("reference.npz")


def nn_distances(atoms, center=None, neighbor=None):
    n = len(atoms)
    nl = NeighborList(np.ones(n) * 10.0, skin=0.1, self_interaction=False, bothways=True)
    nl.update(atoms)
    z = atoms.get_atomic_numbers()
    out = []
    for i in range(n):
        if center is not None and z[i] != center:
            continue
        idx, off = nl.get_neighbors(i)
        d = [
            np.linalg.norm(atoms.positions[j] + np.dot(o, atoms.get_cell()) - atoms.positions[i])
            for j, o in zip(idx, off)
            if neighbor is None or z[j] == neighbor
        ]
        if d:
            out.append(min(d))
    return np.array(out)


def arise_dnn(distances):
    hist, edges = np.histogram(distances, bins=100)
    scaled = [float(h) / edges[k] ** 2 for k, h in enumerate(hist)]
    k = int(np.argmax(scaled))
    return (edges[k] + edges[k + 1]) / 2.0


def scaled(atoms, d):
    a = atoms.copy()
    a.set_positions(a.get_positions() / d)
    a.set_cell(a.get_cell() / d)
    return a


def settings_string(s):
    return (
        f"soap cutoff={s['cutoff']} l_max={s['l_max']} n_max={s['n_max']} atom_sigma={s['sigma']} "
        f"central_weight=0.0"
    )


def arise_reference(atoms, s):
    species = sorted(set(atoms.get_atomic_numbers().tolist()))
    vectors = []
    for a in species:
        for b in species:
            d = arise_dnn(nn_distances(atoms, a, b))
            desc = Descriptor(settings_string(s) + f" n_Z=1 Z={{{a}}} n_species=1 species_Z={{{b}}} average=T")
            vectors.append(desc.calc(scaled(atoms, d))["data"].ravel())
    return np.mean(vectors, axis=0)


def per_atom_reference(atoms, s):
    d = arise_dnn(nn_distances(atoms))
    desc = Descriptor(settings_string(s) + " average=F")
    return desc.calc(scaled(atoms, d))["data"], d


def structures():
    rng = np.random.default_rng(20240531)
    nacl = bulk("NaCl", "rocksalt", a=5.64, cubic=True) * (2, 2, 2)
    nacl.rattle(0.03, seed=1)
    yield "nacl_rattled_periodic", nacl

    cluster = bulk("NaCl", "rocksalt", a=5.64, cubic=True) * (3, 3, 3)
    numbers = cluster.get_atomic_numbers()
    na = np.flatnonzero(numbers == 11)
    numbers[rng.choice(na, size=len(na) // 4, replace=False)] = 19  # K on a quarter of the Na sites
    cluster.set_atomic_numbers(numbers)
    cluster.rattle(0.05, seed=2)
    cluster.pbc = False
    cluster.cell = np.zeros((3, 3))
    yield "nakcl_rattled_cluster", cluster

    cell = np.array([[4.1, 0.3, 0.2], [0.9, 3.8, -0.4], [0.5, 0.7, 4.4]])
    frac = rng.uniform(0, 1, (6, 3))
    tri = Atoms(numbers=[26, 26, 26, 8, 8, 8], scaled_positions=frac, cell=cell, pbc=True)
    yield "triclinic_feo", tri

    slab = bulk("Cu", "fcc", a=3.61, cubic=True) * (3, 3, 2)
    slab.pbc = (True, True, False)
    slab.rattle(0.02, seed=3)
    yield "cu_slab_mixed_pbc", slab


SETTINGS = {
    "arise": dict(cutoff=4.0, n_max=9, l_max=6, sigma=0.1),
    "small": dict(cutoff=3.0, n_max=5, l_max=3, sigma=0.15),
}


def main():
    data = {}
    names = []
    for name, atoms in structures():
        names.append(name)
        data[f"{name}/positions"] = atoms.get_positions()
        data[f"{name}/numbers"] = atoms.get_atomic_numbers()
        data[f"{name}/cell"] = np.asarray(atoms.get_cell())
        data[f"{name}/pbc"] = atoms.get_pbc()
        for key, s in SETTINGS.items():
            data[f"{name}/arise/{key}"] = arise_reference(atoms, s)
        rows, d = per_atom_reference(atoms, SETTINGS["arise"])
        data[f"{name}/per_atom/arise"] = rows[:24]  # the first 24 atoms keep the file small
        data[f"{name}/dnn_all"] = np.array(d)
        print(name, len(atoms), "atoms, d_NN(all) =", d)
    data["names"] = np.array(names)
    for key, s in SETTINGS.items():
        data[f"settings/{key}"] = np.array([s["cutoff"], s["n_max"], s["l_max"], s["sigma"]], dtype=float)
    np.savez_compressed(OUT, **data)
    print("wrote", OUT)


if __name__ == "__main__":
    main()
