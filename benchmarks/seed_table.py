"""The README's table of headline results across seeds, from a seed sweep's summary.

    python -m helpers.run --seeds 0-2 --jobs 2 --out runs/seeds
    python benchmarks/seed_table.py runs/seeds/summary.json

Prints a markdown table: for each notebook's headline metrics (each beside the trivial
baseline it must beat, where the notebook computes one), mean ± sd, minimum and maximum over
seeds.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

# Headline metrics per notebook, with the baseline each is read against (None: no baseline).
HEADLINES = {
    "00_invariant_vae_basics": [("angle_circular_r", "regress_angle_r"),
                                ("shape_abs_r", "vae_shape_abs_r"),
                                ("rvae_angle_leak_r", "vae_angle_leak_r"),
                                ("offset_r_min", None),
                                ("regress_axis_r", "regress_flipped_fraction")],
    "01_graphene_si_dynamics": [("segmentation_f1", None), ("si_c_accuracy", None),
                                ("angle_circular_r", None),
                                ("order_within_frame_r", "order_within_frame_r_baseline"),
                                ("rvae_order_r2_knn", "vae_order_r2_knn"),
                                ("frame_mean_order_r", "frame_number_order_r"),
                                ("frame_mean_order_r", "frame_mean_order_r_best_descriptor"),
                                ("sublattice_accuracy", "sublattice_accuracy_bond_geometry"),
                                ("grain_accuracy", "grain_accuracy_bond_geometry")],
    "02_protein_self_assembly": [("detection_recall", None), ("tracking_accuracy", None),
                                 ("tracking_precision", None),
                                 ("tracking_precision_lower_bound", None),
                                 ("angle_circular_r", "moment_angle_circular_r"),
                                 ("order_r", "frame_number_order_r"),
                                 ("order_r", "moment_order_r"),
                                 ("shape_latent_r2_knn", "footprint_area_r2_knn"),
                                 ("shape_class_accuracy", "shape_class_majority_baseline"),
                                 ("shape_class_accuracy", "footprint_area_class_accuracy"),
                                 ("transition_f1", "footprint_area_transition_f1")],
    "03_batio3_phase_transition": [("tc_error_k", "tc_error_k_std_baseline"),
                                   ("tc_error_k", "tc_error_k_patch_mean_baseline"),
                                   ("tc_se_k", "tc_se_k_std_baseline"),
                                   ("morphology_r", "morphology_r_std_baseline"),
                                   ("morphology_r", "morphology_r_patch_std_baseline"),
                                   ("morphology_r", "morphology_r_temperature_baseline"),
                                   ("wall_auc_small_window_tolerant",
                                    "wall_auc_small_window_contrast_baseline")],
    "04_pfm_switching": [("switching_latent_r", "switching_patch_mean_r"),
                         ("wall_auc", "wall_auc_patch_std"),
                         ("wall_auc", "wall_auc_darkest_pixel"),
                         ("complexity_latent_r2_knn", "complexity_r2_knn_dark_pixels"),
                         ("complexity_latent_r2_knn", "complexity_r2_knn_patch_std"),
                         ("complexity_latent_r2_knn", "complexity_r2_knn_mean_dark_pixels"),
                         ("complexity_latent_r2_knn_blocked",
                          "complexity_r2_knn_mean_dark_pixels_blocked"),
                         ("complexity_own_latent_r2_knn", None),
                         ("wall_angle_circular_r", "wall_angle_circular_r_null95")],
    "05_im2spec_spec2im": [("im2spec_r2_latent10", "im2spec_r2_latent2"),
                           ("im2spec_r2_latent10", "im2spec_r2_polarity_baseline"),
                           ("im2spec_r2_gain", None),
                           ("wall_error_ratio", "wall_error_ratio_polarity_baseline"),
                           ("spec2im_ssim", "spec2im_ssim_mean_patch"),
                           ("spec2im_ssim", "spec2im_ssim_nearest_spectrum")],
    "06_jtrvae": [("class_accuracy", "rvae_kmeans_accuracy"),
                  ("class_accuracy", "spectrum_kmeans_accuracy"),
                  ("class_accuracy_difficulty_2", "spectrum_kmeans_accuracy_difficulty_2"),
                  ("angle_circular_r", None),
                  ("microscopy_class_accuracy", "microscopy_centre_intensity_accuracy"),
                  ("defect_class_accuracy", "defect_centre_intensity_accuracy")],
    "07_si_vae": [("r_fine_at_own_scale", "r_fine_patch_mean_baseline"),
                  ("r_coarse_at_own_scale", "r_coarse_patch_mean_baseline"),
                  ("cross_scale_r_max", None), ("progressive_vs_scratch", None),
                  ("recovery_progressive", "recovery_patch_mean_baseline")],
    "08_divide": [("structure_selection_accuracy", None),
                  ("structure_selection_accuracy_heldout", None),
                  ("structure_heldout_resolved", None), ("component_r2_min", None),
                  ("coverage_95", None), ("active_to_random_auc_ratio", None),
                  ("loops_variant_knn_accuracy", "loops_variant_chance"),
                  ("loops_variant_knn_accuracy", "loops_variant_pixels_knn_accuracy"),
                  ("loops_r2", "loops_r2_ridge_baseline")],
    "09_stem_scan_distortions": [("distortion_field_r2", "row_poly_field_r2"),
                                 ("corrected_position_error_pm", "row_poly_baseline_error_pm"),
                                 ("corrected_position_error_pm", "rigid_baseline_error_pm"),
                                 ("strain_preserved_r", "rigid_strain_r"),
                                 ("drift_component_r", None), ("coverage_95", None)],
    "10_parallel_gp_eels": [("map_r2_shared", "map_r2_nmf"),
                            ("weak_r2_shared", "weak_r2_independent"),
                            ("weak_component_gain", None),
                            ("ti3_abundance_r2", "ti3_abundance_r2_nmf"),
                            ("sparse20_r2", "sparse20_r2_bicubic"),
                            ("sparse20_r2_weak", "sparse20_r2_weak_bicubic"),
                            ("coverage_95", None)],
    "11_latent_bayesian_optimisation": [("vae_reconstruction_r2", "pca_reconstruction_r2"),
                                        ("surrogate_r2_response_kernel",
                                         "surrogate_r2_default_kernel"),
                                        ("bo_success_rate", "random_success_rate"),
                                        ("bo_success_rate", "default_kernel_bo_success_rate"),
                                        ("bo_vs_random_auc_ratio", None),
                                        ("response_vs_default_kernel_auc_ratio", None),
                                        ("latent_vs_raw_auc_ratio", None)],
    "12_bayesian_symmetry": [("calibration_ece", None),
                             ("calibration_brier", "calibration_brier_prior_only"),
                             ("threshold_scaling_error", None),
                             ("rvae_delta_r2_knn", "patch_std_delta_r2_knn"),
                             ("region_accuracy", None),
                             ("accuracy_all_atoms", "majority_baseline_accuracy")],
    "13_mos2_res2_transition": [("species_accuracy", "species_majority_accuracy"),
                                ("amplitude_r", "raw_displacement_amplitude_r"),
                                ("local_coefficient_rel_error", "local_only_coefficient_rel_error"),
                                ("global_coefficient_rel_error",
                                 "raw_global_coefficient_rel_error"),
                                ("global_coefficient_rel_error",
                                 "shell_global_coefficient_rel_error"),
                                ("phase_map_accuracy", "composition_phase_accuracy"),
                                ("rvae_amplitude_r2_knn", "species_x_amplitude_r2_knn"),
                                ("mos2_distortion_vs_noise", None)],
    "14_si_dopant_steering": [("rate_map_r2", "constant_rate_r2"),
                              ("steering_success", "random_beam_success"),
                              ("uncertainty_coverage_90", None),
                              ("heldout_loglik_learned", "heldout_loglik_constant")],
}


def cell(stats: dict | None) -> str:
    if not stats:
        return "n/a"
    return f"{stats['mean']:.3f} ± {stats['sd']:.3f} [{stats['min']:.3f}, {stats['max']:.3f}]"


def table(summary: dict) -> str:
    aggregates = summary.get("aggregates", {})
    seeds = summary.get("seeds", [])
    lines = [f"Seeds {', '.join(map(str, seeds))}, {summary.get('scale', '?')} scale: "
             "mean ± sd [min, max] over seeds (for errors and leaks, lower is better: read the "
             "max).", "",
             "| notebook | metric | model | baseline metric | baseline |",
             "|---|---|---|---|---|"]
    for name, pairs in HEADLINES.items():
        stats = aggregates.get(name, {})
        for metric, base in pairs:
            lines.append(f"| {name} | {metric} | {cell(stats.get(metric))} | {base or '-'} | "
                         f"{cell(stats.get(base)) if base else '-'} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("summary", type=Path, help="summary.json of a --seeds run")
    args = parser.parse_args()
    print(table(json.loads(args.summary.read_text())))


if __name__ == "__main__":
    main()
