"""Pixel ownership of particles: cores grown into the foreground, single-particle masks."""

import numpy as np
import pytest

from helpers.analysis.regions import centre_masks, grow_labels
from helpers.features import extract_patches
from helpers.segment import find_particles
from helpers.simulate import protein_assembly_movie


def test_grow_labels_splits_touching_blobs_between_their_cores():
    fg = np.zeros((9, 15), bool)
    fg[2:7, 1:14] = True  # one foreground blob holding two particles
    cores = np.zeros((9, 15), int)
    cores[4, 3] = 1
    cores[4, 11] = 2
    out = grow_labels(cores, fg, max_distance=20)
    assert set(np.unique(out)) == {0, 1, 2}
    assert (out[fg] > 0).all() and (out[~fg] == 0).all()
    assert (out[:, :7][fg[:, :7]] == 1).all() and (out[:, 8:][fg[:, 8:]] == 2).all()
    # a short reach leaves far foreground pixels unassigned, cores are always kept
    near = grow_labels(cores, fg, max_distance=1)
    assert near[4, 3] == 1 and near[4, 7] == 0 and near[4, 4] == 1


def test_grow_labels_rejects_bad_input():
    with pytest.raises(ValueError, match="same shape"):
        grow_labels(np.zeros((4, 4), int), np.zeros((4, 5), bool), 2)
    with pytest.raises(ValueError, match="non-negative integers"):
        grow_labels(np.full((4, 4), 0.5), np.zeros((4, 4), bool), 2)
    assert (grow_labels(np.zeros((4, 4), int), np.ones((4, 4), bool), 2) == 0).all()


def test_centre_masks_pick_the_particle_at_the_centre():
    lp = np.zeros((2, 5, 5))
    lp[0, 1:4, 1:4] = 7
    lp[0, 0, :] = 3
    lp[1, 2, 3] = 4  # centre pixel is background: the nearest label is used
    m = centre_masks(lp)
    assert m[0].sum() == 9 and not m[0, 0].any()
    assert m[1].sum() == 1 and m[1, 2, 3]


def test_single_rod_patches_keep_one_rod():
    movie = protein_assembly_movie(n_frames=1, size=128, seed=2)
    frame = movie.frames[0]
    cores = find_particles(frame, core=0.9, sigma=0.5, min_area=10)
    fg = find_particles(frame, sigma=0.5, min_area=10).labels > 0
    own = grow_labels(cores.labels, fg, max_distance=4)
    # every core gets a footprint of a rod (12 x 3.5 nm at 0.5 nm/px, tip-broadened)
    area = np.bincount(own.ravel())[1:]
    assert np.median(area) > 2 * np.median(cores.area)
    assert np.median(area) < 12 / 0.5 * 8 / 0.5
    patches = extract_patches(own, cores.coords, 32)
    masks = centre_masks(patches.patches)
    assert (masks.sum(axis=(1, 2)) > 0).all()
    assert np.all([np.unique(p[m]).size == 1 for p, m in zip(patches.patches, masks)])
