"""Physics-based generators of the suite's embedded data, with known ground truth.

Every generator is deterministic by ``seed`` and returns a dataclass of numpy arrays.
"""

from ._lattice import LandauCoefficients, curl, landau_khalatnikov, uniaxial_coercive_field
from .alloy_lattice import (
    MOS2_LATTICE_CONSTANT,
    SPECIES_NAMES,
    AlloyLatticeSeries,
    alloy_lattice_series,
    metal_shell_offsets,
)
from .distorted_lattice import (
    REGION_NAMES,
    DistortedLatticeImage,
    ToyLattices,
    distorted_lattice_image,
    toy_lattice_sites,
    toy_lattices,
)
from .eels import EELS_COMPONENTS, EELSSpectrumImage, eels_abundances, eels_spectrum_image
from .ferroelectric import (
    HysteresisMap,
    SwitchingSequence,
    TemperatureSeries,
    domain_walls,
    ferroelectric_switching,
    hysteresis_map,
    temperature_series,
    triangle_voltage,
    wall_orientation,
)
from .field_driven import (
    FAMILIES,
    PARAM_BOUNDS,
    PARAM_NAMES,
    DrivenLattice,
    DrivenResult,
    TrajectorySet,
    curl_objective,
    driven_lattice,
    relaxor_lattice,
    run_trajectories,
    trajectory_families,
    trajectory_from_params,
)
from .graphene import CC_BOND, GrapheneMovie, graphene_local_order, graphene_movie
from .haadf_imaging import (
    IDEAL_DETECTOR,
    HAADFConditions,
    HAADFFrames,
    detector_signal,
    graphene_haadf_frames,
    haadf_counts,
    haadf_fraction,
    haadf_image,
    random_haadf_conditions,
)
from .loop_factors import LOOP_FACTOR_NAMES, LoopFactorMap, loop_factor_map
from .mechanisms import (
    MechanismData,
    hysteresis_mechanisms,
    lattice_mechanisms,
    mechanism_benchmark,
    site_windows,
)
from .objects import GlyphSet, RotatedObjects, card_glyphs, rotated_objects
from .pfm_switching_complexity import ComplexitySwitching, switching_complexity_sequence
from .protein import ProteinMovie, nematic_order, protein_assembly_movie
from .scan_distortion import ScanDistortionStack, scan_distortion_stack
from .si_dopant import (
    PEAK_OFFSET,
    SiHopRates,
    SiTransitions,
    SteeringEpisode,
    bond_directions,
    hop_distance,
    local_offsets,
    neighbour_index,
    neighbour_sites,
    si_transition_experiment,
    site_position,
    sites_at_distance,
)
from .two_scale_domains import TwoScaleDomains, two_scale_domains
