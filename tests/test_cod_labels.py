"""COD formula → space-group labels as extra classifier rows (``training.cod``): which rows,
their labels, and the halves by chemical system."""

from __future__ import annotations

import gzip
import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cryspext.training.cod import (
    COD_FILE,
    MP_FILE,
    cod_halves,
    cod_label_rows,
    cod_training_rows,
    composition_key,
    system_halves,
)


def test_composition_key_is_by_mole_fraction():
    assert composition_key({"Fe": 2, "O": 3}) == composition_key({"O": 6.0, "Fe": 4.0})
    assert composition_key({"Fe": 1, "O": 1}) != composition_key({"Fe": 0.95, "O": 1})


def _write(folder, cod_rows, mp_formulas):
    (folder / "mp").mkdir(parents=True, exist_ok=True)
    with gzip.open(folder / COD_FILE, "wt") as f:
        json.dump(cod_rows, f)
    with gzip.open(folder / MP_FILE, "wt") as f:
        json.dump({m: [[0.0, i]] for i, m in enumerate(mp_formulas)}, f)


def test_label_rows_leave_out_mp_compositions_and_take_the_most_frequent_group(tmp_path):
    _write(tmp_path, [
        ["Na2Cl2", 1, 225],  # NaCl is in the MP table (by mole fractions): left out
        ["KBr", 2, 225], ["K2Br2", 3, 221], ["KBr", 4, 225],  # one composition, 225 twice
        ["Ba0.5Sr0.5TiO3", 5, 99],
        ["Xx2O", 6, 12],  # unknown element: skipped, not an error
        ["CsI", 7, 999],  # no such space group: skipped
    ], ["NaCl", "Fe2O3"])
    comps, sg = cod_label_rows(tmp_path / COD_FILE, tmp_path / MP_FILE)
    keys = [composition_key(c) for c in comps]
    assert keys == [composition_key({"K": 1, "Br": 1}), composition_key({"Ba": 0.5, "Sr": 0.5, "Ti": 1, "O": 3})]
    assert sg.tolist() == [225, 99]


def test_missing_files_and_unknown_halves_are_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="COD labels"):
        cod_training_rows(tmp_path)
    with pytest.raises(ValueError, match="halves"):
        cod_training_rows(tmp_path, "test")


def test_one_half_holds_the_rows_the_two_halves_split(tmp_path):
    metals = ["Li", "Na", "K", "Mg", "Ca", "Sr"]
    _write(tmp_path, [[f"{m}2O", i, 225] for i, m in enumerate(metals)], ["NaCl"])
    both = cod_halves(tmp_path)
    train = cod_training_rows(tmp_path, "train")
    np.testing.assert_array_equal(train["X"], both["train"]["X"])
    assert len(train["sg"]) + len(both["held_out"]["sg"]) == len(metals)
    assert train["X"].shape[1] == both["held_out"]["X"].shape[1] and train["X"].dtype == np.float32
    assert set(train["bravais"]) == {13}  # cF, from Fm-3m


@settings(max_examples=40, deadline=None)
@given(st.lists(st.sampled_from(["Fe O", "Fe", "Na Cl", "K Br", "Ba Sr Ti O", "Si O", "Cu Zn", "Li"]),
                min_size=2, max_size=60))
def test_halves_never_share_a_chemical_system(systems):
    comps = [{el: 1.0 + i for el in s.split()} for i, s in enumerate(systems)]
    train = system_halves(comps)
    train_systems = {s for s, t in zip(systems, train) if t}
    held_systems = {s for s, t in zip(systems, train) if not t}
    assert not train_systems & held_systems
    assert train.sum() >= len(comps) // 2  # whole systems until half of the rows
    np.testing.assert_array_equal(train, system_halves(comps))  # seeded


def test_shared_cod_rows(shared_data):
    """The real table: about half of the compositions in each half, no chemical system and no
    MP composition in common."""
    if not (shared_data / COD_FILE).is_file():
        pytest.skip("no COD table in shared/data/mp")
    comps, sg = cod_label_rows(shared_data / COD_FILE, shared_data / MP_FILE)
    train = system_halves(comps)
    assert 0.45 < train.mean() < 0.55
    systems = [frozenset(c) for c in comps]
    assert not {s for s, t in zip(systems, train) if t} & {s for s, t in zip(systems, train) if not t}
    assert ((sg >= 1) & (sg <= 230)).all()
    mp = json.load(gzip.open(shared_data / MP_FILE, "rt"))
    from cryspext.formula.parse import as_composition

    sample = [composition_key(as_composition(f)) for f in list(mp)[::50]]
    assert not set(sample) & {composition_key(c) for c in comps}
