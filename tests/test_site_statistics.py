"""Site statistics (coordination, per-group von Mises, Z-contrast) and the within-group score,
checked on inputs whose answer is known."""

import numpy as np
import pytest

from helpers.analysis.circular import wrap_angle
from helpers.analysis.scores import within_group_abs_r
from helpers.analysis.site_statistics import (
    bond_orientation,
    column_intensities,
    coordination_numbers,
    von_mises_per_group,
    zcontrast_ratio,
)


def _honeycomb(n=8, bond=1.42):
    a = bond * np.sqrt(3)
    i, j = np.meshgrid(np.arange(-n, n + 1), np.arange(-n, n + 1), indexing="ij")
    a1, a2 = np.array([0.0, a]), np.array([-a * np.sqrt(3) / 2, a / 2])
    cells = i.reshape(-1, 1) * a1 + j.reshape(-1, 1) * a2
    return np.concatenate([cells, cells + (a1 + a2) / 3])


def test_coordination_is_three_in_graphene_and_drops_at_a_vacancy():
    pos = _honeycomb()
    centre = np.linalg.norm(pos, axis=1) < 8
    z = coordination_numbers(pos, 1.2 * 1.42)
    assert np.all(z[centre] == 3)
    victim = np.argmin(np.linalg.norm(pos, axis=1))
    left = np.delete(pos, victim, axis=0)
    z2 = coordination_numbers(left, 1.2 * 1.42)
    near = np.linalg.norm(left - pos[victim], axis=1) < 1.6
    assert near.sum() == 3 and np.all(z2[near] == 2)
    # with separate candidate neighbours the point itself is skipped when it is among them
    # (as bond_orientation skips it), and a point off the candidates counts all it reaches
    assert np.all(coordination_numbers(pos[centre], 1.7, others=pos) == 3)
    a = pos[centre][0]
    b = pos[np.argsort(np.linalg.norm(pos - a, axis=1))[1]]  # a bonded neighbour of a
    assert coordination_numbers(((a + b) / 2)[None], 0.8, others=pos)[0] == 2  # its two ends
    with pytest.raises(ValueError, match="cutoff"):
        coordination_numbers(pos, 0.0)


def test_bond_orientation_tells_the_sublattices_and_a_turned_grain_apart():
    pos = _honeycomb()
    centre = np.linalg.norm(pos, axis=1) < 8
    n_cells = len(pos) // 2  # _honeycomb: the first half is sublattice A, the second B
    angle, order = bond_orientation(pos, 1.2 * 1.42)
    assert np.allclose(order[centre], 1.0)  # three bonds at 120 degrees
    a, b = angle[:n_cells][centre[:n_cells]], angle[n_cells:][centre[n_cells:]]
    assert np.ptp(a) < 1e-9 and np.ptp(b) < 1e-9  # one direction per sublattice
    assert abs(wrap_angle(3 * (a[0] - b[0]))) == pytest.approx(np.pi)  # 60 degrees apart
    # a grain turned by 10 degrees moves the direction by 10 degrees (modulo 120)
    t = np.radians(10)
    turned = pos @ np.array([[np.cos(t), np.sin(t)], [-np.sin(t), np.cos(t)]])
    angle_t, _ = bond_orientation(turned, 1.2 * 1.42)
    shift = np.abs(wrap_angle(3 * (angle_t[centre] - angle[centre]))) / 3
    assert np.allclose(shift, t)
    # a vacancy: its neighbours keep their direction, with two of three bonds (order 2/3);
    # with separate candidate neighbours the point itself is skipped
    victim = np.argmin(np.linalg.norm(pos, axis=1))
    left = np.delete(pos, victim, axis=0)
    ang2, order2 = bond_orientation(left, 1.2 * 1.42, others=left)
    near = np.linalg.norm(left - pos[victim], axis=1) < 1.6
    assert np.allclose(order2[near], 2 / 3)
    assert np.allclose(wrap_angle(3 * (ang2[near] - np.delete(angle, victim)[near])), 0)
    lone, lone_order = bond_orientation(np.array([[0.0, 0.0], [50.0, 50.0]]), 2.0)
    assert np.isnan(lone).all() and np.all(lone_order == 0)
    with pytest.raises(ValueError, match="symmetry"):
        bond_orientation(pos, 1.7, symmetry=0)


