"""Class changes along trajectories (majority filter, events) and their scoring against true
events (notebook 02's shape transitions)."""

from __future__ import annotations

import numpy as np
import pytest

from helpers.analysis.scores import event_scores
from helpers.analysis.transitions import class_changes, majority_filter


def test_majority_filter_removes_single_frame_flicker_only():
    labels = np.array([0, 0, 1, 0, 0, 2, 2, 2, 1, 1, 1])
    out = majority_filter(labels, 3)
    np.testing.assert_array_equal(out, [0, 0, 0, 0, 0, 2, 2, 2, 1, 1, 1])
    np.testing.assert_array_equal(majority_filter(labels, 1), labels)
    # a tie keeps the sample's own label (ends of the sequence, three different neighbours)
    np.testing.assert_array_equal(majority_filter(np.array([0, 1, 2]), 3), [0, 1, 2])


def test_class_changes_per_track_with_gaps_and_unsorted_input():
    track = np.array([5, 5, 5, 5, 5, 7, 7, 7, 7])
    frame = np.array([0, 1, 2, 4, 5, 3, 4, 5, 6])  # track 5 skips frame 3
    labels = np.array([0, 0, 1, 1, 1, 2, 2, 0, 0])
    order = np.random.default_rng(0).permutation(len(track))
    events = class_changes(track[order], frame[order], labels[order], width=1)
    np.testing.assert_array_equal(events, [[5, 2, 0, 1], [7, 5, 2, 0]])
    # a single-frame excursion is no transition after the majority filter
    flicker = class_changes(np.zeros(5, int), np.arange(5), np.array([0, 0, 1, 0, 0]), width=3)
    assert flicker.shape == (0, 4)


def test_class_changes_rejects_two_samples_in_one_frame():
    with pytest.raises(ValueError, match="one sample per"):
        class_changes(np.array([1, 1]), np.array([3, 3]), np.array([0, 1]))
    with pytest.raises(ValueError, match="width"):
        majority_filter(np.array([0, 1]), 2)


def test_event_scores_match_same_object_within_tolerance_one_to_one():
    truth = np.array([[1, 10], [1, 20], [2, 5]])
    found = np.array([[1, 11], [1, 12], [2, 7], [3, 5]])
    s = event_scores(truth, found, tolerance=1)
    # (1, 11) matches (1, 10); (1, 12) is a duplicate; (2, 7) is too late; object 3 has none
    assert (s.n_true, s.n_pred, s.n_matched) == (3, 4, 1)
    assert s.precision == pytest.approx(1 / 4) and s.recall == pytest.approx(1 / 3)
    assert s.f1 == pytest.approx(2 / 7)
    assert event_scores(truth, found, tolerance=2).n_matched == 2
    perfect = event_scores(truth, truth)
    assert perfect.f1 == 1.0 and perfect.precision == 1.0


def test_event_scores_maximise_matches_not_greedy_nearest():
    # found 11 is one frame from both true events; pairing it with 12 would strand found 13,
    # so the assignment must pair 11-10 and 13-12
    truth = np.array([[4, 10], [4, 12]])
    found = np.array([[4, 11], [4, 13]])
    assert event_scores(truth, found, tolerance=1).n_matched == 2


def test_event_scores_empty_and_bad_input():
    empty = event_scores(np.zeros((0, 2), int), np.zeros((0, 2), int))
    assert np.isnan(empty.f1) and empty.n_matched == 0
    assert event_scores(np.array([[1, 2]]), np.zeros((0, 4), int)).recall == 0.0
    with pytest.raises(ValueError, match="integer"):
        event_scores(np.array([[1.5, 2.0]]), np.array([[1, 2]]))


def test_class_changes_are_the_changes_of_the_filtered_labels():
    rng = np.random.default_rng(3)
    labels = np.repeat(rng.integers(0, 3, 12), rng.integers(1, 5, 12))
    frames = np.arange(len(labels))
    smooth = majority_filter(labels, 3)
    at = np.flatnonzero(np.diff(smooth)) + 1
    expected = np.column_stack([np.full(len(at), 9), frames[at], smooth[at - 1], smooth[at]])
    np.testing.assert_array_equal(class_changes(np.full(len(labels), 9), frames, labels, 3),
                                  expected.reshape(-1, 4))


def test_event_scores_tolerance_zero_needs_the_same_frame():
    truth = np.array([[1, 10, 0, 1], [2, 4, 1, 2]])
    found = np.array([[1, 10, 0, 1], [2, 5, 1, 2]])
    s = event_scores(truth, found, tolerance=0)
    assert s.n_matched == 1 and s.pairs.tolist() == [[0, 0]]
    assert event_scores(truth, found, tolerance=1).n_matched == 2
    with pytest.raises(ValueError, match="tolerance"):
        event_scores(truth, found, tolerance=-1)
