"""Bayesian optimisation and random search of an expensive objective on a box, over repeats.

Both searches run ``n_repeats`` independent repeats in lockstep, so the objective is called
with every repeat's next points at once (``(M, d)`` in, ``(M,)`` out): a vectorised simulator
then evaluates a whole round in one batch. Repeat ``r`` of both methods starts from the same
``n_init`` uniform random points (drawn from ``seed`` and ``r``), so a BO run and a random
run of the same repeat differ only in how they choose the points after that.

Bayesian optimisation (BoTorch): the box is mapped to the unit cube, a ``SingleTaskGP``
(BoTorch's default: an RBF kernel with one lengthscale per dimension under a log-normal
prior that scales with the dimension; or a kernel passed in, such as
:class:`~helpers.models.response_kernel.ResponseKernel`, which compares the trajectories
the points stand for; noise inferred or fixed; outcomes standardised) is
fitted to every point of the repeat so far by maximising the marginal likelihood, and ``q``
new points maximise the batch log expected improvement ``qLogEI`` over the best value seen,
in the whole cube or in a TuRBO-style trust region around the best point. The GP is refitted from
scratch each round with BoTorch's own optimiser (L-BFGS on the marginal likelihood), not the
suite's ``run_epochs``: there are no epochs or mini-batches in an exact GP fit. Randomness
(the initial design, the quasi-Monte Carlo samples of the acquisition and its random
restarts) is drawn from ``seed``, so the same seed gives the same trace.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from ..env import progress as progress_bar

__all__ = ["OptimisationTrace", "Surrogate", "bayes_opt", "fit_surrogate", "local_refine",
           "random_search"]


@dataclass
class OptimisationTrace:
    """The points a search evaluated and what the objective returned, per repeat.

    Attributes:
        X: ``(R, N, d)`` evaluated points in the box's units, in evaluation order.
        y: ``(R, N)`` objective values.
        method: a short label.
        n_init: how many of the first points were the shared random design.
    """

    X: np.ndarray
    y: np.ndarray
    method: str
    n_init: int

    @property
    def best_so_far(self) -> np.ndarray:
        """``(R, N)`` best value after each evaluation."""
        return np.maximum.accumulate(self.y, axis=1)

    @property
    def best_x(self) -> np.ndarray:
        """``(R, d)`` the best point of each repeat."""
        return self.X[np.arange(len(self.X)), self.y.argmax(1)]


def _check_bounds(bounds) -> np.ndarray:
    b = np.asarray(bounds, dtype=np.float64)
    if b.ndim != 2 or b.shape[1] != 2 or len(b) < 1:
        raise ValueError(f"bounds must have shape (d, 2) (low, high per dimension), got "
                         f"{np.shape(bounds)}")
    if not np.isfinite(b).all() or not (b[:, 1] > b[:, 0]).all():
        raise ValueError("bounds must be finite with high > low in every dimension")
    return b


def _check_counts(n_evals, n_repeats, n_init=1, q=1) -> None:
    for name, value in (("n_evals", n_evals), ("n_repeats", n_repeats), ("n_init", n_init),
                        ("q", q)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    if n_init > n_evals:
        raise ValueError(f"n_init ({n_init}) must not exceed n_evals ({n_evals})")


def _evaluate(objective: Callable, X: np.ndarray) -> np.ndarray:
    """``objective`` on ``(R, k, d)`` points -> ``(R, k)``, checked."""
    r, k, d = X.shape
    y = np.asarray(objective(X.reshape(r * k, d)), dtype=np.float64)
    if y.shape != (r * k,):
        raise ValueError(f"the objective must return one value per point, shape ({r * k},); "
                         f"got {y.shape}")
    if not np.isfinite(y).all():
        raise ValueError("the objective returned NaN or inf; it must be finite everywhere in "
                         "the box")
    return y.reshape(r, k)


def _design(bounds: np.ndarray, n: int, n_repeats: int, seed: int) -> np.ndarray:
    """``(R, n, d)`` uniform random points; repeat r from its own stream."""
    low, high = bounds[:, 0], bounds[:, 1]
    return np.stack([low + (high - low) * np.random.default_rng([seed, r]).random(
        (n, len(bounds))) for r in range(n_repeats)])


def random_search(objective: Callable, bounds, n_evals: int = 40, n_repeats: int = 10,
                  seed: int = 0) -> OptimisationTrace:
    """Uniform random points in the box, ``n_evals`` per repeat (the baseline).

    Args:
        objective: ``(M, d)`` points -> ``(M,)`` finite values to maximise.
        bounds: ``(d, 2)`` low and high of each dimension.
        n_evals: evaluations per repeat. n_repeats: independent repeats.
        seed: the same seed and repeat draw the same points as :func:`bayes_opt`'s design.

    Returns:
        :class:`OptimisationTrace` (``n_init = n_evals``).
    """
    b = _check_bounds(bounds)
    _check_counts(n_evals, n_repeats)
    X = _design(b, n_evals, n_repeats, int(seed))
    return OptimisationTrace(X=X, y=_evaluate(objective, X), method="random",
                             n_init=int(n_evals))


@dataclass
class Surrogate:
    """A GP fitted once to evaluated points, as :func:`bayes_opt` fits one every round.

    Attributes:
        model: the fitted BoTorch ``SingleTaskGP`` (on the box mapped to the unit cube).
        bounds: ``(d, 2)`` the box.
    """

    model: object
    bounds: np.ndarray

    def predict(self, X) -> np.ndarray:
        """``(M, d)`` points in the box's units -> ``(M,)`` posterior means (float64)."""
        x = np.asarray(X, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != len(self.bounds):
            raise ValueError(f"X must have shape (M, {len(self.bounds)}), got {x.shape}")
        x01 = (x - self.bounds[:, 0]) / (self.bounds[:, 1] - self.bounds[:, 0])
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            with torch.no_grad():
                return np.concatenate([
                    self.model.posterior(torch.as_tensor(chunk)).mean.reshape(-1).numpy()
                    for chunk in np.array_split(x01, max(1, len(x01) // 256))])
        finally:
            torch.set_num_threads(threads)


def fit_surrogate(X, y, bounds, noise: float | None = None,
                  kernel: Callable | None = None) -> Surrogate:
    """Fit the GP of :func:`bayes_opt` once, e.g. to score how well a kernel predicts the
    objective at held-out points before spending evaluations on a search.

    Args:
        X: ``(n, d)`` evaluated points in the box's units (n >= 2). y: ``(n,)`` their values.
        bounds: ``(d, 2)`` the box (mapped to the unit cube, as in :func:`bayes_opt`).
        noise, kernel: as in :func:`bayes_opt`.

    Returns:
        :class:`Surrogate` (``.predict(X)`` gives posterior means).
    """
    b = _check_bounds(bounds)
    x = np.asarray(X, dtype=np.float64)
    v = np.asarray(y, dtype=np.float64)
    if x.ndim != 2 or x.shape[1] != len(b) or v.shape != (len(x),) or len(x) < 2:
        raise ValueError(f"X must have shape (n, {len(b)}) with n >= 2 and y shape (n,); got "
                         f"{x.shape} and {v.shape}")
    if not (np.isfinite(x).all() and np.isfinite(v).all()):
        raise ValueError("X and y must be finite")
    if kernel is not None and not callable(kernel):
        raise TypeError(f"kernel must be None or a function returning a fresh gpytorch kernel, "
                        f"got {kernel!r}")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        model = _fit_gp((x - b[:, 0]) / (b[:, 1] - b[:, 0]), v, noise, kernel)
    finally:
        torch.set_num_threads(threads)
    return Surrogate(model=model, bounds=b)


def _propose(X01: np.ndarray, y: np.ndarray, q: int, seed: int, num_restarts: int,
             raw_samples: int, mc_samples: int, side: float | None = None,
             noise: float | None = None, kernel: Callable | None = None) -> np.ndarray:
    """``q`` new points in the unit cube by qLogEI on a GP fitted to ``(X01, y)``.

    ``side``: when given, the acquisition is maximised only inside a trust region, a box
    centred on the best point so far with sides ``side`` times the GP's lengthscales over
    their geometric mean (clipped to the cube); ``None`` searches the whole cube.
    ``noise``: a fixed noise variance in units of the outcome variance; ``None`` infers it.
    ``kernel``: a factory of the GP's kernel; ``None`` takes BoTorch's default.

    Runs on one torch thread (restored afterwards): a GP on tens of points is faster without
    a thread pool, and much faster on a busy machine, where pooled threads wait for cores.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return _fit_and_maximise(X01, y, q, seed, num_restarts, raw_samples, mc_samples,
                                     side, noise, kernel)
    finally:
        torch.set_num_threads(threads)


def _fit_gp(X01, y, noise=None, kernel=None):
    """BoTorch ``SingleTaskGP`` on ``(n, d)`` unit-cube points and ``(n,)`` values, fitted by
    the marginal likelihood (outcomes standardised; noise fixed or inferred; the default or
    the given kernel)."""
    from botorch.fit import fit_gpytorch_mll
    from botorch.models import SingleTaskGP
    from botorch.models.transforms.outcome import Standardize
    from gpytorch.mlls import ExactMarginalLogLikelihood

    tx = torch.as_tensor(X01, dtype=torch.float64)
    ty = torch.as_tensor(y, dtype=torch.float64).unsqueeze(-1)
    yvar = None if noise is None else torch.full_like(ty, noise) * ty.var().clamp_min(1e-12)
    covar = None if kernel is None else kernel().double()
    gp = SingleTaskGP(tx, ty, train_Yvar=yvar, outcome_transform=Standardize(m=1),
                      covar_module=covar)
    fit_gpytorch_mll(ExactMarginalLogLikelihood(gp.likelihood, gp))
    return gp


def _fit_and_maximise(X01, y, q, seed, num_restarts, raw_samples, mc_samples,
                      side=None, noise=None, kernel=None) -> np.ndarray:
    from botorch.acquisition.logei import qLogExpectedImprovement
    from botorch.optim import optimize_acqf
    from botorch.sampling import SobolQMCNormalSampler

    d = X01.shape[1]
    tx = torch.as_tensor(X01, dtype=torch.float64)
    ty = torch.as_tensor(y, dtype=torch.float64).unsqueeze(-1)
    gp = _fit_gp(X01, y, noise, kernel)
    sampler = SobolQMCNormalSampler(torch.Size([mc_samples]), seed=seed)
    acq = qLogExpectedImprovement(gp, best_f=ty.max(), sampler=sampler)
    unit = torch.stack([torch.zeros(d), torch.ones(d)]).double()
    if side is not None:
        # TuRBO's region: longer sides along the dimensions the GP finds smoother
        ls = gp.covar_module.lengthscale.detach().reshape(-1).double()
        half = 0.5 * side * ls / ls.log().mean().exp()
        centre = tx[ty.argmax()]
        unit = torch.stack([(centre - half).clamp(0.0, 1.0), (centre + half).clamp(0.0, 1.0)])
    cand, _ = optimize_acqf(acq, bounds=unit, q=q, num_restarts=num_restarts,
                            raw_samples=raw_samples, options={"seed": seed, "maxiter": 50})
    return cand.detach().numpy().clip(0.0, 1.0)


def bayes_opt(objective: Callable, bounds, n_evals: int = 40, n_init: int = 10, q: int = 5,
              n_repeats: int = 10, seed: int = 0, num_restarts: int = 2,
              raw_samples: int = 64, mc_samples: int = 64, trust_region: float | None = None,
              noise: float | None = None, failure_tolerance: int | None = None,
              kernel: Callable | None = None, progress: bool = True) -> OptimisationTrace:
    """Batch Bayesian optimisation (GP + qLogEI, module docstring), repeats in lockstep.

    Args:
        objective: ``(M, d)`` points in the box's units -> ``(M,)`` finite values to
            maximise; called once per round with every repeat's ``q`` new points.
        bounds: ``(d, 2)`` low and high of each dimension (mapped to the unit cube).
        n_evals: evaluations per repeat, the ``n_init`` random ones included (the last
            round is cut to fit).
        n_init: random points before the first GP fit (the same as :func:`random_search`'s
            first ``n_init`` with the same seed).
        q: points proposed per round (jointly, by qLogEI).
        n_repeats: independent repeats. seed: seeds the design and every proposal.
        num_restarts, raw_samples: the acquisition optimiser's restarts (L-BFGS-B, at most
            50 iterations each) and its random candidates for choosing them.
        mc_samples: quasi-Monte Carlo samples of the batch acquisition.
        trust_region: ``None`` (default) maximises the acquisition over the whole box. A
            number in ``(0, 1]`` is the starting side of a TuRBO-style trust region (Eriksson
            et al., NeurIPS 2019) in unit-cube units: a box around the repeat's best point,
            its sides scaled by the GP's lengthscales (geometric mean 1); a round that does
            not improve the repeat's best counts a failure, one that does resets the count,
            and ``failure_tolerance`` failures in a row halve the side, so the search
            narrows onto the best basin found once exploring stops paying. Only TuRBO's
            shrinking is kept: the side never grows back and the region never restarts.
        failure_tolerance: rounds without improvement in a row before the trust region
            halves; ``None`` takes TuRBO's ``ceil(max(4, d) / q)`` (one round for ``q >= d``,
            several for small batches, so that a sequential search is not cut short).
        noise: ``None`` (default) lets the GP infer its noise level; a number >= 0 fixes the
            noise variance at that fraction of the variance of the values seen (a small
            value for a deterministic objective, so that the GP does not explain small but
            real differences between points away as noise).
        kernel: ``None`` (default) uses BoTorch's default kernel on the unit cube. Otherwise
            a function of no arguments that returns a fresh ``gpytorch`` kernel on the unit
            cube (called every round, since the GP is refitted from scratch), e.g.
            ``functools.partial(ResponseKernel, field, bounds, dt=...)``. It is used as it
            is, with its own output scale if it needs one (outcomes are standardised, so
            BoTorch's default has none). Cannot be combined with ``trust_region``, whose
            sides follow the default kernel's per-dimension lengthscales.
        progress: progress bar over rounds (:func:`helpers.env.progress`).

    Returns:
        :class:`OptimisationTrace`.
    """
    b = _check_bounds(bounds)
    _check_counts(n_evals, n_repeats, n_init, q)
    if n_init < 2:
        raise ValueError(f"n_init must be >= 2 so that the first GP has data to fit, got {n_init}")
    if trust_region is not None and not (isinstance(trust_region, (int, float))
                                         and 0 < trust_region <= 1):
        raise ValueError(f"trust_region must be None (whole box) or a side in (0, 1] of the "
                         f"unit cube, got {trust_region!r}")
    if kernel is not None and not callable(kernel):
        raise TypeError(f"kernel must be None or a function returning a fresh gpytorch kernel "
                        f"(e.g. functools.partial(ResponseKernel, ...)), got {kernel!r}")
    if kernel is not None and trust_region is not None:
        raise ValueError("trust_region needs the default kernel (its sides follow the "
                         "per-dimension lengthscales); use trust_region=None with a custom "
                         "kernel")
    if noise is not None and not (isinstance(noise, (int, float)) and 0 <= noise < math.inf):
        raise ValueError(f"noise must be None (inferred) or a variance >= 0 as a fraction of "
                         f"the values' variance, got {noise!r}")
    if failure_tolerance is None:
        failure_tolerance = math.ceil(max(4, len(b)) / q)
    elif isinstance(failure_tolerance, bool) or not isinstance(
            failure_tolerance, (int, np.integer)) or failure_tolerance < 1:
        raise ValueError(f"failure_tolerance must be None (TuRBO's rule) or an integer >= 1 "
                         f"(rounds without improvement before the trust region halves), got "
                         f"{failure_tolerance!r}")
    seed = int(seed)
    low, span = b[:, 0], b[:, 1] - b[:, 0]
    X = _design(b, n_init, n_repeats, seed)
    y = _evaluate(objective, X)
    sides = [None if trust_region is None else float(trust_region)] * n_repeats
    failures = [0] * n_repeats
    n_rounds = math.ceil((n_evals - n_init) / q)
    for k in progress_bar(range(n_rounds), desc="Bayesian optimisation", disable=not progress):
        k_q = min(q, n_evals - X.shape[1])
        new = np.stack([low + span * _propose((X[r] - low) / span, y[r], k_q,
                                              seed * 100_003 + 1009 * r + k, num_restarts,
                                              raw_samples, mc_samples, sides[r], noise,
                                              kernel)
                        for r in range(n_repeats)])
        y_new = _evaluate(objective, new)
        for r in range(n_repeats):
            failures[r] = 0 if y_new[r].max() > y[r].max() else failures[r] + 1
            if sides[r] is not None and failures[r] >= failure_tolerance:
                sides[r] /= 2
                failures[r] = 0
        X = np.concatenate([X, new], axis=1)
        y = np.concatenate([y, y_new], axis=1)
    return OptimisationTrace(X=X, y=y, method="bayesian", n_init=int(n_init))


def local_refine(objective: Callable, bounds, starts, n_rounds: int = 4, n_perturb: int = 16,
                 step: float = 0.05, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Polish starting points by a batched stochastic hill climb inside the box.

    Each round draws ``n_perturb`` Gaussian perturbations of every start's current best
    point (standard deviation ``step`` times the box's span per dimension, clipped to the
    box), evaluates them all in one call and keeps any improvement; a start whose round
    brought none halves its step. Used to turn the best points of a dense search into a
    reference optimum that is not one lucky sample. Costs ``n_rounds * n_perturb`` evaluations
    per start (plus one for the starts).

    Args:
        objective: ``(M, d)`` points -> ``(M,)`` finite values to maximise.
        bounds: ``(d, 2)`` low and high of each dimension.
        starts: ``(S, d)`` points inside the box.
        n_rounds, n_perturb: rounds and perturbations per start and round (integers >= 1).
        step: first perturbation scale as a fraction of the span (> 0).
        seed: seeds the perturbations.

    Returns:
        ``(S, d)`` refined points and their ``(S,)`` values (never below the starts').
    """
    b = _check_bounds(bounds)
    _check_counts(n_rounds, n_perturb)
    x = np.asarray(starts, dtype=np.float64)
    if x.ndim != 2 or x.shape[1] != len(b):
        raise ValueError(f"starts must have shape (S, {len(b)}), got {np.shape(starts)}")
    if ((x < b[:, 0]) | (x > b[:, 1])).any():
        raise ValueError("starts must lie inside the bounds; clip them to the box first")
    if not step > 0:
        raise ValueError(f"step must be > 0 (a fraction of the box's span), got {step!r}")
    rng = np.random.default_rng(int(seed))
    low, span = b[:, 0], b[:, 1] - b[:, 0]
    y = _evaluate(objective, x[:, None])[:, 0]
    scale = np.full(len(x), float(step))
    for _ in range(n_rounds):
        cand = x[:, None] + rng.normal(size=(len(x), n_perturb, len(b))) * (
            scale[:, None, None] * span)
        cand = np.clip(cand, low, b[:, 1])
        yc = _evaluate(objective, cand)
        k = yc.argmax(1)
        better = yc[np.arange(len(x)), k] > y
        x = np.where(better[:, None], cand[np.arange(len(x)), k], x)
        y = np.where(better, yc[np.arange(len(x)), k], y)
        scale = np.where(better, scale, scale / 2)
    return x, y
