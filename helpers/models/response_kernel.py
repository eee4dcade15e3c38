"""A Gaussian-process kernel for objectives that are time averages of a response to a field.

Bayesian optimisation of a *process* searches a box of parameters ``x`` (latent codes, or a
family's raw parameters) that each stand for a field trajectory ``E(t)``. When the objective
is a time average over the run of some response of the sample to the field, such as the
mean curl magnitude of the polarisation in :mod:`helpers.simulate.field_driven`, the kernel
can compare two points by the trajectories they stand for instead of by their coordinates::

    R_t    = a R_{t-1} + (1 - a) E_t,   a = exp(-dt / tau)          (lagged response, R_0 = 0)
    phi_t  = |R_t| (1, cos 2 theta_t, sin 2 theta_t)                 (theta_t: direction of R_t)
    k(x, x') = sigma^2 (1 / T') sum_t exp(-1/2 sum_c (phi_tc(x) - phi_tc(x'))^2 / l_c^2)

``R`` is a first-order lagged copy of the field (time constant ``tau``), continued for
``n_relax`` steps at zero field after the drive, so ``T' = T + n_relax`` steps in all (or
every ``stride``-th of them). ``phi`` keeps the response's magnitude and its direction
modulo 180 degrees, so the kernel is exactly invariant to ``E -> -E`` (a sign flip changes
no curl magnitude). Two runs are compared step by step, at the same time: the kernel is the
covariance of ``J(x) = (1/T') sum_t g_t(phi_t(x))`` with one unknown function ``g_t`` per
step, drawn independently from a GP with an RBF kernel (variance ``T' sigma^2``). The
objective is modelled as a time average of what the lagged response does at each moment of
the run, which is what a time-averaged observable of a relaxing sample is to first order;
the same response early and late in the run may count differently. ``tau``, the three
lengthscales ``l`` and ``sigma^2`` are hyperparameters, fitted by the marginal likelihood
with the rest of the GP.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import gpytorch
import numpy as np
import torch
from gpytorch.constraints import Positive
from gpytorch.priors import LogNormalPrior

__all__ = ["ResponseKernel", "lagged_response", "response_features"]


def lagged_response(field: torch.Tensor, tau: torch.Tensor | float, dt: float,
                    n_relax: int = 0, stride: int = 1) -> torch.Tensor:
    """First-order lagged copy of a field, continued at zero field after it ends.

    Args:
        field: ``(..., T, C)`` field samples, ``dt`` apart.
        tau: time constant (same units as ``dt``, > 0); a tensor keeps the gradient.
        dt: time between samples. n_relax: zero-field steps appended after the field.
        stride: return every ``stride``-th step only (from the first).

    Returns:
        ``(..., ceil((T + n_relax) / stride), C)``: ``R_t = a R_{t-1} + (1 - a) E_t`` with
        ``a = exp(-dt/tau)`` and ``R_0 = 0`` before the first sample, as one matrix product
        (differentiable in ``tau`` and the field).
    """
    n_times = field.shape[-2]
    out = torch.arange(0, n_times + n_relax, stride, dtype=field.dtype, device=field.device)
    lag = out.unsqueeze(-1) - torch.arange(n_times, dtype=field.dtype, device=field.device)
    rate = dt / torch.as_tensor(tau, dtype=field.dtype, device=field.device)
    # (1 - a) a^lag for lag >= 0, zero for inputs after the output step
    weights = -torch.expm1(-rate) * torch.exp(-rate * lag.clamp_min(0)) * (lag >= 0)
    return weights @ field


def response_features(response: torch.Tensor) -> torch.Tensor:
    """``(..., T, 2)`` in-plane response -> ``(..., T, 3)``: ``|R| (1, cos 2 theta, sin 2 theta)``.

    Magnitude and direction modulo 180 degrees: the same for ``R`` and ``-R``, continuous
    at ``R = 0`` (all three go to 0 there).
    """
    if response.shape[-1] != 2:
        raise ValueError(f"the response must have 2 in-plane components in its last axis, got "
                         f"shape {tuple(response.shape)}")
    rx, ry = response[..., 0], response[..., 1]
    magnitude = torch.sqrt(rx * rx + ry * ry + 1e-12)
    return torch.stack([magnitude, (rx * rx - ry * ry) / magnitude, 2 * rx * ry / magnitude],
                       dim=-1)


class ResponseKernel(gpytorch.kernels.Kernel):
    """The time-averaged response kernel (module docstring) on the unit cube of one box.

    The GP of :func:`helpers.models.bayes_opt` works on the box mapped to the unit cube; this
    kernel maps a point back to the box, asks ``field`` for the trajectory it stands for and
    compares the responses. ``bayes_opt(kernel=...)`` wants a fresh kernel every round, so
    pass a factory: ``functools.partial(ResponseKernel, field, bounds, dt=..., n_relax=...)``.
    Learned: ``tau`` (the response time), ``feature_lengthscale`` ``(3,)`` (of the
    magnitude and the two direction components) and ``outputscale`` (``sigma^2``).

    Args:
        field: differentiable torch function, ``(..., d)`` points in the box's units ->
            ``(..., T, 2)`` field trajectories (float64), e.g. a VAE's decoder followed by
            the instrument's clipping.
        bounds: ``(d, 2)`` low and high of the box, as given to ``bayes_opt``.
        dt: time between the field's samples (model time units).
        n_relax: zero-field steps after the drive that the objective still averages over.
        tau: starting value and prior median of the response time (same units as ``dt``;
            log-normal prior, log-sd 1). The lengthscales have a log-normal prior of median 1
            and log-sd 1 (field units).
        stride: every ``stride``-th step of the response enters the average (1: all). The
            response changes little between samples when ``tau`` spans several of them, so a
            stride of a few costs little accuracy and saves as many times the arithmetic.
    """

    def __init__(self, field: Callable[[torch.Tensor], torch.Tensor], bounds, dt: float,
                 n_relax: int = 0, tau: float = 1.0, stride: int = 1):
        if not callable(field):
            raise TypeError("field must be a function from (..., d) torch points to (..., T, 2) "
                            "field trajectories")
        b = np.asarray(bounds, dtype=np.float64)
        if b.ndim != 2 or b.shape[1] != 2 or not (b[:, 1] > b[:, 0]).all():
            raise ValueError(f"bounds must have shape (d, 2) with high > low, got "
                             f"{np.shape(bounds)}")
        for name, value in (("dt", dt), ("tau", tau)):
            if isinstance(value, bool) or not (isinstance(value, (int, float))
                                               and 0 < value < math.inf):
                raise ValueError(f"{name} must be a positive time, got {value!r}")
        for name, value, low in (("n_relax", n_relax, 0), ("stride", stride, 1)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
                raise ValueError(f"{name} must be an integer >= {low} (time steps), got "
                                 f"{value!r}")
        super().__init__()
        self.field, self.dt, self.n_relax, self.stride = field, float(dt), int(n_relax), int(stride)
        self.register_buffer("low", torch.as_tensor(b[:, 0]))
        self.register_buffer("span", torch.as_tensor(b[:, 1] - b[:, 0]))
        # weakly informative log-normal priors (log-sd 1): with a handful of points the
        # likelihood alone can be flat in tau and in the direction lengthscales
        self.register_parameter("raw_tau", torch.nn.Parameter(torch.zeros(1)))
        self.register_constraint("raw_tau", Positive())
        self.register_prior("tau_prior", LogNormalPrior(math.log(tau), 1.0),
                            lambda module: module.tau, lambda module, value: module._set_tau(value))
        self._set_tau(tau)
        # the output scale sigma^2 (no prior, as gpytorch's ScaleKernel), held here rather
        # than in a ScaleKernel wrapper, whose batch-shape bookkeeping costs more per call
        # than this kernel's own arithmetic
        self.register_parameter("raw_outputscale", torch.nn.Parameter(torch.zeros(1)))
        self.register_constraint("raw_outputscale", Positive())
        # one lengthscale per feature (magnitude and the two direction components); not
        # gpytorch's ``lengthscale``, whose input check expects one per input dimension
        self.register_parameter("raw_feature_lengthscale", torch.nn.Parameter(torch.zeros(3)))
        self.register_constraint("raw_feature_lengthscale", Positive())
        self.register_prior("feature_lengthscale_prior", LogNormalPrior(0.0, 1.0),
                            lambda module: module.feature_lengthscale,
                            lambda module, value: module.initialize(
                                raw_feature_lengthscale=module.raw_feature_lengthscale_constraint
                                .inverse_transform(torch.as_tensor(value))))

    @property
    def tau(self) -> torch.Tensor:
        """The response time ``(1,)``, in the units of ``dt``."""
        return self.raw_tau_constraint.transform(self.raw_tau)

    @property
    def outputscale(self) -> torch.Tensor:
        """The kernel's variance ``sigma^2`` ``(1,)``, in units of the standardised outcome."""
        return self.raw_outputscale_constraint.transform(self.raw_outputscale)

    @property
    def feature_lengthscale(self) -> torch.Tensor:
        """``(3,)`` lengthscales of the magnitude and the two direction features (field units)."""
        return self.raw_feature_lengthscale_constraint.transform(self.raw_feature_lengthscale)

    def _set_tau(self, value) -> None:
        self.initialize(raw_tau=self.raw_tau_constraint.inverse_transform(
            torch.as_tensor(value, dtype=self.raw_tau.dtype).reshape(1)))

    def _field(self, x: torch.Tensor) -> torch.Tensor:
        """``(..., n, d)`` unit-cube points -> ``(..., n, T, 2)`` fields.

        The fields of points that need no gradient (the training points, compared with
        every candidate while the acquisition is maximised and at every step of the
        likelihood fit) are remembered and reused while the same points come back: they do
        not depend on the hyperparameters.
        """
        if x.requires_grad:
            return self.field(self.low.to(x) + self.span.to(x) * x)
        # kept in __dict__, outside the module's registered state (not a buffer, not saved)
        cached = self.__dict__.get("_field_cache")
        if cached is None or cached[0].shape != x.shape or not torch.equal(cached[0], x):
            with torch.no_grad():
                cached = (x.clone(), self.field(self.low.to(x) + self.span.to(x) * x))
            self.__dict__["_field_cache"] = cached
        return cached[1]

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """``(..., n, d)`` unit-cube points -> ``(..., T', n, 3)`` features over lengthscales."""
        response = lagged_response(self._field(x), self.tau, self.dt, self.n_relax, self.stride)
        phi = response_features(response)
        return (phi / self.feature_lengthscale).transpose(-3, -2)

    def forward(self, x1, x2, diag=False, last_dim_is_batch=False, **params):
        if last_dim_is_batch:
            raise NotImplementedError("the response kernel compares whole points, not "
                                      "single dimensions")
        f1 = self.features(x1)
        if diag:  # every point is at distance 0 from itself at every step
            return self.outputscale * torch.ones(f1.shape[:-3] + f1.shape[-2:-1],
                                                 dtype=f1.dtype, device=f1.device)
        f2 = self.features(x2)
        # squared distances per step, (..., T', n, m), from the differences themselves (exact
        # zeros and gradients on the diagonal, unlike the expanded |a|^2 + |b|^2 - 2 a.b)
        d2 = ((f1.unsqueeze(-2) - f2.unsqueeze(-3)) ** 2).sum(-1)
        return self.outputscale * torch.exp(-0.5 * d2).mean(-3)
