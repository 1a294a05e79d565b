"""Formula parsing and composition features, checked against pymatgen and matminer."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cryspext.formula.elements import MAX_Z, SYMBOLS, element_table, provenance
from cryspext.formula.features import (
    FEATURE_NAMES, FORMULA_UNIT_FEATURE_NAMES, composition_features, formula_features, formula_unit_features)
from cryspext.formula.parse import as_composition, parse_formula

pmg = pytest.importorskip("pymatgen.core")

FORMULAS = [
    "LiFePO4", "Fe2O3", "Ca3(Al(SiO4))2", "Al2.6652O4", "Li0.5CoO2", "[Co(NH3)6]Cl3",
    "K4[Fe(CN)6]", "Mg{OH}2", "YBa2Cu3O6.95", "Hf", "CsPbBr3", "(NH4)2SO4", "Ba0.7Sr0.3TiO3",
    "Na2(SO4)", "Co", "CO", "Os", "OS", "Sc", "SC",
]


def _pmg(formula):
    return {str(k): v for k, v in pmg.Composition(formula).get_el_amt_dict().items()}


@pytest.mark.parametrize("formula", FORMULAS)
def test_parse_matches_pymatgen(formula):
    ours = parse_formula(formula)
    ref = _pmg(formula)
    assert set(ours) == set(ref)
    for el, n in ref.items():
        assert ours[el] == pytest.approx(n, rel=1e-12)


def test_hydrate_adds_the_water():
    ours = parse_formula("CuSO4·5H2O")
    ref = _pmg("CuSO4")
    for el, n in _pmg("H2O").items():
        ref[el] = ref.get(el, 0) + 5 * n
    assert ours == pytest.approx(ref)
    assert parse_formula("CaSO4*0.5H2O") == pytest.approx({"Ca": 1, "S": 1, "O": 4.5, "H": 1})


def test_a_dot_before_water_is_a_decimal_point_with_a_warning():
    with pytest.warns(UserWarning, match="CuSO4·5H2O"):
        assert parse_formula("CuSO4.5H2O") == pytest.approx({"Cu": 1, "S": 1, "O": 5.5, "H": 2})
    with pytest.warns(UserWarning, match=r"Cu\(NO3\)2·3H2O"):
        parse_formula("Cu(NO3)2.3H2O")
    import warnings

    with warnings.catch_warnings():  # plain decimal amounts say nothing
        warnings.simplefilter("error")
        for formula in ("Fe0.5H2O", "Li0.5CoO2", "YBa2Cu3O6.95", "CaSO4*0.5H2O"):
            parse_formula(formula)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(1, MAX_Z), st.one_of(st.integers(1, 12),
                                                           st.floats(0.05, 9.5))),
                min_size=1, max_size=5, unique_by=lambda t: t[0]))
def test_random_formulas_round_trip(parts):
    text = "".join(f"{SYMBOLS[z - 1]}{n:.4g}" if isinstance(n, float) else f"{SYMBOLS[z - 1]}{n}"
                   for z, n in parts)
    ours = parse_formula(text)
    ref = _pmg(text)
    assert set(ours) == set(ref)
    for el in ref:
        assert ours[el] == pytest.approx(ref[el], rel=1e-9)


@pytest.mark.parametrize(
    "bad, words",
    [
        ("", "empty"),
        ("Xx2O3", "unknown element"),
        ("Fe2(O3", "missing"),
        ("Fe2)O3", "unbalanced"),
        ("SO4^2-", "charged"),
        ("Fe3+", "charged"),
        ("La2-xSrxCuO4", "variable stoichiometry"),
        ("LaxSr1O3", "variable"),
        ("Fe0O", "zero"),
        ("2", "no elements"),
        ("Fe2 3O", "ambiguous"),
        ("Fe(2O)3", "number without an element"),
        ("Fe2O3!", "unexpected character"),
        ("Na()Cl", "empty brackets"),
        ("·H2O", "empty part"),
    ],
)
def test_bad_formulas_give_clear_errors(bad, words):
    with pytest.raises(ValueError, match=words):
        parse_formula(bad)


def test_type_errors_and_composition_input():
    with pytest.raises(TypeError):
        parse_formula(42)
    with pytest.raises(TypeError):
        as_composition(3.5)
    with pytest.raises(ValueError, match="positive"):
        as_composition({"Fe": -1})
    with pytest.raises(ValueError, match="unknown element"):
        as_composition({"Qq": 1})
    comp = pmg.Composition("LiFePO4")
    assert as_composition(comp) == pytest.approx(parse_formula("LiFePO4"))
    # Oxidation-state-decorated compositions reduce to elements.
    oxi = pmg.Composition({pmg.Species("Fe", 3): 2, pmg.Species("O", -2): 3})
    assert as_composition(oxi) == pytest.approx({"Fe": 2, "O": 3})


def test_unsupported_heavy_element_is_refused():
    with pytest.raises(ValueError, match="no elemental property data"):
        formula_features("RfO2")


# ---- features ----------------------------------------------------------------------------


def test_element_table_matches_pymatgen_and_has_provenance():
    assert "matminer" in provenance() and "Magpie" in provenance()
    values, _ = element_table()
    from cryspext.formula.elements import PROPERTIES

    iz, iw, irow = (PROPERTIES.index(p) for p in ("atomic_number", "atomic_weight", "row"))
    for z in (1, 8, 26, 56, 92):
        el = pmg.Element.from_Z(z)
        assert values[z - 1, iz] == z
        assert values[z - 1, iw] == pytest.approx(float(el.atomic_mass), rel=2e-3)
        assert values[z - 1, irow] == el.row
    assert np.all(np.isfinite(values))


def test_features_are_intensive_and_accept_compositions():
    a = formula_features("Fe2O3")
    assert a.shape == (len(FEATURE_NAMES),)
    np.testing.assert_allclose(a, formula_features("Fe4O6"))
    np.testing.assert_allclose(a, formula_features(pmg.Composition("Fe2O3")))
    assert not np.allclose(a, formula_features("FeO"))


MM_FORMULAS = ["LiFePO4", "Fe2O3", "NaCl", "Cu", "Al2.6652O4", "Ba2NaCe2Ti2FeSi8HO27", "CsPbBr3"]


@pytest.mark.parametrize("formula", MM_FORMULAS)
def test_features_match_matminer(formula):
    pytest.importorskip("matminer")
    import warnings

    from matminer.featurizers.composition import (
        ElementProperty, IonProperty, Stoichiometry, ValenceOrbital)

    warnings.filterwarnings("ignore")
    comp = pmg.Composition(formula)
    ours = dict(zip(FEATURE_NAMES, formula_features(formula)))
    ep = ElementProperty.from_preset("magpie")
    ref = dict(zip(ep.feature_labels(), ep.featurize(comp)))
    mapping = {"Number": "atomic_number", "CovalentRadius": "covalent_radius",
               "Electronegativity": "electronegativity", "NdValence": "nd_valence",
               "GSvolume_pa": "gs_volume_per_atom", "GSmagmom": "gs_magnetic_moment",
               "MendeleevNumber": "mendeleev_number", "NUnfilled": "n_unfilled"}
    stats = {"mean": "mean", "avg_dev": "avg_dev", "minimum": "min", "maximum": "max",
             "range": "range"}
    for mm, name in mapping.items():
        for mstat, stat in stats.items():
            assert ours[f"{stat}_{name}"] == pytest.approx(ref[f"MagpieData {mstat} {mm}"],
                                                           rel=1e-9, abs=1e-12)
    st_ref = Stoichiometry().featurize(comp)
    np.testing.assert_allclose([ours[f"stoich_p{p}"] for p in (0, 2, 3, 5, 7, 10)], st_ref)
    vo = ValenceOrbital().featurize(comp)
    np.testing.assert_allclose([ours[f"frac_{o}_valence"] for o in "spdf"], vo[4:])
    if not all(float(n).is_integer() for n in comp.values()):
        return  # matminer's IonProperty refuses fractional amounts
    ion = IonProperty().featurize(comp)
    assert ours["max_ionic_char"] == pytest.approx(ion[1])
    assert ours["avg_ionic_char"] == pytest.approx(ion[2])


def test_charge_balance_feature():
    idx = FEATURE_NAMES.index("charge_balance_possible")
    assert formula_features("NaCl")[idx] == 1.0
    assert formula_features("Fe2O3")[idx] == 1.0
    assert formula_features("NaCl2")[idx] == 0.0  # no common Na/Cl states balance it
    assert formula_features("Cu")[idx] == 0.0


def test_element_fractions_sum_to_one():
    f = composition_features({"Li": 0.5, "Co": 1.0, "O": 2.0})
    x = f[[i for i, n in enumerate(FEATURE_NAMES) if n.startswith("x_")]]
    assert x.sum() == pytest.approx(1.0)
    assert x[SYMBOLS.index("O")] == pytest.approx(2 / 3.5)


@pytest.mark.parametrize("formula", FORMULAS)
def test_formula_unit_atoms_match_pymatgen_reduced_composition(formula):
    atoms, volume = formula_unit_features(formula)
    assert atoms == pytest.approx(pmg.Composition(formula).reduced_composition.num_atoms)
    assert volume > 0


def test_formula_unit_features_are_extensive_over_the_reduced_formula():
    assert FORMULA_UNIT_FEATURE_NAMES == ["atoms_per_formula_unit", "formula_unit_volume"]
    table, _ = element_table()
    from cryspext.formula.elements import PROPERTIES

    v = {el: table[SYMBOLS.index(el), PROPERTIES.index("gs_volume_per_atom")] for el in ("Fe", "O")}
    expected = [5.0, 2 * v["Fe"] + 3 * v["O"]]  # Å³
    for f in ("Fe2O3", "Fe4O6", pmg.Composition("Fe6O9"), {"O": 3, "Fe": 2}):
        np.testing.assert_allclose(formula_unit_features(f), expected)
    np.testing.assert_allclose(formula_unit_features("FeO"), [2.0, v["Fe"] + v["O"]])
    # Elements are one atom (pymatgen keeps O2 as a molecule); amounts that are not whole
    # numbers are taken as written.
    np.testing.assert_allclose(formula_unit_features("O2"), [1.0, v["O"]])
    assert formula_unit_features("Fe0.95O")[0] == pytest.approx(1.95)
    # ... except for one element, which is one atom whatever its amount
    np.testing.assert_allclose(formula_unit_features("Fe0.05"), [1.0, v["Fe"]])
    with pytest.raises(ValueError, match="no elemental property data"):
        formula_unit_features("RfO2")
    with pytest.raises(ValueError, match="unknown element"):
        formula_unit_features("XyO2")
