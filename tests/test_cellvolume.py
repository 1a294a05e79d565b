"""formula.cellvolume: cell volumes against ASE, the ratio's errors, and the P(ρ | group) table."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cryspext.formula import cellvolume


@settings(max_examples=50, deadline=None)
@given(st.lists(st.floats(2.0, 30.0), min_size=3, max_size=3),
       st.lists(st.floats(60.0, 120.0), min_size=3, max_size=3))
def test_cell_volume_matches_ase(lengths, angles):
    from ase.cell import Cell

    alpha, beta, gamma = angles
    # Angles that form a cell: each below the sum of the other two, the sum below 360°.
    if not (alpha < beta + gamma and beta < alpha + gamma and gamma < alpha + beta
            and alpha + beta + gamma < 360):
        return
    par = lengths + angles
    assert cellvolume.cell_volume(par) == pytest.approx(Cell.fromcellpar(par).volume, rel=1e-9)


def test_volume_ratio_refuses_non_positive_volumes():
    assert cellvolume.volume_ratio(40.0, 20.0) == pytest.approx(np.log(2.0))
    for bad in [(0.0, 20.0), (40.0, 0.0), (np.nan, 20.0), (-1.0, 20.0)]:
        with pytest.raises(ValueError, match="positive"):
            cellvolume.volume_ratio(*bad)


def test_table_is_a_density_per_group_peaked_at_its_rows():
    rng = np.random.default_rng(0)
    # Group 225 at ratios near ln 4, group 221 near ln 1; a group with no rows gets the mix.
    rho = np.concatenate([np.log(4) + 0.02 * rng.standard_normal(500), 0.02 * rng.standard_normal(500)])
    sg = np.repeat([225, 221], 500)
    table = cellvolume.fit_table(rho, sg)
    step = cellvolume.GRID[1] - cellvolume.GRID[0]
    for g in (225, 221, 1):
        assert np.exp(table[g - 1]).sum() * step == pytest.approx(1.0, abs=0.01)
    ll = cellvolume.log_likelihood(table, [np.log(4), 0.0])
    assert ll.shape == (2, 230)
    assert ll[0, 224] > ll[0, 220] + 3 and ll[1, 220] > ll[1, 224] + 3
    np.testing.assert_allclose(ll[0, 0], ll[0, 1])  # two empty groups: the same mix


def test_log_likelihood_interpolates_and_keeps_the_edges():
    table = np.tile(cellvolume.GRID.astype(np.float32), (230, 1))  # ln P = ρ, a straight line
    inside = cellvolume.log_likelihood(table, [0.123, 2.5])
    np.testing.assert_allclose(inside[:, 0], [0.123, 2.5], atol=1e-6)
    outside = cellvolume.log_likelihood(table, [-50.0, 50.0])
    np.testing.assert_allclose(outside[:, 7], [cellvolume.GRID[0], cellvolume.GRID[-1]], atol=1e-6)
