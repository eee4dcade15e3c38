"""Analysis of what models and detectors found: latents, transitions, regions, spectra,
circular statistics, and every score against ground truth.

- :mod:`~helpers.analysis.latents`: which latents carry information (KL per latent), and a
  data-derived orientation of the latent axes;
- :mod:`~helpers.analysis.transitions`: class fractions and histograms per condition, where a
  population changes, class changes along trajectories;
- :mod:`~helpers.analysis.sigmoid_transition`: a smooth step fitted to a per-condition
  descriptor, locating a diffuse transition between grid points;
- :mod:`~helpers.analysis.site_statistics`: coordination numbers, bond orientations, one von
  Mises peak per group of sites, Z-contrast ratios and background-subtracted column intensities;
- :mod:`~helpers.analysis.regions`: particle cores grown into footprints, per-patch masks;
- :mod:`~helpers.analysis.spectra`: (patch, spectrum) pairs, spatial splits, loop areas,
  maps and latent grids;
- :mod:`~helpers.analysis.circular`: wrapped angles, circular means, von Mises mixtures;
- :mod:`~helpers.analysis.symmetry`: Bayesian evidence for a symmetric against a distorted
  lattice, the P = 1/2 threshold, a two-state mixture decision on latents;
- :mod:`~helpers.analysis.unmixing`: PCA scree and its rank, NMF maps of a spectrum image
  (optionally seeded with reference fingerprints), the interpolation baseline for sparse maps;
- :mod:`~helpers.analysis.local_crystallography`: columns indexed on a fitted ideal
  lattice, displacements, species from intensities, neighbour shells, a learned distortion
  mode and the regression of its amplitude on local and global composition;
- :mod:`~helpers.analysis.repeats`: confidence intervals of means over seeds or repeats,
  and the verdicts worded from them (:func:`interval_side`, :func:`margin_side`);
- :mod:`~helpers.analysis.scores`: scores against the truth, always ``(y_true, y_pred)``
  as in scikit-learn.

The public names of all of them are importable from here (``from helpers.analysis import
kl_per_latent, circular_correlation``).
"""

from .circular import VonMisesMixture, circular_mean, fit_von_mises_mixture, wrap_angle
from .distortion import (
    Lattice,
    TrajectoryPCA,
    fit_lattice,
    full_trajectories,
    locate_atoms,
    rigid_shifts,
    row_polynomial,
    row_profile,
    trajectory_pca,
    warp_frame,
)
from .latents import DEFAULT_THRESHOLD, active_latents, kl_per_latent, orient_latents
from .local_crystallography import (
    AmplitudeRegression,
    ChainDistortion,
    DistortionTest,
    IdealLattice,
    amplitude_regression,
    chain_distortion,
    column_intensity,
    complete_shells,
    distortion_test,
    find_columns,
    fit_ideal_lattice,
    local_environments,
    order_parameter,
    refine_centroids,
    refine_gaussian,
    shell_fractions,
    two_species,
)
from .regions import centre_masks, grow_labels
from .repeats import bounded_interval, interval_side, margin_side, mean_interval, ratio_interval
from .scores import (
    DetectionScores,
    EventScores,
    angle_error,
    angle_leak,
    best_threshold_accuracy,
    binomial_margin,
    circular_correlation,
    cluster_purity,
    confusion_matrix,
    coverage_verdict,
    detection_scores,
    error_curve_auc,
    error_ratio,
    event_scores,
    expected_calibration_error,
    hungarian_accuracy,
    hungarian_correct,
    interval_coverage,
    knn_accuracy,
    knn_r2,
    latent_correlations,
    link_accuracy,
    link_precision,
    match_points,
    normalized_rmse,
    paired_accuracy_test,
    patch_ssim,
    r2_score,
    recovery_r2,
    regret_auc,
    reliability_curve,
    within_group_abs_r,
)
from .sigmoid_transition import SigmoidTransition, fit_sigmoid_transition
from .site_statistics import (
    bond_orientation,
    column_intensities,
    coordination_numbers,
    von_mises_per_group,
    zcontrast_ratio,
)
from .spectra import (
    PairSet,
    SpatialSplit,
    latent_grid,
    loop_area,
    loop_map_from_arrays,
    nearest_on_grid,
    patch_loop_pairs,
    spatial_split,
    values_to_map,
)
from .symmetry import (
    LatentMixture,
    SymmetryPosterior,
    effective_atoms,
    lattice_design,
    log_evidence,
    median_p_symmetric,
    posterior_threshold,
    rotational_asymmetry,
    symmetry_posterior,
    threshold_delta,
    two_state_mixture,
)
from .transitions import (
    Transition,
    class_changes,
    class_fractions,
    group_histograms,
    locate_transition,
    majority_filter,
    transition_matrix,
)
from .unmixing import (
    Unmixing,
    interpolate_sparse,
    line_fingerprint,
    pca_scree,
    scree_rank,
    unmix_spectra,
)

__all__ = [
    # circular
    "VonMisesMixture", "circular_mean", "fit_von_mises_mixture", "wrap_angle",
    # distortion
    "Lattice", "TrajectoryPCA", "fit_lattice", "full_trajectories", "locate_atoms",
    "rigid_shifts", "row_polynomial", "row_profile", "trajectory_pca", "warp_frame",
    # latents
    "DEFAULT_THRESHOLD", "active_latents", "kl_per_latent", "orient_latents",
    # local crystallography
    "AmplitudeRegression", "ChainDistortion", "IdealLattice", "amplitude_regression",
    "chain_distortion", "column_intensity", "complete_shells", "find_columns",
    "fit_ideal_lattice", "DistortionTest", "distortion_test",
    "local_environments", "order_parameter", "refine_centroids", "refine_gaussian",
    "shell_fractions", "two_species",
    # regions
    "centre_masks", "grow_labels",
    # scores
    "DetectionScores", "angle_error", "angle_leak", "circular_correlation", "cluster_purity",
    "confusion_matrix", "detection_scores", "error_ratio", "hungarian_accuracy",
    "hungarian_correct", "paired_accuracy_test",
    "interval_coverage", "latent_correlations", "link_accuracy", "link_precision",
    "match_points",
    "normalized_rmse", "patch_ssim", "r2_score", "recovery_r2",
    "expected_calibration_error", "knn_r2", "regret_auc", "reliability_curve",
    "knn_accuracy", "binomial_margin", "coverage_verdict", "error_curve_auc",
    "EventScores", "event_scores", "within_group_abs_r", "best_threshold_accuracy",
    # sigmoid transition
    "SigmoidTransition", "fit_sigmoid_transition",
    # site statistics
    "bond_orientation", "column_intensities", "coordination_numbers", "von_mises_per_group",
    "zcontrast_ratio",
    # spectra
    "PairSet", "SpatialSplit", "latent_grid", "loop_area", "loop_map_from_arrays",
    "nearest_on_grid", "patch_loop_pairs", "spatial_split", "values_to_map",
    # symmetry
    "LatentMixture", "SymmetryPosterior", "effective_atoms", "lattice_design", "log_evidence",
    "median_p_symmetric", "posterior_threshold", "rotational_asymmetry", "symmetry_posterior",
    "threshold_delta", "two_state_mixture",
    # repeats
    "bounded_interval", "interval_side", "margin_side", "mean_interval", "ratio_interval",
    # unmixing
    "Unmixing", "interpolate_sparse", "line_fingerprint", "pca_scree", "scree_rank",
    "unmix_spectra",
    # transitions
    "Transition", "class_changes", "class_fractions", "group_histograms", "locate_transition",
    "majority_filter", "transition_matrix",
]
