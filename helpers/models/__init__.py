"""Models: the invariant VAE family, im2spec/spec2im, DIVIDE, the U-Net.

All share one estimator base (``base.Estimator``: seeding, device, one checkpoint format) and
one training loop (``training.run_epochs``); every ``fit`` returns a ``training.History``.
"""
from .atom_finder import AtomFinder, bin_images, train_atom_finder
from .base import CheckpointError, Estimator, NotFittedError, TrainingDivergedError
from .distortion_gp import DistortionGP, DistortionPrediction
from .divide import (
    ActiveLearningResult,
    Divide,
    DividePrediction,
    StructureSelection,
    active_learning,
    select_structure,
)
from .im2spec import Im2Spec, Spec2Im
from .latent_bo import (
    OptimisationTrace,
    Surrogate,
    bayes_opt,
    fit_surrogate,
    local_refine,
    random_search,
)
from .parallel_gp import GPMaps, ParallelGP
from .rates import RateEnsemble, RatePrediction
from .response_kernel import ResponseKernel, lagged_response, response_features
from .sivae import (
    MultiScalePatches,
    ProgressiveResult,
    grid_centres,
    multiscale_patches,
    progressive_fit,
)
from .standardize import Standardize, standardize_images
from .steering import GreedySteering, RandomBeam, steering_trials
from .training import History, run_epochs
from .trajectory_vae import TrajectoryVAE
from .unet import UNet
from .vae import JRVAE, RVAE, VAE, Encoding
