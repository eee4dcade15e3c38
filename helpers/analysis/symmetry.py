"""A Bayesian definition of symmetry: how much evidence the data give for a symmetric
structure against a distorted one, for the toy lattice of
:mod:`helpers.simulate.distorted_lattice` and for latents of atomic patches.

Toy model (lengths in lattice constants). Atom ``k`` of a centred square lattice patch, with
fractional coordinates ``f_k`` and sublattice ``s_k`` (1 for the centred B atom), is observed at

    y_k = o + a f_k + s_k d + e_k,     e_k ~ N(0, sigma^2 I)

with origin ``o``, lattice constant ``a`` and B displacement ``d``. The **symmetric** model
``M0`` fixes ``d = 0``; the **distorted** model ``M1`` gives ``d ~ N(0, tau^2 I)``. Both give
the nuisance parameters the same Gaussian priors ``o ~ N(0, s_o^2 I)``,
``a ~ N(a_0, s_a^2)``. Each model is linear in its parameters, ``y = X beta + e`` with
``beta ~ N(m, S)``, so its marginal likelihood (evidence) is closed form:

    p(y | M) = N(y; X m, sigma^2 I + X S X^T)

computed here through the Woodbury identity and the matrix determinant lemma (``p`` x ``p``
matrices only, ``p`` <= 5 parameters). Bayes' rule then gives

    P(M0 | y) = pi_0 p(y | M0) / (pi_0 p(y | M0) + (1 - pi_0) p(y | M1)).

All the evidence about ``d`` is in its least-squares estimate ``dhat ~ N(d, s^2 I)``. With the
lattice known, ``dhat`` is the mean B displacement and ``s = sigma / sqrt(N)`` for ``N`` B
atoms; with the lattice fitted from the same noisy atoms, ``s = sigma / sqrt(N_eff)``, where
``N_eff`` (:func:`effective_atoms`, between ``N / 2`` and ``N`` for these patches) counts the
atoms' worth of information left about ``d`` once the cage around each B atom is estimated. With
``r = tau^2 / s^2`` the log Bayes factor is
``log B10 = -log(1 + r) + |dbar|^2 r / (2 s^2 (1 + r))``, and ``P(M0 | y) = 1/2`` at

    delta* = (sigma / sqrt(N)) sqrt(2 (1 + 1/r) (log(1 + r) + log(pi_0 / (1 - pi_0)))),

(``N`` read as ``N_eff``) so the threshold scales as ``sigma / sqrt(N)`` times a factor
that grows slowly (as the square root of a logarithm) with the prior's width against ``s``:
whether a structure "has" the symmetry depends on the distortion, the noise, the number of
atoms and the prior. That is the threshold for data showing exactly the true ``d``; a typical
(median) noisy data set shows ``|dhat|^2 ~ s^2 chi'^2_2(delta^2 / s^2)`` (noncentral, two
degrees of freedom), larger than ``delta^2``, so its threshold is lower, markedly so when
``r`` is small (``threshold_delta(..., median_data=True)``).

For images: :func:`two_state_mixture` fits a two-component Gaussian mixture to latents and
returns each sample's posterior probabilities; :func:`rotational_asymmetry` says, without
ground truth, which component's decoded motif breaks the four-fold symmetry.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._checks import real_array

__all__ = [
    "log_evidence",
    "lattice_design",
    "effective_atoms",
    "SymmetryPosterior",
    "symmetry_posterior",
    "threshold_delta",
    "median_p_symmetric",
    "posterior_threshold",
    "LatentMixture",
    "two_state_mixture",
    "rotational_asymmetry",
]


def _finite(x, name: str) -> np.ndarray:
    out = np.asarray(real_array(x, name), dtype=np.float64)
    if not np.isfinite(out).all():
        raise ValueError(f"{name} holds NaN or inf; remove or mask those values first")
    return out


def _positive(value, name: str, hint: str) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a positive number ({hint}), got {value!r}") from None
    if not (np.isfinite(v) and v > 0):
        raise ValueError(f"{name} must be a positive number ({hint}), got {value!r}")
    return v


def _probability(value, name: str) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a probability in (0, 1), got {value!r}") from None
    if not 0.0 < v < 1.0:
        raise ValueError(f"{name} must be a probability strictly between 0 and 1 (0.5: no "
                         f"preference between the models), got {value!r}")
    return v


# --------------------------------------------------------------------------------------------
# linear-Gaussian evidence
# --------------------------------------------------------------------------------------------
def log_evidence(y, X, prior_mean, prior_cov, sigma: float) -> np.ndarray:
    """Log marginal likelihood of ``y = X beta + e``, ``beta ~ N(prior_mean, prior_cov)``,
    ``e ~ N(0, sigma^2 I)``: ``log N(y; X m, sigma^2 I + X S X^T)``, in nats.

    Args:
        y: ``(n,)`` one data vector or ``(B, n)`` several sharing the design.
        X: ``(n, p)`` design matrix (``p`` may be 0: no free parameter).
        prior_mean: ``(p,)``.
        prior_cov: ``(p, p)`` symmetric positive definite.
        sigma: noise standard deviation (> 0), in the units of ``y``.

    Returns:
        ``()`` for one data vector, ``(B,)`` for several.
    """
    y = _finite(y, "y")
    X = _finite(X, "X")
    single = y.ndim == 1
    y = np.atleast_2d(y)
    if y.ndim != 2 or X.ndim != 2 or X.shape[0] != y.shape[1]:
        raise ValueError(f"y must be (n,) or (B, n) and X (n, p) with the same n; got y "
                         f"{y.shape} and X {X.shape}")
    p = X.shape[1]
    m = _finite(prior_mean, "prior_mean").reshape(-1)
    S = _finite(prior_cov, "prior_cov").reshape(p, p) if p else np.zeros((0, 0))
    if m.shape != (p,):
        raise ValueError(f"prior_mean must have {p} entries (one per column of X), got "
                         f"{m.shape}")
    sigma = _positive(sigma, "sigma", "the noise standard deviation")
    n = y.shape[1]
    s2 = sigma * sigma
    r = y - m @ X.T  # (B, n) residual from the prior mean
    quad = np.einsum("bi,bi->b", r, r) / s2
    logdet = n * np.log(s2)
    if p:
        try:
            chol_s = np.linalg.cholesky(S)
        except np.linalg.LinAlgError:
            raise ValueError("prior_cov must be symmetric positive definite (every prior "
                             "variance > 0)") from None
        # matrix determinant lemma with A = I + L^T X^T X L / sigma^2 (L L^T = S)
        XL = X @ chol_s
        A = np.eye(p) + XL.T @ XL / s2
        chol_a = np.linalg.cholesky(A)
        logdet += 2.0 * np.log(np.diag(chol_a)).sum()
        # Woodbury: r^T Sigma^-1 r = |r|^2/s2 - |C^-1 L^T X^T r|^2 / s2^2, C C^T = A
        v = np.linalg.solve(chol_a, (r @ XL).T)  # (p, B)
        quad = quad - np.einsum("pb,pb->b", v, v) / (s2 * s2)
    out = -0.5 * (n * np.log(2.0 * np.pi) + logdet + quad)
    return out[0] if single else out


def lattice_design(fractional, sublattice, distorted: bool) -> np.ndarray:
    """Design matrix of the toy lattice models for positions flattened as
    ``(x_0, y_0, x_1, y_1, ...)``.

    Columns: origin x, origin y, lattice constant, and for the distorted model the B
    displacement x, y.

    Args:
        fractional: ``(n_atoms, 2)`` ideal fractional coordinates ``(x, y)``.
        sublattice: ``(n_atoms,)`` 0 (corner) or 1 (displaced atom).
        distorted: include the displacement columns.

    Returns:
        ``(2 n_atoms, 3)`` or ``(2 n_atoms, 5)`` float64.
    """
    f = _finite(fractional, "fractional")
    s = _finite(sublattice, "sublattice").reshape(-1)
    if f.ndim != 2 or f.shape[1] != 2 or len(s) != len(f):
        raise ValueError(f"fractional must be (n_atoms, 2) and sublattice (n_atoms,), got "
                         f"{f.shape} and {s.shape}")
    n = len(f)
    X = np.zeros((n, 2, 5 if distorted else 3))
    X[:, 0, 0] = 1.0
    X[:, 1, 1] = 1.0
    X[:, :, 2] = f
    if distorted:
        X[:, 0, 3] = s
        X[:, 1, 4] = s
    return X.reshape(2 * n, -1)


def effective_atoms(fractional, sublattice) -> float:
    """``N_eff = sigma^2 / var(dhat)``: how many perfectly placed atoms the noisy lattice is
    worth for estimating the displacement ``d`` (one component), ``dhat`` the least-squares
    estimate of the distorted model with origin and lattice constant fitted too. Equals the
    number of B atoms if the cage were known; smaller because it is estimated."""
    X = lattice_design(fractional, sublattice, True)
    gram = X.T @ X
    if np.linalg.matrix_rank(gram) < gram.shape[0]:
        raise ValueError("the lattice patch does not determine the displacement (it needs "
                         "corner atoms and at least one B atom)")
    return float(1.0 / np.linalg.inv(gram)[3, 3])


@dataclass
class SymmetryPosterior:
    """What :func:`symmetry_posterior` returns (``B`` data sets).

    log_evidence_symmetric, log_evidence_distorted: ``(B,)`` nats.
    log_bayes_factor: ``(B,)`` ``log p(y | distorted) - log p(y | symmetric)``.
    p_symmetric: ``(B,)`` posterior probability of the symmetric model.
    displacement: ``(B, 2)`` posterior mean of ``d`` under the distorted model.
    """

    log_evidence_symmetric: np.ndarray
    log_evidence_distorted: np.ndarray
    log_bayes_factor: np.ndarray
    p_symmetric: np.ndarray
    displacement: np.ndarray

    @property
    def p_distorted(self) -> np.ndarray:
        """``(B,)`` posterior probability of the distorted model."""
        return 1.0 - self.p_symmetric


def symmetry_posterior(observed, fractional, sublattice, sigma: float, displacement_sd: float,
                       origin_sd: float = 1.0, lattice_mean: float = 1.0,
                       lattice_sd: float = 0.05, prior_symmetric: float = 0.5
                       ) -> SymmetryPosterior:
    """Posterior probability that toy lattices are symmetric (``d = 0``).

    Args:
        observed: ``(n_atoms, 2)`` or ``(B, n_atoms, 2)`` measured ``(x, y)`` positions.
        fractional, sublattice: the atoms' ideal fractional coordinates and sublattice
            (``ToyLattices.fractional``, ``.sublattice``).
        sigma: position noise (known), same unit as ``observed``.
        displacement_sd: ``tau``, prior standard deviation of each component of ``d`` under
            the distorted model.
        origin_sd, lattice_mean, lattice_sd: the nuisance priors, shared by both models.
        prior_symmetric: prior probability ``pi_0`` of the symmetric model.

    Returns:
        :class:`SymmetryPosterior`.
    """
    obs = _finite(observed, "observed")
    single = obs.ndim == 2
    obs = obs[None] if single else obs
    if obs.ndim != 3 or obs.shape[2] != 2:
        raise ValueError(f"observed must be (n_atoms, 2) or (B, n_atoms, 2), got {obs.shape}")
    tau = _positive(displacement_sd, "displacement_sd", "prior spread of the distortion")
    s_o = _positive(origin_sd, "origin_sd", "prior spread of the origin")
    s_a = _positive(lattice_sd, "lattice_sd", "prior spread of the lattice constant")
    pi0 = _probability(prior_symmetric, "prior_symmetric")
    lattice_mean = float(lattice_mean)
    y = obs.reshape(len(obs), -1)
    evidence, X1 = [], None
    for distorted in (False, True):
        X = lattice_design(fractional, sublattice, distorted)
        if X.shape[0] != y.shape[1]:
            raise ValueError(f"observed has {y.shape[1] // 2} atoms but fractional has "
                             f"{X.shape[0] // 2}; pass the lattice's own sites")
        var = [s_o**2, s_o**2, s_a**2] + ([tau**2, tau**2] if distorted else [])
        mean = np.r_[0.0, 0.0, lattice_mean, np.zeros(2 if distorted else 0)]
        evidence.append(log_evidence(y, X, mean, np.diag(var), sigma))
        X1, mean1, var1 = X, mean, np.asarray(var)
    log_bf = evidence[1] - evidence[0]
    log_odds = np.log(pi0 / (1.0 - pi0)) - log_bf  # log P(M0|y) / P(M1|y)
    p_sym = 0.5 * (1.0 + np.tanh(0.5 * log_odds))  # the logistic function, overflow-free
    # posterior mean of beta under M1: (S^-1 + X^T X / s2)^-1 (S^-1 m + X^T y / s2)
    s2 = float(sigma) ** 2
    precision = np.diag(1.0 / var1) + X1.T @ X1 / s2
    beta = np.linalg.solve(precision, (mean1 / var1)[:, None] + X1.T @ y.T / s2).T
    out = SymmetryPosterior(evidence[0], evidence[1], log_bf, p_sym, beta[:, 3:5])
    if single:
        out = SymmetryPosterior(*(np.asarray(v)[0] if np.ndim(v) else v
                                  for v in vars(out).values()))
    return out


def threshold_delta(sigma, n, displacement_sd, prior_symmetric: float = 0.5,
                    median_data: bool = False):
    """The distortion at which ``P(symmetric | data) = 1/2`` when the data show exactly that
    mean B displacement and the lattice is known (see the module docstring):

        delta* = (sigma / sqrt(N)) sqrt(2 (1 + 1/r) (log(1 + r) + log(pi_0 / (1 - pi_0))))

    with ``r = N tau^2 / sigma^2``; pass ``N_eff`` (:func:`effective_atoms`) for a lattice
    fitted from the same atoms. With ``median_data=True``, the distortion at which the
    *median* noisy data set sits at ``P = 1/2``: the ``delta`` whose estimate
    ``|dhat|^2 ~ s^2 chi'^2_2(delta^2 / s^2)`` has median ``delta*^2``. Arguments broadcast
    (numpy arrays or numbers). Where even ``d = 0`` (or the median data set at ``d = 0``) is
    called distorted, the threshold is 0.
    """
    sigma = np.asarray(sigma, dtype=np.float64)
    n = np.asarray(n, dtype=np.float64)
    tau = np.asarray(displacement_sd, dtype=np.float64)
    if not (np.all(sigma > 0) and np.all(n > 0) and np.all(tau > 0)):
        raise ValueError("sigma, n (atoms, N_eff may be fractional) and displacement_sd must "
                         "all be > 0")
    pi0 = _probability(prior_symmetric, "prior_symmetric")
    s = sigma / np.sqrt(n)
    r = (tau / s) ** 2
    inner = np.log1p(r) + np.log(pi0 / (1.0 - pi0))
    q = 2.0 * (1.0 + 1.0 / r) * np.clip(inner, 0.0, None)  # (delta* / s)^2
    if not median_data:
        return s * np.sqrt(q)
    from scipy.optimize import brentq
    from scipy.stats import chi2, ncx2

    def median_root(q_value: float) -> float:
        if q_value <= chi2.median(2):  # the median data set at d = 0 is already past it
            return 0.0
        return brentq(lambda lam: ncx2.median(2, lam) - q_value, 1e-12, q_value)

    lam = np.vectorize(median_root, otypes=[float])(q)
    return s * np.sqrt(lam)


class _CommonNoise:
    """``n_repeats`` toy lattices with fixed noise, nuisance parameters and displacement
    directions, to which any ``delta`` can be applied (common random numbers: the median
    posterior is then a smooth, decreasing function of ``delta``)."""

    def __init__(self, sigma, n_cells, displacement_sd, n_repeats, origin_sd, lattice_sd,
                 prior_symmetric, seed):
        from ..simulate.distorted_lattice import toy_lattices

        repeats = int(n_repeats)
        if repeats < 1:
            raise ValueError(f"n_repeats must be >= 1, got {n_repeats!r}")
        rng = np.random.default_rng(seed)
        phi = rng.uniform(0.0, 2.0 * np.pi, repeats)
        self.unit = np.c_[np.cos(phi), np.sin(phi)]
        self.base = toy_lattices(np.zeros((repeats, 2)), sigma, n_cells, origin_sd,
                                 lattice_sd, seed=int(rng.integers(2**31)))
        self.settings = (sigma, displacement_sd, origin_sd, 1.0, lattice_sd, prior_symmetric)

    def p_symmetric(self, delta: float) -> np.ndarray:
        """``(n_repeats,)`` posterior probability of the symmetric model at ``delta``."""
        base = self.base
        observed = base.observed.copy()
        observed[:, base.sublattice == 1] += float(delta) * self.unit[:, None, :]
        return symmetry_posterior(observed, base.fractional, base.sublattice,
                                  *self.settings).p_symmetric


def median_p_symmetric(deltas, sigma: float, n_cells, displacement_sd: float,
                       n_repeats: int = 64, origin_sd: float = 1.0, lattice_sd: float = 0.05,
                       prior_symmetric: float = 0.5, seed: int = 0) -> np.ndarray:
    """Median over ``n_repeats`` simulated toy lattices (random displacement directions,
    noise ``sigma``, ``n_cells`` per side) of ``P(symmetric | data)`` at each true distortion
    in ``deltas`` ``(M,)`` (lattice constants); the same noise for every ``delta``.

    Returns:
        ``(M,)``.
    """
    crn = _CommonNoise(sigma, n_cells, displacement_sd, n_repeats, origin_sd, lattice_sd,
                       prior_symmetric, seed)
    d = _finite(deltas, "deltas").reshape(-1)
    return np.array([np.median(crn.p_symmetric(v)) for v in d])


def posterior_threshold(sigma: float, n_cells, displacement_sd: float, n_repeats: int = 64,
                        origin_sd: float = 1.0, lattice_sd: float = 0.05,
                        prior_symmetric: float = 0.5, seed: int = 0) -> float:
    """The distortion ``delta`` at which the median of ``P(symmetric | data)`` over
    ``n_repeats`` simulated toy lattices equals 1/2, found by root finding (measured through
    the full model, not from the formula of :func:`threshold_delta`), with the common random
    numbers of :func:`median_p_symmetric`. Units: lattice constants.
    """
    from scipy.optimize import brentq

    crn = _CommonNoise(sigma, n_cells, displacement_sd, n_repeats, origin_sd, lattice_sd,
                       prior_symmetric, seed)

    def excess(delta: float) -> float:
        return float(np.median(crn.p_symmetric(delta))) - 0.5

    if excess(0.0) <= 0:
        return 0.0
    n_eff = effective_atoms(crn.base.fractional, crn.base.sublattice)
    hi = float(threshold_delta(sigma, n_eff, displacement_sd, prior_symmetric)) + sigma
    while excess(hi) > 0:
        hi *= 2.0
    return float(brentq(excess, 0.0, hi, xtol=1e-6 * hi, rtol=1e-6))


# --------------------------------------------------------------------------------------------
# latents: a two-state decision
# --------------------------------------------------------------------------------------------
@dataclass
class LatentMixture:
    """A two-component Gaussian mixture of latents (``D`` dimensions, ``N`` samples).

    means: ``(2, D)``; covariances: ``(2, D, D)``; weights: ``(2,)`` mixing proportions;
    probs: ``(N, 2)`` posterior probability of each component per sample (Bayes' rule with
    the fitted mixture as prior and likelihood); log_likelihood: mean per sample, nats.
    """

    means: np.ndarray
    covariances: np.ndarray
    weights: np.ndarray
    probs: np.ndarray
    log_likelihood: float

    @property
    def labels(self) -> np.ndarray:
        """``(N,)`` the more probable component (the decision at ``P = 1/2``)."""
        return self.probs.argmax(1)

    def confident(self, level: float = 0.9) -> np.ndarray:
        """``(N,)`` bool: samples whose more probable component has posterior >= ``level``."""
        return self.probs.max(1) >= level


def two_state_mixture(z, seed: int = 0, n_init: int = 5) -> LatentMixture:
    """Fit a two-component full-covariance Gaussian mixture to latents ``z`` ``(N, D)``
    (scikit-learn, EM from ``n_init`` k-means starts; deterministic by ``seed``) and return
    each sample's posterior component probabilities. Components are ordered by their first
    mean coordinate, so the order does not depend on the fit's initialisation."""
    from sklearn.mixture import GaussianMixture

    x = _finite(z, "z")
    x = x.reshape(len(x), -1) if x.ndim == 1 else x
    if x.ndim != 2 or len(x) < 4:
        raise ValueError(f"z must be (N, D) latents with N >= 4, got shape {x.shape}")
    gm = GaussianMixture(2, covariance_type="full", n_init=int(n_init), random_state=seed,
                         reg_covar=1e-6 * max(float(x.var(0).max()), 1e-12)).fit(x)
    order = np.argsort(gm.means_[:, 0])
    return LatentMixture(means=gm.means_[order], covariances=gm.covariances_[order],
                         weights=gm.weights_[order], probs=gm.predict_proba(x)[:, order],
                         log_likelihood=float(gm.score(x)))