def test_von_mises_per_group_recovers_each_peak():
    rng = np.random.default_rng(0)
    true = np.array([0.3, 1.2, -2.0, 2.9])
    groups = rng.integers(0, 4, 4000)
    angles = wrap_angle(true[groups] + rng.normal(0, 0.1, len(groups)))
    mix = von_mises_per_group(angles, groups)
    assert np.all(np.abs(wrap_angle(mix.means - true)) < 0.01)
    assert np.all((mix.concentrations > 70) & (mix.concentrations < 130))  # 1 / 0.1^2 = 100
    assert np.allclose(mix.weights, np.bincount(groups) / len(groups))
    assert np.array_equal(mix.labels, groups)
    # a fifth of stray, uniformly random angles in every group does not widen the peaks
    stray = rng.random(len(groups)) < 0.2
    noisy = np.where(stray, rng.uniform(-np.pi, np.pi, len(groups)), angles)
    robust = von_mises_per_group(noisy, groups)
    assert np.all(np.abs(wrap_angle(robust.means - true)) < 0.05)
    assert np.all(robust.concentrations > 40)
    grid = np.linspace(-np.pi, np.pi, 2001)
    assert abs(mix.pdf(grid).sum() * (grid[1] - grid[0]) - 1) < 1e-3
    with pytest.raises(ValueError, match="same length"):
        von_mises_per_group(angles, groups[:-1])


def test_zcontrast_ratio_of_se_in_an_s2_column():
    assert zcontrast_ratio([34, 16], [16, 16], 2.0) == pytest.approx((34**2 + 16**2) / 512)
    lo, hi = zcontrast_ratio([34, 16], [16, 16], 1.6), zcontrast_ratio([34, 16], [16, 16], 2.0)
    assert 2.1 < lo < hi < 2.8
    assert zcontrast_ratio([16, 16], [16, 16], 1.7) == 1.0
    with pytest.raises(ValueError, match="exponent"):
        zcontrast_ratio([34], [16], 0.0)


def test_column_intensities_measure_blob_heights_above_the_background():
    rows, cols = np.mgrid[:64, :64]
    image = np.full((64, 64), 10.0) + 0.01 * cols  # a gently sloping background
    sites = np.array([[16.0, 16.0], [16.0, 48.0], [48.0, 32.0]])
    heights = np.array([5.0, 10.0, 15.0])
    for (r, c), h in zip(sites, heights):
        image += h * np.exp(-((rows - r) ** 2 + (cols - c) ** 2) / (2 * 1.5**2))
    got = column_intensities(image, sites, radius=0, background_size=15)
    assert np.allclose(got / got[0], heights / heights[0], rtol=0.03)
    assert np.allclose(got, heights, rtol=0.05)
    edge = column_intensities(image, [[0.0, 5.0]], radius=1)
    assert np.isnan(edge[0])


def test_within_group_r_ignores_a_trend_between_groups():
    rng = np.random.default_rng(1)
    groups = np.repeat(np.arange(10), 200)
    level = np.linspace(0, 5, 10)[groups]
    inside = rng.normal(size=len(groups))
    truth = level + inside
    trend_only = level + rng.normal(0, 0.01, len(groups))  # knows the group means only
    assert np.corrcoef(truth, trend_only)[0, 1] > 0.8  # pooled r looks good
    assert within_group_abs_r(truth, trend_only, groups) < 0.15
    assert within_group_abs_r(truth, -inside, groups) > 0.99  # the sign does not matter
    assert np.isnan(within_group_abs_r(truth[:5], truth[:5], groups[:5]))
    with pytest.raises(ValueError, match="groups"):
        within_group_abs_r(truth, truth, groups[:-1])


def test_site_inputs_use_the_point_check():
    assert coordination_numbers(np.zeros((0, 2)), 1.0).shape == (0,)
    with pytest.raises(ValueError, match="NaN"):
        coordination_numbers(np.array([[0.0, np.nan], [1.0, 1.0]]), 1.5)
    with pytest.raises(ValueError, match="sites"):
        column_intensities(np.zeros((16, 16)), np.zeros((3, 1)))
    # extra columns (e.g. a class) are ignored
    pos = _honeycomb(4)
    labelled = np.column_stack([pos, np.arange(len(pos)) % 2])
    np.testing.assert_array_equal(coordination_numbers(labelled, 1.7),
                                  coordination_numbers(pos, 1.7))


def test_bond_orientation_reads_a_known_bond_direction():
    # three bonds at 30, 150 and 270 degrees (arctan2(d_row, d_col)): direction pi / 6
    phi = np.radians([30.0, 150.0, 270.0])
    pts = np.r_[[[0.0, 0.0]], np.c_[np.sin(phi), np.cos(phi)]]
    angle, order = bond_orientation(pts[:1], 1.5, others=pts)
    assert angle[0] == pytest.approx(np.pi / 6) and order[0] == pytest.approx(1.0)
