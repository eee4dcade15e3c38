"""Models: the invariant VAE family, im2spec/spec2im, DIVIDE.

All share one estimator style: ``fit``, ``encode``/``predict``, ``save``/``load``.
"""
from .base import CheckpointError, Estimator, NotFittedError, TrainingDivergedError
from .divide import (
    ActiveLearningResult,
    Divide,
    DividePrediction,
    active_learning,
    interval_coverage,
    recovery_r2,
)
from .im2spec import Im2Spec, Spec2Im, TrainingHistory
from .metrics import (
    angle_error,
    angle_leak,
    circular_correlation,
    confusion_matrix,
    hungarian_accuracy,
)
from .sivae import (
    MultiScalePatches,
    ProgressiveResult,
    grid_centres,
    multiscale_patches,
    progressive_fit,
)
from .vae import JRVAE, RVAE, VAE, Encoding
