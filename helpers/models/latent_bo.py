"""Bayesian optimisation and random search of an expensive objective on a box, over repeats.

Both searches run ``n_repeats`` independent repeats in lockstep, so the objective is called
with every repeat's next points at once (``(M, d)`` in, ``(M,)`` out): a vectorised simulator
then evaluates a whole round in one batch. Repeat ``r`` of both methods starts from the same
``n_init`` uniform random points (drawn from ``seed`` and ``r``), so a BO run and a random
run of the same repeat differ only in how they choose the points after that.

Bayesian optimisation (BoTorch): the box is mapped to the unit cube, a ``SingleTaskGP``
(BoTorch's default: an RBF kernel with one lengthscale per dimension under a log-normal
prior that scales with the dimension; noise inferred or fixed; outcomes standardised) is
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

__all__ = ["OptimisationTrace", "bayes_opt", "local_refine", "random_search"]


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


def _propose(X01: np.ndarray, y: np.ndarray, q: int, seed: int, num_restarts: int,
             raw_samples: int, mc_samples: int, side: float | None = None,
             noise: float | None = None) -> np.ndarray:
    """``q`` new points in the unit cube by qLogEI on a GP fitted to ``(X01, y)``.

    ``side``: when given, the acquisition is maximised only inside a trust region, a box
    centred on the best point so far with sides ``side`` times the GP's lengthscales over
    their geometric mean (clipped to the cube); ``None`` searches the whole cube.
    ``noise``: a fixed noise variance in units of the outcome variance; ``None`` infers it.

    Runs on one torch thread (restored afterwards): a GP on tens of points is faster without
    a thread pool, and much faster on a busy machine, where pooled threads wait for cores.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return _fit_and_maximise(X01, y, q, seed, num_restarts, raw_samples, mc_samples,
                                     side, noise)
    finally:
        torch.set_num_threads(threads)


def _fit_and_maximise(X01, y, q, seed, num_restarts, raw_samples, mc_samples,
                      side=None, noise=None) -> np.ndarray:
    from botorch.acquisition.logei import qLogExpectedImprovement
    from botorch.fit import fit_gpytorch_mll
    from botorch.models import SingleTaskGP
    from botorch.models.transforms.outcome import Standardize
    from botorch.optim import optimize_acqf
    from botorch.sampling import SobolQMCNormalSampler
    from gpytorch.mlls import ExactMarginalLogLikelihood

    d = X01.shape[1]
    tx = torch.as_tensor(X01, dtype=torch.float64)
    ty = torch.as_tensor(y, dtype=torch.float64).unsqueeze(-1)
    yvar = None if noise is None else torch.full_like(ty, noise) * ty.var().clamp_min(1e-12)
    gp = SingleTaskGP(tx, ty, train_Yvar=yvar, outcome_transform=Standardize(m=1))
    fit_gpytorch_mll(ExactMarginalLogLikelihood(gp.likelihood, gp))
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
              progress: bool = True) -> OptimisationTrace:
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
                                              raw_samples, mc_samples, sides[r], noise)
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