def rotational_asymmetry(images, order: int = 4) -> np.ndarray:
    """How much each image changes under a turn by ``360 / order`` degrees about its centre
    pixel: ``|x - R x| / |x - mean(x)|`` over the largest centred disc (0: invariant).

    Args:
        images: ``(N, S, S)`` or one ``(S, S)``, square with an odd side ``S`` so that the
            centre of rotation is a pixel (the patch centre of
            ``helpers.features.extract_patches``).
        order: 2 or 4 (turns that map the pixel grid onto itself).

    Returns:
        ``(N,)`` (or a float for one image).
    """
    x = _finite(images, "images")
    single = x.ndim == 2
    x = x[None] if single else x
    if x.ndim != 3 or x.shape[1] != x.shape[2] or x.shape[1] % 2 == 0:
        raise ValueError(f"images must be (N, S, S) with an odd side S (the rotation centre "
                         f"is the centre pixel), got {x.shape}; cut odd windows")
    if order not in (2, 4):
        raise ValueError(f"order must be 2 or 4 (turns that keep the pixel grid), got {order}")
    side = x.shape[1]
    c = (side - 1) / 2.0
    rr, cc = np.mgrid[:side, :side]
    disc = (rr - c) ** 2 + (cc - c) ** 2 <= c**2
    turned = np.rot90(x, k=4 // order, axes=(1, 2))
    centred = x - x[:, disc].mean(1)[:, None, None]
    num = np.sqrt(((x - turned)[:, disc] ** 2).sum(1))
    den = np.sqrt((centred[:, disc] ** 2).sum(1))
    out = num / np.where(den > 0, den, 1.0)
    return float(out[0]) if single else out
