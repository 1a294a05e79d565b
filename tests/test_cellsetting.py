"""formula.cellsetting: the features of a cell as written (seed 001's raw parameters)."""

from __future__ import annotations

import numpy as np
import pytest

from cryspext.formula.cellsetting import STANDARD_FEATURE_NAMES, standard_setting_features


def test_features_of_a_monoclinic_cell():
    a, b, c, beta = 5.0, 6.0, 7.0, 100.0
    f = standard_setting_features([a, b, c, 90, beta, 90])
    assert f.shape == (1, len(STANDARD_FEATURE_NAMES)) and f.dtype == np.float32
    v = a * b * c * np.sin(np.radians(beta))
    expected = [a, b, c, 90, beta, 90, v, b / a, c / a, abs(a - c) / (a + c), a * b * c / v]
    np.testing.assert_allclose(f[0], expected, rtol=1e-6)


def test_the_setting_is_kept():
    """Unlike cellgeom's canonical features, the order of the axes matters here."""
    f = standard_setting_features([[4, 5, 6, 90, 90, 90], [6, 5, 4, 90, 90, 90]])
    assert not np.allclose(f[0], f[1])
    assert f[0, 6] == pytest.approx(f[1, 6])  # the volume is the same


def test_bad_shapes_are_refused():
    with pytest.raises(ValueError, match="six"):
        standard_setting_features([4, 5, 6, 90, 90])
