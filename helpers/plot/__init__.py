"""Figures a scientist would put in a paper: labelled axes, colour bars, units.

Every figure function is named ``plot_*``, takes numpy arrays (or a simulator's dataclass) and
returns the matplotlib ``Figure`` (or draws on a given ``ax``). Notebooks import the package
as ``import helpers.plot as hplot`` and call ``hplot.plot_...``; every figure function is
exported here. :func:`tile_mosaic` is the one array helper (it tiles images into one image,
draws nothing).
"""

from .crystallography import (
    plot_amplitude_recovery,
    plot_amplitude_regression,
    plot_distortion_mode,
    plot_site_map,
    plot_zcontrast_test,
)
from .distortion import (
    plot_corrected_averages,
    plot_field_along_scan,
    plot_method_errors,
    plot_row_jitter,
    plot_scan_components,
    plot_trajectory_pca,
)
from .divide import plot_active_learning_curves, plot_component_maps, plot_recovery_scatter
from .eels import plot_map_rows, plot_scree, plot_unmixing
from .features import (
    plot_coordinates,
    plot_histograms,
    plot_latent_map,
    plot_patch_mosaic,
    plot_trajectories,
)
from .latent import (
    plot_angle_recovery,
    plot_latent_histograms,
    plot_latent_scatter,
    plot_manifold,
    plot_training_curves,
)
from .matrices import plot_matrix
from .optimisation import (
    plot_best_so_far,
    plot_field_trajectories,
    plot_latent_objective,
    plot_latent_traversal,
    plot_polarisation_curl,
)
from .previews import (
    plot_preview_graphene,
    plot_preview_hysteresis,
    plot_preview_protein,
    plot_preview_switching,
    plot_preview_temperature_series,
)
from .spectra import (
    plot_error_maps,
    plot_latent_classes,
    plot_latent_mosaic,
    plot_loop_grid,
    plot_loop_predictions,
    plot_patch_predictions,
)
from .steering import (
    plot_rate_cut,
    plot_rate_maps,
    plot_steering,
    plot_true_rates_and_dwells,
)
from .symmetry import plot_probability_map, plot_reliability, plot_threshold_collapse
from .tiles import tile_mosaic

__all__ = [
    "plot_active_learning_curves",
    "plot_amplitude_recovery",
    "plot_amplitude_regression",
    "plot_zcontrast_test",
    "plot_distortion_mode",
    "plot_site_map",
    "plot_angle_recovery",
    "plot_best_so_far",
    "plot_component_maps",
    "plot_coordinates",
    "plot_corrected_averages",
    "plot_field_along_scan",
    "plot_method_errors",
    "plot_row_jitter",
    "plot_scan_components",
    "plot_trajectory_pca",
    "plot_error_maps",
    "plot_field_trajectories",
    "plot_histograms",
    "plot_latent_classes",
    "plot_latent_histograms",
    "plot_latent_map",
    "plot_latent_mosaic",
    "plot_latent_objective",
    "plot_latent_scatter",
    "plot_latent_traversal",
    "plot_loop_grid",
    "plot_loop_predictions",
    "plot_manifold",
    "plot_map_rows",
    "plot_matrix",
    "plot_patch_mosaic",
    "plot_patch_predictions",
    "plot_polarisation_curl",
    "plot_preview_graphene",
    "plot_preview_hysteresis",
    "plot_preview_protein",
    "plot_preview_switching",
    "plot_preview_temperature_series",
    "plot_probability_map",
    "plot_rate_cut",
    "plot_rate_maps",
    "plot_recovery_scatter",
    "plot_scree",
    "plot_steering",
    "plot_reliability",
    "plot_threshold_collapse",
    "plot_training_curves",
    "plot_trajectories",
    "plot_true_rates_and_dwells",
    "plot_unmixing",
    "tile_mosaic",
]
