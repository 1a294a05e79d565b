"""ASE and pymatgen front doors, with the stand-in model and descriptors of test_spm_support."""

from __future__ import annotations

import json

import numpy as np
import pytest
from ase.build import bulk
from test_spm_support import TinyMCModel, rdf_descriptor, structure_rdf

from cryspext import as_structure
from cryspext.ase import AriseClassifier
from cryspext.build import polycrystal


@pytest.fixture(scope="module")
def model():
    return TinyMCModel(13, p=0.2)


def make(model, **kw):
    return AriseClassifier(model=model, descriptor=rdf_descriptor, structure_descriptor=structure_rdf,
                           mc_samples=60, **kw)


def test_global_mode_caches_until_atoms_change(model):
    atoms = bulk("Cu", "fcc", a=3.6, cubic=True) * (2, 2, 2)
    clf = make(model)
    assert set(clf.implemented_properties) >= {"label", "probabilities", "mutual_information"}
    calls = model.calls
    label = clf.get_property("label", atoms)
    assert label in model.classes and model.calls == calls + 1
    p = clf.get_property("probabilities", atoms)
    assert model.calls == calls + 1  # cached
    np.testing.assert_allclose(p.sum(), 1.0, atol=1e-6)
    assert label == model.classes[int(np.argmax(p))]
    assert clf.results["mode"] == "global"
    atoms.positions[0] += 0.3
    clf.get_property("label", atoms)
    assert model.calls == calls + 2  # recomputed after the atoms moved
    assert np.all(clf.get_property("labels", atoms) == clf.get_property("label", atoms))
    with pytest.raises(ValueError):
        clf.get_property("energy", atoms)


def test_annotate_keeps_calculator_and_round_trips_extxyz(tmp_path, model):
    import ase.io
    from ase.calculators.emt import EMT

    atoms = bulk("Cu", "fcc", a=3.6, cubic=True) * (2, 2, 2)
    atoms.calc = EMT()
    e0 = atoms.get_potential_energy()
    clf = make(model)
    clf.annotate(atoms, probabilities=True)
    assert isinstance(atoms.calc, EMT) and atoms.get_potential_energy() == pytest.approx(e0)
    path = tmp_path / "annotated.extxyz"
    ase.io.write(path, atoms)
    back = ase.io.read(path)
    for key in ("arise_top_probability", "arise_mutual_information", "arise_probabilities"):
        np.testing.assert_allclose(back.arrays[key], atoms.arrays[key], rtol=1e-6, atol=1e-12)
    assert list(back.arrays["arise_label"]) == list(atoms.arrays["arise_label"])
    assert back.info["arise_label"] == atoms.info["arise_label"]
    assert back.info["arise_mutual_information"] == pytest.approx(atoms.info["arise_mutual_information"])


def test_spm_mode_gives_per_atom_results(tmp_path, model):
    import ase.io

    atoms = polycrystal((40.0, 40.0, 10.0), ("fcc", "bcc"), seed=3)
    clf = make(model, box=10.0, stride=4.0, mode="auto", spm_min_atoms=100)
    clf.annotate(atoms)
    assert clf.results["mode"] == "spm" and clf.spm_result is not None
    labels = atoms.arrays["arise_label"]
    assert labels.shape == (len(atoms),) and set(labels) <= set(model.classes)
    pa = clf.spm_result.per_atom()
    np.testing.assert_allclose(atoms.arrays["arise_mutual_information"], pa.mutual_information, rtol=1e-6)
    fractions = json.loads(atoms.info["arise_fractions"])
    assert sum(fractions.values()) == pytest.approx(1.0, abs=1e-4)
    ase.io.write(tmp_path / "a.extxyz", atoms)
    back = ase.io.read(tmp_path / "a.extxyz")
    assert json.loads(back.info["arise_fractions"]) == fractions


def test_ase_bad_input(model):
    with pytest.raises(ValueError):
        AriseClassifier(mode="fast")
    with pytest.raises(ValueError):
        AriseClassifier(mc_samples=0)
    with pytest.raises(ValueError):
        make(model).get_property("label")  # nothing computed and no atoms
    with pytest.raises(TypeError):
        make(model).get_property("label", "not atoms" and 42)


def test_pymatgen_analyzer_msonable(model):
    pytest.importorskip("pymatgen")
    from monty.json import MontyDecoder, MontyEncoder
    from pymatgen.core import Lattice, Structure

    from cryspext.pymatgen import ARISEAnalyzer, ARISEResult

    s = Structure(Lattice.cubic(3.6), ["Cu"] * 4, [[0, 0, 0], [0, 0.5, 0.5], [0.5, 0, 0.5], [0.5, 0.5, 0]])
    a = ARISEAnalyzer(s, mc_samples=60, model=model, descriptor=structure_rdf)
    probs = a.get_probabilities()
    assert set(probs) == set(model.classes) and sum(probs.values()) == pytest.approx(1.0, abs=1e-6)
    assert a.get_label() == max(probs, key=probs.get)
    ranking = a.get_ranking(2)
    assert ranking[0][0] == a.get_label() and ranking[0][1] >= ranking[1][1]
    assert 0 <= a.get_mutual_information() <= a.get_predictive_entropy() + 1e-9
    text = json.dumps(a.get_result(), cls=MontyEncoder)
    back = json.loads(text, cls=MontyDecoder)
    assert isinstance(back, ARISEResult) and back.as_dict() == a.get_result().as_dict()
    # Same input through ASE gives the same answer (same seed, model and descriptor).
    clf = make(model)
    clf.parameters["mc_samples"] = 60
    assert clf.get_property("label", as_structure(s).to_ase()) == a.get_label()
    with pytest.raises(ValueError):
        a.get_ranking(0)
    with pytest.raises(ValueError):
        ARISEAnalyzer(s, mc_samples=0, model=model, descriptor=structure_rdf)
    with pytest.raises(TypeError):
        ARISEAnalyzer(3.14, model=model, descriptor=structure_rdf)


def test_shipped_model_through_both_front_doors():
    """The shipped ARISE model and SOAP: ASE bulk crystals get their prototype (ASE builds them,
    the expected names come from the ARISE class list), pymatgen agrees with ASE."""
    arise = pytest.importorskip("cryspext.arise")
    try:
        model = arise.load_model()
    except FileNotFoundError:
        pytest.skip("no shipped ARISE model")
    from cryspext.pymatgen import ARISEAnalyzer

    cases = {"fcc_Cu_A_cF4_225_a": bulk("Cu", "fcc", a=3.6, cubic=True),
             "bcc_W_A_cI2_229_a": bulk("W", "bcc", a=3.16, cubic=True),
             "diam_C_A_cF8_227_a": bulk("C", "diamond", a=3.57, cubic=True)}
    clf = AriseClassifier(model=model, mc_samples=100)
    for expected, atoms in cases.items():
        assert clf.get_property("label", atoms) == expected
        s = as_structure(atoms).to_pymatgen()
        assert ARISEAnalyzer(s, mc_samples=100, model=model).get_label() == expected
        # Same views, passes and seed as cryspext.classify: the same numbers.
        ref = arise.classify(atoms, mc_samples=100, seed=0, model=model)
        np.testing.assert_allclose(list(ARISEAnalyzer(s, mc_samples=100, seed=0, model=model).get_probabilities().values()),
                                   ref.probabilities, rtol=1e-12)
        np.testing.assert_allclose(AriseClassifier(model=model, mc_samples=100, seed=0).get_property("mutual_information", atoms),
                                   ref.mutual_information, rtol=1e-12)
