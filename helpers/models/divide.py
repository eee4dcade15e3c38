"""DIVIDE: mechanism-specific deep encoders with a structured Gaussian process.

Reconstruction of DIVIDE (arXiv 2511.12745) from its abstract; there is no public code, so the
design below is ours. Each *mechanism* (a categorical image patch, a position, a local
descriptor, ...) has its own input and its own encoder ``phi_m``. The encoders' outputs are
concatenated into one joint latent vector ``z = [phi_1(x_1), ..., phi_M(x_M)]`` and a Gaussian
process with a *structured* kernel acts on ``z``. Each kernel term sees only the latent block(s)
of its mechanism(s) (gpytorch ``active_dims``)::

    additive:  k(z, z') = s_1 k_1(z_1, z_1') + s_2 k_2(z_2, z_2')
    scaled:    k(z, z') = s_12 k_1(z_1, z_1') * k_2(z_2, z_2')

so ``f = f_1 + f_2`` (independent additive effects) or ``f(x_1, x_2)`` with a separable,
multiplicative structure. Encoders and kernel hyper-parameters are trained together on the
exact log marginal likelihood (deep kernel learning with gpytorch) or, for a full image, on the
variational ELBO of a sparse GP with inducing points in the joint latent space.

The posterior of an additive GP splits exactly into one posterior per kernel term:
``E[f_j(x*)] = k_j(x*, X) (K + s2 I)^-1 (y - m)``, which is how :meth:`Divide.predict`
returns each mechanism's recovered contribution with its own uncertainty.

The structure need not be given: :func:`select_structure` fits one model per candidate
structure and keeps the one with the largest exact log marginal likelihood
(:meth:`Divide.log_marginal_likelihood`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import gpytorch
import numpy as np
import torch
from linear_operator.utils.errors import NanError
from torch import nn

from .._checks import real_array
from ..env import progress as progress_bar
from ..env import torch_generator
from .base import Estimator, TrainingDivergedError, as_float_array, mean_std, not_fitted
from .standardize import Standardize
from .training import History, run_epochs

__all__ = [
    "Divide",
    "DividePrediction",
    "ActiveLearningResult",
    "active_learning",
    "StructureSelection",
    "select_structure",
]

ENCODERS = ("cnn", "mlp", "identity")
METHODS = ("exact", "variational")


# --------------------------------------------------------------------------------------------
# results
# --------------------------------------------------------------------------------------------
@dataclass
class DividePrediction:
    """Posterior of a fitted :class:`Divide` at N query points (signal units of ``y``).

    Attributes:
        mean: (N,) posterior mean of the latent function ``f`` (also the mean of ``y``).
        variance: (N,) posterior variance of ``f`` (epistemic).
        noise_variance: the fitted observation-noise variance (one float).
        components: kernel term name (``"patch"``, ``"position"``, ``"patch*position"``) ->
            (N,) posterior mean of that term's function; ``mean = constant + sum(components)``.
        component_variances: term name -> (N,) posterior variance of that term.
        constant: the fitted constant mean of the GP.
    """

    mean: np.ndarray
    variance: np.ndarray
    noise_variance: float
    components: dict[str, np.ndarray] = field(default_factory=dict)
    component_variances: dict[str, np.ndarray] = field(default_factory=dict)
    constant: float = 0.0

    @property
    def predictive_variance(self) -> np.ndarray:
        """(N,) variance of a new noisy observation: ``variance + noise_variance``."""
        return self.variance + self.noise_variance

    def interval(self, level: float = 0.95, observed: bool = True) -> tuple[np.ndarray, ...]:
        """Central ``level`` interval ``(low, high)``, each (N,): for a new noisy observation
        (``observed=True``) or for ``f`` itself."""
        if not 0.0 < level < 1.0:
            raise ValueError(f"level must be in (0, 1), got {level}")
        from scipy.stats import norm

        z = float(norm.ppf(0.5 + level / 2.0))
        sd = np.sqrt(self.predictive_variance if observed else self.variance)
        return self.mean - z * sd, self.mean + z * sd

    def log_density(self, y) -> np.ndarray:
        """(N,) Gaussian log predictive density (nats) of measurements ``y`` (N,): each under
        ``N(mean, predictive_variance)``."""
        y = np.asarray(y, dtype=np.float64)
        if y.shape != self.mean.shape:
            raise ValueError(f"y must have shape {self.mean.shape}, got {y.shape}")
        var = np.asarray(self.predictive_variance, dtype=np.float64)
        return -0.5 * (np.log(2.0 * np.pi * var) + (y - self.mean) ** 2 / var)


@dataclass
class ActiveLearningResult:
    """History of one active-learning run.

    Attributes:
        strategy: ``"uncertainty"`` or ``"random"``.
        n_labelled: (S+1,) number of labelled points after each step (step 0 = initial set).
        rmse: (S+1,) held-out root-mean-square error of the posterior mean after each step.
        chosen: (n_labelled[-1],) pool indices in the order they were labelled.
    """

    strategy: str
    n_labelled: np.ndarray
    rmse: np.ndarray
    chosen: np.ndarray


# --------------------------------------------------------------------------------------------
# torch modules
# --------------------------------------------------------------------------------------------
def _augment(x, noise: float, shift: int):
    """Training-time nuisance augmentation of standardised patches (N, C, H, W): a random
    integer translation in [-shift, shift] pixels per patch (periodic) and Gaussian pixel
    noise of standard deviation ``noise``. Uses torch's global RNG, which ``Divide.fit``
    seeds inside ``torch.random.fork_rng``."""
    if shift > 0:
        offsets = torch.randint(-shift, shift + 1, (len(x), 2), device=x.device)
        out = torch.empty_like(x)
        for dr in range(-shift, shift + 1):
            for dc in range(-shift, shift + 1):
                sel = (offsets[:, 0] == dr) & (offsets[:, 1] == dc)
                if sel.any():
                    out[sel] = torch.roll(x[sel], shifts=(dr, dc), dims=(-2, -1))
        x = out
    if noise > 0:
        x = x + noise * torch.randn_like(x)
    return x


class CNNEncoder(nn.Module):
    """Small CNN: flat (N, C*H*W) patch -> (N, latent_dim); optional training-time
    augmentation (``augment_noise`` in standardised intensity units, ``augment_shift`` in
    pixels) so that the encoder cannot use nuisance detail to fit the noise of y."""

    def __init__(self, shape, latent_dim: int, hidden: int, augment_noise: float = 0.0,
                 augment_shift: int = 0):
        super().__init__()
        self.shape = (1, *shape) if len(shape) == 2 else tuple(shape)
        self.augment_noise, self.augment_shift = float(augment_noise), int(augment_shift)
        c = self.shape[0]
        self.norm = Standardize((1,))
        self.net = nn.Sequential(
            nn.Conv2d(c, hidden // 2, 3, padding=1), nn.GELU(), nn.MaxPool2d(2),
            nn.Conv2d(hidden // 2, hidden, 3, padding=1), nn.GELU(),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(),
            nn.Linear(hidden, hidden), nn.GELU(), nn.Linear(hidden, latent_dim),
        )

    def forward(self, x):
        x = self.norm(x).reshape(-1, *self.shape)
        if self.training:
            x = _augment(x, self.augment_noise, self.augment_shift)
        return self.net(x)


class MLPEncoder(nn.Module):
    """MLP on the flattened input: (N, D) -> (N, latent_dim). Unlike the CNN it keeps
    where in a patch a feature lies (e.g. a defect on the centre site or next to it)."""

    def __init__(self, dim: int, latent_dim: int, hidden: int):
        super().__init__()
        self.norm = Standardize((dim,))
        self.net = nn.Sequential(
            nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, hidden), nn.GELU(),
            nn.Linear(hidden, latent_dim),
        )

    def forward(self, x):
        return self.net(self.norm(x))


class IdentityEncoder(nn.Module):
    """Standardised input as its own latent: (N, D) -> (N, D)."""

    def __init__(self, dim: int):
        super().__init__()
        self.norm = Standardize((dim,))

    def forward(self, x):
        return self.norm(x)


class JointEncoder(nn.Module):
    """Flat joint input (N, sum D_m) -> joint latent (N, sum L_m), one encoder per block."""

    def __init__(self, specs: list[dict], hidden: int):
        super().__init__()
        self.names = [s["name"] for s in specs]
        self.in_slices, self.out_slices, encs = [], [], []
        i0 = o0 = 0
        for s in specs:
            d = int(np.prod(s["shape"]))
            if s["encoder"] == "cnn":
                enc = CNNEncoder(tuple(s["shape"]), s["latent_dim"], hidden,
                                 s.get("augment_noise", 0.0), s.get("augment_shift", 0))
            elif s["encoder"] == "mlp":
                enc = MLPEncoder(d, s["latent_dim"], hidden)
            else:
                enc = IdentityEncoder(d)
            encs.append(enc)
            self.in_slices.append(slice(i0, i0 + d))
            self.out_slices.append(slice(o0, o0 + s["latent_dim"]))
            i0, o0 = i0 + d, o0 + s["latent_dim"]
        self.encoders = nn.ModuleList(encs)
        self.in_dim, self.latent_dim = i0, o0

    def forward(self, x):
        return torch.cat(
            [e(x[..., sl]) for e, sl in zip(self.encoders, self.in_slices)], dim=-1)


def _build_kernel(specs: list[dict], terms: list[list[str]]):
    """AdditiveKernel of ScaleKernel(product of RBFs over each term's latent blocks).

    A mechanism's ``lengthscale_min`` (latent units) becomes a ``GreaterThan`` constraint
    on its RBF lengthscales: a structured prior saying that mechanism is smooth."""
    offsets, lower, o0 = {}, {}, 0
    for s in specs:
        offsets[s["name"]] = tuple(range(o0, o0 + s["latent_dim"]))
        lower[s["name"]] = float(s.get("lengthscale_min", 0.0))
        o0 += s["latent_dim"]

    def rbf(m):
        kw = {}
        if lower[m] > 0:
            kw["lengthscale_constraint"] = gpytorch.constraints.GreaterThan(lower[m])
        return gpytorch.kernels.RBFKernel(ard_num_dims=len(offsets[m]),
                                          active_dims=offsets[m], **kw)

    parts = []
    for term in terms:
        bases = [rbf(m) for m in term]
        base = bases[0] if len(bases) == 1 else gpytorch.kernels.ProductKernel(*bases)
        parts.append(gpytorch.kernels.ScaleKernel(base))
    return gpytorch.kernels.AdditiveKernel(*parts)


class ExactDKL(gpytorch.models.ExactGP):
    """Exact GP whose kernel acts on the joint latent of the encoders."""

    def __init__(self, encoder, kernel, likelihood):
        super().__init__(None, None, likelihood)
        self.encoder = encoder
        self.mean_module = gpytorch.means.ConstantMean()
        self.covar_module = kernel

    def forward(self, x):
        z = self.encoder(x)
        return gpytorch.distributions.MultivariateNormal(
            self.mean_module(z), self.covar_module(z))


class LatentSVGP(gpytorch.models.ApproximateGP):
    """Sparse variational GP on the joint latent space (inducing points live there)."""

    def __init__(self, kernel, num_inducing: int, latent_dim: int):
        z0 = torch.randn(num_inducing, latent_dim)
        dist = gpytorch.variational.CholeskyVariationalDistribution(num_inducing)
        strategy = gpytorch.variational.VariationalStrategy(
            self, z0, dist, learn_inducing_locations=True)
        super().__init__(strategy)
        self.mean_module = gpytorch.means.ConstantMean()
        self.covar_module = kernel

    def forward(self, z):
        return gpytorch.distributions.MultivariateNormal(
            self.mean_module(z), self.covar_module(z))


class VariationalDKL(gpytorch.Module):
    """Encoder followed by the latent sparse GP."""

    def __init__(self, encoder, kernel, num_inducing):
        super().__init__()
        self.encoder = encoder
        self.gp = LatentSVGP(kernel, num_inducing, encoder.latent_dim)

    @property
    def mean_module(self):
        return self.gp.mean_module

    @property
    def covar_module(self):
        return self.gp.covar_module

    def forward(self, x):
        return self.gp(self.encoder(x))


class DivideNet(nn.Module):
    """Everything a checkpoint holds: encoders, GP, likelihood, target scaling and (exact
    GP) the training data, stored as buffers that resize on ``load_state_dict``."""

    def __init__(self, specs, terms, method, hidden, num_inducing):
        super().__init__()
        encoder = JointEncoder(specs, hidden)
        kernel = _build_kernel(specs, terms)
        self.likelihood = gpytorch.likelihoods.GaussianLikelihood()
        self.likelihood.noise = 0.1  # standardised units; gpytorch's default is 0.69
        if method == "exact":
            self.model = ExactDKL(encoder, kernel, self.likelihood)
        else:
            self.model = VariationalDKL(encoder, kernel, num_inducing)
        self.y_norm = Standardize()  # of the targets, set by Divide.fit
        self.register_buffer("train_x", torch.zeros(0, encoder.in_dim))
        self.register_buffer("train_y", torch.zeros(0))

    @property
    def encoder(self):
        return self.model.encoder

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        for name in ("train_x", "train_y"):
            key = prefix + name
            if key in state_dict:
                old = getattr(self, name)
                setattr(self, name, torch.empty_like(state_dict[key], device=old.device))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)


# --------------------------------------------------------------------------------------------
# the estimator
# --------------------------------------------------------------------------------------------
def _parse_mechanisms(mechanisms) -> list[dict]:
    if isinstance(mechanisms, Mapping):
        mechanisms = [dict(v, name=k) for k, v in mechanisms.items()]
    if not isinstance(mechanisms, Sequence) or len(mechanisms) == 0:
        raise ValueError("mechanisms must be a non-empty list of dicts "
                         "{'name', 'encoder', 'shape', 'latent_dim'}")
    specs, names = [], set()
    for m in mechanisms:
        if not isinstance(m, Mapping) or "name" not in m or "shape" not in m:
            raise ValueError(f"each mechanism needs at least 'name' and 'shape', got {m!r}")
        name = str(m["name"])
        if name in names or "*" in name:
            raise ValueError(f"mechanism names must be unique and contain no '*': {name!r}")
        names.add(name)
        enc = str(m.get("encoder", "identity"))
        if enc not in ENCODERS:
            raise ValueError(f"mechanism {name!r}: encoder must be one of {ENCODERS}, got {enc!r}")
        shape = [int(v) for v in np.atleast_1d(m["shape"])]
        if any(v <= 0 for v in shape):
            raise ValueError(f"mechanism {name!r}: shape must be positive, got {shape}")
        if enc == "cnn" and not (len(shape) in (2, 3) and min(shape[-2:]) >= 4):
            raise ValueError(f"mechanism {name!r}: a cnn encoder needs an image shape (H, W) or "
                             f"(C, H, W) with H, W >= 4, got {shape}")
        if enc == "identity" and len(shape) != 1:
            raise ValueError(f"mechanism {name!r}: an identity encoder takes vectors, shape "
                             f"(D,); got {shape} (use encoder='cnn' or 'mlp' for images)")
        latent = shape[0] if enc == "identity" else int(m.get("latent_dim", 2))
        if latent < 1:
            raise ValueError(f"mechanism {name!r}: latent_dim must be >= 1, got {latent}")
        spec = {"name": name, "encoder": enc, "shape": shape, "latent_dim": latent}
        if "lengthscale_min" in m:
            spec["lengthscale_min"] = float(m["lengthscale_min"])
            if not spec["lengthscale_min"] >= 0:
                raise ValueError(f"mechanism {name!r}: lengthscale_min must be >= 0")
        if enc == "cnn":
            spec["augment_noise"] = float(m.get("augment_noise", 0.3))
            spec["augment_shift"] = int(m.get("augment_shift", 1))
            if spec["augment_noise"] < 0 or spec["augment_shift"] < 0:
                raise ValueError(f"mechanism {name!r}: augment_noise and augment_shift must "
                                 "be >= 0")
        specs.append(spec)
    return specs


def _parse_structure(structure, names: list[str]) -> list[list[str]]:
    if structure == "additive":
        return [[n] for n in names]
    if structure == "scaled":
        return [list(names)]
    if structure == "additive+scaled":
        return [[n] for n in names] + ([list(names)] if len(names) > 1 else [])
    if isinstance(structure, str):
        raise ValueError("structure must be 'additive', 'scaled', 'additive+scaled' or a list "
                         f"of terms (lists of mechanism names), got {structure!r}")
    terms = [[str(n) for n in t] for t in structure]
    for t in terms:
        if not t or len(set(t)) != len(t) or any(n not in names for n in t):
            raise ValueError(f"bad kernel term {t}: use distinct names from {names}")
    if not terms:
        raise ValueError("structure needs at least one kernel term")
    return terms


class Divide(Estimator):
    """DIVIDE: one encoder per mechanism and a structured GP over the joint latent space.

    Args:
        mechanisms: list of dicts, one per mechanism, in input order:
            ``{"name": str, "encoder": "cnn" | "mlp" | "identity", "shape": per-sample input
            shape, "latent_dim": int}``. ``"cnn"``: ``(H, W)`` or ``(C, H, W)`` image patches,
            translation-tolerant (global pooling); ``"mlp"``: any shape, flattened (keeps where
            in a patch a feature lies); ``"identity"``: ``(D,)`` vectors such as positions,
            the latent is the standardised input. Optional keys: ``"augment_noise"``
            (default 0.3, standardised units) and ``"augment_shift"`` (default 1 pixel):
            training-time augmentation of a cnn's patches, which keeps the encoder from
            fitting the noise of ``y`` through nuisance detail (set 0 where a shift changes
            the meaning of a patch); ``"lengthscale_min"`` (latent units; for an identity
            encoder, standard deviations of the input): a lower bound on the mechanism's
            RBF lengthscales, a structured prior that it is smooth. A dict ``{name: spec}``
            works too.
        structure: ``"additive"`` (one RBF term per mechanism, summed), ``"scaled"`` (one
            product term over all mechanisms), ``"additive+scaled"`` (both), or an explicit list
            of terms, e.g. ``[["patch"], ["position"], ["patch", "position"]]``.
        method: ``"exact"`` (exact GP, small data; the training data are kept in the
            checkpoint) or ``"variational"`` (sparse GP with ``num_inducing`` inducing points,
            minibatch ELBO; for a full image).
        hidden: width of the encoders' hidden layers.
        num_inducing: inducing points of the variational GP.
        max_cholesky_size: exact GPs up to this many points use Cholesky (deterministic);
            larger ones use gpytorch's iterative solvers.
        seed: random seed (weights, minibatches, inducing points).
        device: ``"auto"``, ``"cpu"``, ``"cuda"`` or ``"mps"``.

    Inputs ``X`` are dicts ``{mechanism name: array (N, *shape)}``; targets ``y`` are (N,).
    """

    def __init__(
        self,
        mechanisms,
        structure: str | list = "additive",
        method: str = "exact",
        hidden: int = 32,
        num_inducing: int = 128,
        max_cholesky_size: int = 4000,
        seed: int = 0,
        device: str = "auto",
    ):
        specs = _parse_mechanisms(mechanisms)
        terms = _parse_structure(structure, [s["name"] for s in specs])
        if method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, got {method!r}")
        if int(hidden) < 2 or int(num_inducing) < 2:
            raise ValueError("hidden and num_inducing must be >= 2")
        super().__init__(
            mechanisms=specs, structure=structure if isinstance(structure, str) else terms,
            method=method, hidden=int(hidden), num_inducing=int(num_inducing),
            max_cholesky_size=int(max_cholesky_size), seed=seed, device=device,
        )
        self.specs, self.terms, self.method = specs, terms, method
        self.term_names = ["*".join(t) for t in terms]
        self._build_module(lambda: DivideNet(specs, terms, method, int(hidden),
                                             int(num_inducing)))
        self._cache = None

    # -- input handling ----------------------------------------------------------------------
    def _flatten(self, X) -> np.ndarray:
        """Check a dict of mechanism inputs and pack it into one (N, sum D_m) float32 array."""
        if not isinstance(X, Mapping):
            raise ValueError("X must be a dict {mechanism name: array}; mechanisms are "
                             f"{[s['name'] for s in self.specs]}")
        missing = [s["name"] for s in self.specs if s["name"] not in X]
        extra = [k for k in X if k not in {s["name"] for s in self.specs}]
        if missing or extra:
            raise ValueError(f"X has missing mechanisms {missing} / unknown keys {extra}; "
                             f"expected {[s['name'] for s in self.specs]}")
        blocks, n = [], None
        for s in self.specs:
            shape = tuple(s["shape"])
            if s["encoder"] == "cnn" and len(shape) == 2 and np.ndim(X[s["name"]]) == 4:
                shape = (1, *shape)  # accept (N, 1, H, W) for a single-channel patch
            arr = as_float_array(X[s["name"]], name=f"X[{s['name']!r}]", ndim=1 + len(shape),
                                 shape_tail=shape)
            if n is not None and len(arr) != n:
                raise ValueError(f"all mechanisms need the same number of samples; "
                                 f"X[{s['name']!r}] has {len(arr)}, expected {n}")
            n = len(arr)
            blocks.append(arr.reshape(n, -1))
        return np.concatenate(blocks, axis=1)

    def _check_y(self, y, n: int) -> np.ndarray:
        y = as_float_array(y, name="y", ndim=1)
        if len(y) != n:
            raise ValueError(f"y has {len(y)} values but X has {n} samples")
        return y

    def _tensor(self, a):
        return torch.as_tensor(a, dtype=torch.float32, device=self.device)

    def _set_normalisation(self, xf: np.ndarray, y: np.ndarray) -> None:
        """Input and target statistics from the training data, stored as module buffers."""
        net = self.module
        for enc, sl in zip(net.encoder.encoders, net.encoder.in_slices):
            block = xf[:, sl].astype(np.float64)
            if enc.norm.mean.numel() == 1:
                mu, sd = np.array([block.mean()]), np.array([block.std()])
            else:
                mu, sd = block.mean(axis=0), block.std(axis=0)
            enc.norm.set_statistics(mu, sd, min_std=1e-8)
        net.y_norm.set_statistics(*mean_std(y, "y"), min_std=1e-8)

    # -- training ----------------------------------------------------------------------------
    def fit(
        self,
        X: Mapping[str, np.ndarray],
        y: np.ndarray,
        epochs: int = 300,
        lr: float = 0.03,
        encoder_lr: float = 0.01,
        weight_decay: float = 1e-4,
        validation_fraction: float = 0.2,
        eval_every: int = 10,
        patience: int = 6,
        batch_size: int = 256,
        progress: bool = True,
    ) -> History:
        """Train encoders and GP hyper-parameters end to end.

        Exact: one full-batch Adam step per epoch on the negative exact log marginal
        likelihood per point, ``-log p(y | X) / N``. Variational: epochs of minibatch steps on
        the negative ELBO per point. Deep kernels overfit the marginal likelihood (the encoders
        can arrange the training points so that the kernel explains their noise), so by default
        a random ``validation_fraction`` of the data is held out: every ``eval_every`` epochs
        its negative log predictive density is measured, training stops after ``patience``
        evaluations without improvement, and the best weights are kept. The GP then conditions
        on *all* the data. Calling ``fit`` again continues from the current weights.

        Args:
            X: dict {mechanism name: (N, *shape) array}.
            y: (N,) targets in any units (standardised internally).
            epochs: maximum epochs (exact: optimisation steps).
            lr: learning rate of the GP hyper-parameters (and variational parameters).
            encoder_lr: learning rate of the encoders' weights.
            weight_decay: L2 penalty on the encoders' weights.
            validation_fraction: share of the data held out for early stopping (0 disables
                it; it is also skipped below 20 samples).
            eval_every: epochs between validation checks.
            patience: validation checks without improvement before stopping.
            batch_size: minibatch size (variational only).
            progress: show a tqdm progress bar.

        Returns:
            :class:`History`: ``loss`` (negative log marginal likelihood or ELBO per point,
            standardised units) and ``noise`` (fitted noise variance, units of y^2) per epoch,
            ``val_loss`` (validation NLPD, standardised units) per check, ``best_epoch`` (the
            epoch whose weights were kept; None without validation).

        Raises:
            TrainingDivergedError: (a ``FloatingPointError``) naming the epoch, counted from
                1, when the loss becomes NaN/inf or exceeds 1e3 times its first value (at
                least 1): lower ``lr`` / ``encoder_lr``.
        """
        xf = self._flatten(X)
        yv = self._check_y(y, len(xf))
        if len(xf) < 3:
            raise ValueError(f"need at least 3 training samples, got {len(xf)}")
        if int(epochs) < 1:
            raise ValueError(f"epochs must be >= 1, got {epochs}")
        if not 0.0 <= validation_fraction < 1.0:
            raise ValueError(f"validation_fraction must be in [0, 1), got {validation_fraction}")
        self._set_normalisation(xf, yv)
        net = self.module
        tx_all = self._tensor(xf)
        ty_all = net.y_norm.checked(self._tensor(yv), "y")
        # one CPU stream for the validation split, inducing points, shuffling and the seed of
        # the encoders' augmentation
        gen = torch_generator(self._fit_seed())
        self._cache = None
        n_val = int(round(validation_fraction * len(xf))) if len(xf) >= 20 else 0
        perm = torch.randperm(len(xf), generator=gen).to(tx_all.device)
        tr_idx, val_idx = perm[n_val:], perm[:n_val]
        tx, ty = tx_all[tr_idx], ty_all[tr_idx]
        xv, yval = tx_all[val_idx], ty_all[val_idx]
        model, lik = net.model, net.likelihood
        enc_params = list(model.encoder.parameters())
        enc_ids = {id(p) for p in enc_params}
        gp_params = [p for p in net.parameters() if id(p) not in enc_ids]
        groups = [{"params": gp_params, "lr": lr}]
        if enc_params:
            groups.append({"params": enc_params, "lr": encoder_lr, "weight_decay": weight_decay})
        opt = torch.optim.Adam(groups)
        net.train()
        if self.method == "exact":
            model.set_train_data(inputs=(tx,), targets=ty, strict=False)
            mll = gpytorch.mlls.ExactMarginalLogLikelihood(lik, model)
        else:
            net.train_x, net.train_y = tx[:0].clone(), ty[:0].clone()
            if self._n_fits == 1:
                self._init_inducing(tx, gen)
            mll = gpytorch.mlls.VariationalELBO(lik, model.gp, num_data=len(tx))
        current = {"epoch": 0}  # for the error message when the kernel matrix breaks

        def epoch_batches(epoch):
            current["epoch"] = epoch
            if self.method == "exact":
                yield (tx, ty), 1.0
                return
            order = torch.randperm(len(tx), generator=gen).to(tx.device)
            for start in range(0, len(tx), batch_size):
                idx = order[start:start + batch_size]
                yield (tx[idx], ty[idx]), len(idx) / len(tx)

        def batch_loss(batch):
            xb, yb = batch
            return -mll(model(xb), yb), {}

        def noise():
            return {"noise": float(lik.noise.detach()) * float(net.y_norm.std) ** 2}

        rng_devices = [torch.device(self.device)] if self.device.startswith("cuda") else []
        with gpytorch.settings.max_cholesky_size(self.config["max_cholesky_size"]), \
                torch.random.fork_rng(devices=rng_devices):
            torch.manual_seed(int(torch.randint(2**31 - 1, (1,), generator=gen)))
            try:
                history = run_epochs(
                    module=net, optimizer=opt, epoch_batches=epoch_batches,
                    batch_loss=batch_loss, epochs=int(epochs), desc="Divide.fit",
                    progress=progress,
                    guard_floor=1.0,  # per point, on standardised targets: near 1
                    validate=(lambda: self._validation_nlpd(xv, yval)) if n_val else None,
                    patience=patience if n_val else None, validate_every=eval_every,
                    min_delta=1e-4, epoch_end=noise)
            except NanError:  # the kernel matrix itself went NaN: weights blew up
                raise TrainingDivergedError(
                    f"training diverged at epoch {current['epoch']}: the kernel matrix became "
                    "NaN; lower lr and encoder_lr, e.g. by 10x") from None
        with torch.no_grad():
            if self.method == "exact":
                net.train_x, net.train_y = tx_all.clone(), ty_all.clone()
                model.set_train_data(inputs=(net.train_x,), targets=net.train_y, strict=False)
        net.eval()
        self._fitted = True
        return history

    def _validation_nlpd(self, xv, yv) -> float:
        """Mean negative log predictive density of held-out targets (standardised units)."""
        net = self.module
        net.eval()
        with torch.no_grad(), gpytorch.settings.fast_pred_var(False):
            post = net.likelihood(net.model(xv))
            mu, var = post.mean, post.variance.clamp_min(1e-10)
            nlpd = 0.5 * (torch.log(2 * math.pi * var) + (yv - mu) ** 2 / var)
        net.train()
        return float(nlpd.mean())

    def _init_inducing(self, tx, gen) -> None:
        """Inducing points at the encoded positions of a random subset of the training data."""
        gp = self.module.model.gp
        m = gp.variational_strategy.inducing_points.shape[0]
        idx = torch.randperm(len(tx), generator=gen)[:m].to(tx.device)
        encoder = self.module.encoder
        was_training = encoder.training
        encoder.eval()
        with torch.no_grad():
            z = encoder(tx[idx])
        encoder.train(was_training)
        with torch.no_grad():
            if len(z) < m:  # fewer points than inducing points: jitter copies
                reps = z[torch.arange(m, device=z.device) % len(z)]
                z = reps + 0.01 * torch.randn(reps.shape, generator=gen).to(z.device)
            gp.variational_strategy.inducing_points.copy_(z)

    # -- inference ---------------------------------------------------------------------------
    def _check_fitted(self) -> None:
        if not self._fitted:
            raise not_fitted("Divide", "fit(X, y)")

    def encode(self, X: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Each mechanism's latent: ``{name: (N, latent_dim) float32}``."""
        self._check_fitted()
        tx = self._tensor(self._flatten(X))
        with torch.no_grad():
            z = self.module.encoder(tx).cpu().numpy()
        sl = self.module.encoder.out_slices
        return {s["name"]: z[:, sl[k]] for k, s in enumerate(self.specs)}

    def _posterior_state(self):
        """Per-model quantities shared by all predictions, cached until the next fit.

        Exact: ``Z`` = encoded training inputs, ``L`` = chol(K + s2 I), ``alpha`` =
        (K + s2 I)^-1 (y - m), ``middle`` = None. Variational: ``Z`` = inducing points,
        ``L`` = chol(K_ZZ + jitter), ``alpha`` = L^-T m, ``middle`` = S - I (whitened).
        """
        from linear_operator.utils.cholesky import psd_safe_cholesky

        if self._cache is not None:
            return self._cache
        net = self.module
        dt = torch.float32 if self.device.startswith("mps") else torch.float64
        kernel = net.model.covar_module
        const = net.model.mean_module.constant.detach().to(dt)
        with torch.no_grad():
            if self.method == "exact":
                z = net.encoder(net.train_x)
                k = kernel(z).to_dense().to(dt)
                noise = net.likelihood.noise.detach().to(dt)
                k = k + noise * torch.eye(len(k), dtype=dt, device=k.device)
                chol = psd_safe_cholesky(k)
                resid = (net.train_y.to(dt) - const).unsqueeze(-1)
                alpha = torch.cholesky_solve(resid, chol).squeeze(-1)
                middle = None
            else:
                vs = net.model.gp.variational_strategy
                z = vs.inducing_points.detach()
                k = kernel(z).to_dense().to(dt)
                k = k + vs.jitter_val * torch.eye(len(k), dtype=dt, device=k.device)
                chol = psd_safe_cholesky(k)
                q = vs.variational_distribution
                m = q.mean.detach().to(dt)
                middle = q.covariance_matrix.detach().to(dt) - torch.eye(
                    len(m), dtype=dt, device=m.device)
                alpha = torch.linalg.solve_triangular(
                    chol.mT, m.unsqueeze(-1), upper=True).squeeze(-1)
        self._cache = {"z": z.to(dt), "chol": chol, "alpha": alpha, "middle": middle,
                       "const": const, "dtype": dt}
        return self._cache

    def _decompose(self, zq):
        """Per-term posterior means and variances (standardised units) at latents ``zq``."""
        st = self._posterior_state()
        kernel = self.module.model.covar_module
        means, variances = [], []
        for part in kernel.kernels:
            kqz = part(zq, st["z"]).to_dense().to(st["dtype"])  # (M, N)
            kqq = part(zq, diag=True).to(st["dtype"])  # (M,)
            a = torch.linalg.solve_triangular(st["chol"], kqz.mT, upper=False)  # (N, M)
            means.append(kqz @ st["alpha"])
            if st["middle"] is None:
                var = kqq - (a * a).sum(0)
            else:
                var = kqq + (a * (st["middle"] @ a)).sum(0)
            variances.append(var.clamp_min(0.0))
        return means, variances

    def predict(
        self, X: Mapping[str, np.ndarray], batch_size: int = 1024, components: bool = True,
    ) -> DividePrediction:
        """Posterior at new inputs, total and per kernel term.

        Args:
            X: dict {mechanism name: (N, *shape) array}.
            batch_size: query points per chunk (memory).
            components: also compute each kernel term's posterior (cheap for exact GPs up to a
                few thousand training points).

        Returns:
            :class:`DividePrediction` in the units of ``y``. The total mean and variance come
            from gpytorch's predictive distribution; the components from the exact split of an
            additive GP's posterior (their sum plus ``constant`` equals ``mean``).
        """
        self._check_fitted()
        tx = self._tensor(self._flatten(X))
        net = self.module
        net.eval()
        if self.method == "exact":
            model = net.model
            if model.train_inputs is None or model.train_inputs[0] is not net.train_x:
                model.set_train_data(inputs=(net.train_x,), targets=net.train_y, strict=False)
        scale = float(net.y_norm.std)
        shift = float(net.y_norm.mean)
        mean, var = [], []
        comp_m = [[] for _ in self.terms]
        comp_v = [[] for _ in self.terms]
        with torch.no_grad(), gpytorch.settings.max_cholesky_size(
                self.config["max_cholesky_size"]), gpytorch.settings.fast_pred_var(False):
            for start in range(0, len(tx), batch_size):
                xb = tx[start:start + batch_size]
                post = net.model(xb)
                mean.append(post.mean.double().cpu())
                var.append(post.variance.double().cpu())
                if components:
                    ms, vs = self._decompose(net.encoder(xb).to(self._posterior_state()["dtype"]))
                    for j in range(len(self.terms)):
                        comp_m[j].append(ms[j].double().cpu())
                        comp_v[j].append(vs[j].double().cpu())
        const = float(net.model.mean_module.constant.detach())
        out = DividePrediction(
            mean=torch.cat(mean).numpy() * scale + shift,
            variance=torch.cat(var).numpy() * scale**2,
            noise_variance=float(net.likelihood.noise.detach()) * scale**2,
            constant=const * scale + shift,
        )
        if components:
            for j, name in enumerate(self.term_names):
                out.components[name] = torch.cat(comp_m[j]).numpy() * scale
                out.component_variances[name] = torch.cat(comp_v[j]).numpy() * scale**2
        return out

    def partial_dependence(
        self, X: Mapping[str, np.ndarray], mechanism: str, reference: Mapping[str, np.ndarray],
        batch_size: int = 4096,
    ) -> np.ndarray:
        """Effect of one mechanism with the others averaged out.

        ``pd_i = mean_r E[f(x_m = X_m[i], others = reference_r)]`` over the R reference
        samples. For a scaled (product) structure ``f = a(x_1) h(x_2)`` this is proportional to
        ``a`` (up to an offset), which is how that mechanism's contribution is recovered.

        Args:
            X: dict of N query inputs (only ``X[mechanism]`` is used; others may be omitted).
            mechanism: the mechanism name.
            reference: dict of R reference inputs for all mechanisms (e.g. training samples).

        Returns:
            (N,) float64 in the units of ``y``.
        """
        names = [s["name"] for s in self.specs]
        if mechanism not in names:
            raise ValueError(f"unknown mechanism {mechanism!r}; expected one of {names}")
        if not isinstance(X, Mapping) or mechanism not in X:
            raise ValueError(f"X must be a dict holding X[{mechanism!r}]")
        ref = self._flatten(reference)
        q = np.asarray(X[mechanism])
        sl = self.module.encoder.in_slices[names.index(mechanism)]
        n, r = len(q), len(ref)
        qf = as_float_array(q, name=f"X[{mechanism!r}]").reshape(n, -1)
        if qf.shape[1] != sl.stop - sl.start:
            raise ValueError(f"X[{mechanism!r}] has the wrong per-sample size {qf.shape[1:]}")
        out = np.empty(n)
        rows_per = max(1, batch_size // r)
        for start in range(0, n, rows_per):
            qb = qf[start:start + rows_per]
            joint = np.repeat(ref[None], len(qb), axis=0)  # (b, R, D)
            joint[:, :, sl] = qb[:, None, :]
            flat = joint.reshape(-1, ref.shape[1])
            pred = self._predict_flat(flat)
            out[start:start + len(qb)] = pred.reshape(len(qb), r).mean(axis=1)
        return out

    def _predict_flat(self, xf: np.ndarray) -> np.ndarray:
        """Posterior mean (units of y) at packed inputs (M, sum D_m)."""
        blocks, i0 = {}, 0
        for s in self.specs:
            d = int(np.prod(s["shape"]))
            blocks[s["name"]] = xf[:, i0:i0 + d].reshape(-1, *s["shape"])
            i0 += d
        return self.predict(blocks, components=False).mean

    def kernel_summary(self) -> dict[str, Any]:
        """Fitted hyper-parameters in readable form: per term its output scale (units of y^2)
        and lengthscales (latent units), plus the noise variance (units of y^2)."""
        self._check_fitted()
        net = self.module
        scale2 = float(net.y_norm.std) ** 2
        out: dict[str, Any] = {"noise_variance": float(net.likelihood.noise.detach()) * scale2}
        for name, part in zip(self.term_names, net.model.covar_module.kernels):
            base = part.base_kernel
            subs = list(base.kernels) if hasattr(base, "kernels") else [base]
            out[name] = {
                "outputscale": float(part.outputscale.detach()) * scale2,
                "lengthscales": [k.lengthscale.detach().cpu().numpy().ravel().tolist()
                                 for k in subs],
            }
        return out


    def log_marginal_likelihood(self) -> float:
        """Exact log evidence ``log p(y | X)`` of the training targets (nats, a density of
        ``y`` in its own units) at the fitted encoders and hyper-parameters, with the GP
        conditioned on all of them: ``-1/2 r^T (K + s2 I)^-1 r - 1/2 log|K + s2 I| -
        n/2 log 2 pi - n log(std(y))``, ``r = y - m`` (standardised). Exact method only."""
        self._check_fitted()
        if self.method != "exact":
            raise ValueError("log_marginal_likelihood needs method='exact' (a variational GP "
                             "has only a lower bound, the ELBO); refit with method='exact'")
        st = self._posterior_state()
        net = self.module
        resid = net.train_y.to(st["dtype"]) - st["const"]
        n = len(resid)
        quad = float(resid @ st["alpha"])
        logdet = 2.0 * float(torch.log(torch.diagonal(st["chol"])).sum())
        return (-0.5 * quad - 0.5 * logdet - 0.5 * n * math.log(2 * math.pi)
                - n * math.log(float(net.y_norm.std)))


# --------------------------------------------------------------------------------------------
# model selection
# --------------------------------------------------------------------------------------------
@dataclass
class StructureSelection:
    """Kernel structures compared by their exact log marginal likelihood on the same data.

    Attributes:
        chosen: the structure with the largest evidence.
        model: the fitted :class:`Divide` of ``chosen``.
        log_evidence: structure -> ``log p(y | X)`` (nats) of its fitted model.
        n: number of training targets.
        models: structure -> its fitted :class:`Divide` (every candidate, so that the choice
            can be checked on held-out data: the evidence is computed on the training data
            after fitting the encoders and hyper-parameters to them).
    """

    chosen: str
    model: Divide
    log_evidence: dict[str, float]
    n: int
    models: dict[str, Divide] = field(default_factory=dict)

    @property
    def margin(self) -> float:
        """Evidence of the chosen structure minus that of the best other one (nats, >= 0)."""
        others = [v for k, v in self.log_evidence.items() if k != self.chosen]
        return float(self.log_evidence[self.chosen] - max(others))

    @property
    def margin_per_point(self) -> float:
        """:attr:`margin` per training target (nats)."""
        return self.margin / self.n


def select_structure(
    mechanisms, X: Mapping[str, np.ndarray], y: np.ndarray,
    structures: Sequence = ("additive", "scaled"), seed: int = 0, device: str = "auto",
    hidden: int = 32, **fit_kwargs,
) -> StructureSelection:
    """Fit one exact :class:`Divide` per kernel structure on ``(X, y)`` and keep the one with
    the largest log marginal likelihood (type-II maximum likelihood model choice: the
    evidence trades the fit against the complexity of each structure).

    Args:
        mechanisms: as for :class:`Divide`.
        X, y: training inputs (dict of (N, ...)) and targets (N,).
        structures: at least two distinct structures (names or term lists).
        seed, device, hidden: passed to every candidate.
        fit_kwargs: passed to every :meth:`Divide.fit` (``progress`` defaults to False).

    Returns:
        :class:`StructureSelection`.
    """
    keys = [s if isinstance(s, str) else "+".join("*".join(t) for t in s) for s in structures]
    if len(keys) < 2 or len(set(keys)) != len(keys):
        raise ValueError(f"give at least two distinct structures to choose from, got {keys}")
    fit_kwargs.setdefault("progress", False)
    models, evidence = {}, {}
    for key, structure in zip(keys, structures):
        model = Divide(mechanisms, structure=structure, seed=seed, device=device, hidden=hidden)
        model.fit(X, y, **fit_kwargs)
        models[key], evidence[key] = model, model.log_marginal_likelihood()
    chosen = max(evidence, key=evidence.get)
    return StructureSelection(chosen=chosen, model=models[chosen], log_evidence=evidence,
                              n=len(np.asarray(y)), models=models)


# --------------------------------------------------------------------------------------------
# active learning
# --------------------------------------------------------------------------------------------
def _take(X: Mapping[str, np.ndarray], idx: np.ndarray) -> dict[str, np.ndarray]:
    return {k: np.asarray(v)[idx] for k, v in X.items()}


def active_learning(
    make_model: Callable[[], Divide],
    X_pool: Mapping[str, np.ndarray],
    y_pool: np.ndarray,
    X_test: Mapping[str, np.ndarray],
    y_test: np.ndarray,
    n_init: int = 20,
    n_steps: int = 10,
    batch_size: int = 5,
    strategy: str = "uncertainty",
    epochs_init: int = 200,
    epochs_step: int = 60,
    seed: int = 0,
    progress: bool = True,
    **fit_kwargs,
) -> ActiveLearningResult:
    """Pool-based active learning with a Divide model.

    Start from ``n_init`` random pool points; at each of ``n_steps`` steps label
    ``batch_size`` more, either those with the largest posterior variance of ``f``
    (``"uncertainty"``) or at random (``"random"``), and refit (warm start, ``epochs_step``
    epochs). The same ``seed`` gives the same initial set for both strategies.

    Args:
        make_model: callable returning a fresh, unfitted :class:`Divide`.
        X_pool, y_pool: candidate inputs (dict of (P, ...)) and their labels (P,), revealed
            only when chosen.
        X_test, y_test: held-out inputs and targets (T,) for the error curve (use noise-free
            targets when known).

    Returns:
        :class:`ActiveLearningResult`.
    """
    if strategy not in ("uncertainty", "random"):
        raise ValueError(f"strategy must be 'uncertainty' or 'random', got {strategy!r}")
    y_pool = np.asarray(real_array(y_pool, "y_pool"), dtype=np.float64)
    n_pool = len(y_pool)
    if not 3 <= n_init < n_pool or n_init + n_steps * batch_size > n_pool:
        raise ValueError(f"n_init ({n_init}) + n_steps * batch_size ({n_steps * batch_size}) "
                         f"must fit in the pool of {n_pool} (and n_init >= 3)")
    rng = np.random.default_rng(seed)
    chosen = list(rng.choice(n_pool, size=n_init, replace=False))
    pick_rng = np.random.default_rng(seed + 1)
    model = make_model()
    n_lab, errors = [], []
    y_test = np.asarray(real_array(y_test, "y_test"), dtype=np.float64)
    for step in progress_bar(range(n_steps + 1), desc=f"active ({strategy})", disable=not progress):
        idx = np.asarray(chosen)
        model.fit(_take(X_pool, idx), y_pool[idx], progress=False,
                  epochs=epochs_init if step == 0 else epochs_step, **fit_kwargs)
        pred = model.predict(X_test, components=False)
        n_lab.append(len(chosen))
        errors.append(float(np.sqrt(np.mean((pred.mean - y_test) ** 2))))
        if step == n_steps:
            break
        rest = np.setdiff1d(np.arange(n_pool), idx)
        if strategy == "random":
            new = pick_rng.choice(rest, size=batch_size, replace=False)
        else:
            var = model.predict(_take(X_pool, rest), components=False).variance
            new = rest[np.argsort(-var, kind="stable")[:batch_size]]
        chosen.extend(int(i) for i in new)
    return ActiveLearningResult(strategy=strategy, n_labelled=np.asarray(n_lab),
                                rmse=np.asarray(errors), chosen=np.asarray(chosen, dtype=np.int64))
