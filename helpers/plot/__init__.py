"""Figures a scientist would put in a paper: labelled axes, colour bars, units.

Functions take numpy arrays and return the matplotlib ``Figure`` (or draw on a given ``ax``).
"""

from .divide import active_learning_curves, component_maps, latent_scatter, recovery_scatter
from .features import histograms, latent_map, patch_mosaic, show_coordinates, show_trajectories
from .latent import mosaic, plot_angle_recovery, plot_latent_histograms, plot_manifold
from .previews import (
    preview_graphene,
    preview_hysteresis,
    preview_protein,
    preview_switching,
    preview_temperature_series,
)
from .spectra import (
    plot_error_maps,
    plot_latent_classes,
    plot_latent_mosaic,
    plot_loop_grid,
    plot_loop_predictions,
    plot_patch_predictions,
)
