"""Hop rates of a Si dopant as a function of the beam offset, learned by an MLP ensemble.

Data: dwells of the beam at local-frame offsets ``b`` (angstrom, see
:mod:`helpers.simulate.si_dopant`), each of ``tau`` seconds, and what the frames showed
afterwards: no hop, or a hop to neighbour ``k`` (0, 1, 2). A dwell ends at the first hop, so
with rates ``lambda_k(b)`` and total ``Lambda = sum_k lambda_k`` the exact likelihood is

- no hop (survival):        ``p = exp(-Lambda tau)``,
- hop to ``k`` (categorical): ``p = (1 - exp(-Lambda tau)) * lambda_k / Lambda``.

Each member of the ensemble is an MLP ``b -> log lambda(b)`` trained on that likelihood,
each on its own bootstrap weights of the dwells (Poisson(1) counts) and from its own initial
weights; the spread of the members is the uncertainty. With ``symmetry="c3"`` (default) one
network gives the rate toward neighbour 0, and the rate toward neighbour ``k`` is that
network at the offset turned by ``-120 k`` degrees: the three-fold symmetry of a Si in
graphene, built in rather than learned.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from scipy.stats import t as student_t
from torch import nn

from .base import Estimator, as_float_array, not_fitted
from .training import History, run_epochs

__all__ = ["RateEnsemble", "RatePrediction", "dwell_log_likelihood", "spread_inflation"]

_SYMMETRIES = ("c3", "none")


def dwell_log_likelihood(rates, dwell_s, neighbour) -> np.ndarray:
    """Exact log-likelihood of each dwell's outcome under the given rates.

    Args:
        rates: ``(N, 3)`` hop rates per second toward neighbours 0, 1, 2 (positive).
        dwell_s: ``(N,)`` or scalar dwell times, seconds.
        neighbour: ``(N,)`` int, the neighbour reached, -1 for no hop.

    Returns:
        ``(N,)`` float64 log-probabilities (nats): ``-Lambda tau`` without a hop,
        ``log(1 - exp(-Lambda tau)) + log(lambda_k / Lambda)`` with a hop to ``k``.
    """
    lam = np.asarray(rates, dtype=np.float64)
    if lam.ndim != 2 or lam.shape[1] != 3 or not (lam > 0).all():
        raise ValueError("rates must be an (N, 3) array of positive rates per second")
    k = _outcomes(neighbour, len(lam))
    tau = np.broadcast_to(np.asarray(dwell_s, dtype=np.float64), (len(lam),))
    total = lam.sum(1)
    x = total * tau
    hopped = k >= 0
    picked = lam[np.arange(len(lam)), np.maximum(k, 0)]
    with np.errstate(divide="ignore"):
        log_hop = np.log(-np.expm1(-x)) + np.log(picked / total)
    return np.where(hopped, log_hop, -x)


def _outcomes(neighbour, n: int) -> np.ndarray:
    k = np.asarray(neighbour)
    if k.shape != (n,) or k.dtype.kind not in "iu":
        raise ValueError(f"neighbour must be an (N,) integer array with N = {n}, got "
                         f"{k.dtype} of shape {k.shape}")
    if not np.isin(k, (-1, 0, 1, 2)).all():
        raise ValueError("neighbour must hold -1 (no hop) or 0, 1, 2 (the neighbour reached)")
    return k.astype(np.int64)


@dataclass
class RatePrediction:
    """Rates predicted by the ensemble at ``M`` offsets (per second).

    Attributes:
        rates: ``(M, 3)`` mean of the members' rates toward neighbours 0, 1, 2.
        lower, upper: ``(M, 3)`` the central ``level`` band of the log rate,
            ``exp(mean -+ c t sd sqrt(1 + 1/K))``: ``mean`` and ``sd`` over the ``K`` members,
            ``t`` the Student-t quantile with ``K - 1`` degrees of freedom (the prediction
            interval of one more draw from the members' distribution, which the truth is
            taken to be), ``c`` the ``inflation`` passed to ``predict`` (1 by default; see
            :func:`spread_inflation`).
        log_mean: ``(M, 3)`` that ``mean``; log_sd: ``(M, 3)`` that ``sd`` (natural log
            units).
        members: ``(K, M, 3)`` each member's rates.
        level: the band's nominal coverage.
    """

    rates: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    log_mean: np.ndarray
    log_sd: np.ndarray
    members: np.ndarray
    level: float


class _EnsembleMLP(nn.Module):
    """``K`` independent MLPs evaluated at once: ``(B, 2)`` offsets -> ``(K, B, 3)`` log rates.

    Weights are stacked as ``(K, in, out)`` and applied with batched matrix products.
    """

    def __init__(self, n_members: int, hidden: int, depth: int, symmetry: str,
                 length_scale: float):
        super().__init__()
        self.symmetry = symmetry
        n_out = 1 if symmetry == "c3" else 3
        sizes = [2] + [hidden] * depth + [n_out]
        self.weights = nn.ParameterList()
        self.biases = nn.ParameterList()
        for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
            bound = 1.0 / math.sqrt(fan_in)  # nn.Linear's default initialisation
            self.weights.append(nn.Parameter(
                (torch.rand(n_members, fan_in, fan_out) * 2 - 1) * bound))
            self.biases.append(nn.Parameter(
                (torch.rand(n_members, 1, fan_out) * 2 - 1) * bound))
        angles = -np.deg2rad([0.0, 120.0, 240.0])  # turn neighbour k's direction onto 0's
        rot = np.stack([[np.cos(angles), -np.sin(angles)],
                        [np.sin(angles), np.cos(angles)]]).transpose(2, 0, 1)
        self.register_buffer("rotations", torch.as_tensor(rot, dtype=torch.float32))
        self.length_scale = length_scale  # A, offsets are divided by it

    def _mlp(self, x: torch.Tensor) -> torch.Tensor:
        """``(K, B, 2)`` -> ``(K, B, n_out)``."""
        last = len(self.weights) - 1
        for i, (w, b) in enumerate(zip(self.weights, self.biases)):
            x = torch.baddbmm(b, x, w)
            if i < last:
                x = torch.nn.functional.silu(x)
        return x

    def forward(self, offsets: torch.Tensor) -> torch.Tensor:
        k = self.weights[0].shape[0]
        x = offsets / self.length_scale
        if self.symmetry == "c3":  # (3, B, 2): the offset as seen from each neighbour's side
            turned = torch.einsum("rij,bj->rbi", self.rotations, x)
            out = self._mlp(turned.reshape(1, -1, 2).expand(k, -1, -1))
            return out.reshape(k, 3, -1).transpose(1, 2)
        return self._mlp(x.unsqueeze(0).expand(k, -1, -1))


def _log1mexp(x: torch.Tensor) -> torch.Tensor:
    """``log(1 - exp(-x))`` for ``x > 0``, accurate for small and large ``x``."""
    return torch.where(x < math.log(2.0), torch.log(-torch.expm1(-x)),
                       torch.log1p(-torch.exp(-x)))


class RateEnsemble(Estimator):
    """An ensemble of MLPs mapping a beam offset to the Si's three hop rates.

    Args:
        n_members: ensemble size ``K`` (each member trains on its own bootstrap weights).
        hidden: units per hidden layer. depth: hidden layers (SiLU activations).
        symmetry: ``"c3"`` (one network, turned to each neighbour; the default) or
            ``"none"`` (three outputs, no symmetry assumed).
        length_scale: angstrom; offsets are divided by it before the first layer, so that
            features as narrow as the rate peaks (a few tenths of an angstrom) are reachable
            with weights of order one.
        seed: seeds the initial weights and the bootstrap/shuffling of each ``fit``.
        device: ``"auto"``, ``"cpu"``, ``"cuda"`` or ``"mps"``.

    ``fit(offsets, dwell_s, neighbour)`` takes local-frame offsets ``(N, 2)`` in angstrom,
    dwell times in seconds and the outcome (-1 no hop, else the neighbour);
    ``predict(offsets)`` returns a :class:`RatePrediction` in rates per second.
    """

    def __init__(self, n_members: int = 8, hidden: int = 64, depth: int = 2,
                 symmetry: str = "c3", length_scale: float = 0.5, seed: int = 0,
                 device: str = "auto"):
        if symmetry not in _SYMMETRIES:
            raise ValueError(f"symmetry must be one of {_SYMMETRIES}, got {symmetry!r}")
        for name, value, low in (("n_members", n_members, 2), ("hidden", hidden, 1),
                                 ("depth", depth, 1)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
                raise ValueError(f"{name} must be an integer >= {low}, got {value!r}"
                                 + (" (the spread needs two members at least)"
                                    if name == "n_members" else ""))
        if not (isinstance(length_scale, (int, float)) and 0 < length_scale < math.inf):
            raise ValueError(f"length_scale must be a positive number of angstrom, "
                             f"got {length_scale!r}")
        super().__init__(seed=seed, device=device, n_members=int(n_members),
                         hidden=int(hidden), depth=int(depth), symmetry=symmetry,
                         length_scale=float(length_scale))
        c = self.config
        self._build_module(lambda: _EnsembleMLP(c["n_members"], c["hidden"], c["depth"],
                                                c["symmetry"], c["length_scale"]))

    def _inputs(self, offsets) -> np.ndarray:
        return as_float_array(offsets, "offsets", ndim=2, shape_tail=(2,))

    def fit(self, offsets, dwell_s, neighbour, epochs: int = 150, batch_size: int = 256,
            lr: float = 3e-3, weight_decay: float = 1e-4, progress: bool = True) -> History:
        """Maximise the exact likelihood of the dwells (module docstring), member by member.

        Args:
            offsets: ``(N, 2)`` local-frame beam offsets, angstrom.
            dwell_s: ``(N,)`` or scalar dwell times, seconds (positive).
            neighbour: ``(N,)`` int, -1 for no hop, else the neighbour reached (0, 1, 2).
            epochs, batch_size: passes over the dwells and dwells per step.
            lr, weight_decay: AdamW settings (the rate is cosine-annealed to 5 %).
            progress: tqdm progress bar.

        Returns:
            :class:`History`: ``loss`` = negative log-likelihood per dwell (nats, averaged
            over the members), ``seconds``.
        """
        x = self._inputs(offsets)
        n = len(x)
        k = _outcomes(neighbour, n)
        tau = np.broadcast_to(np.asarray(dwell_s, dtype=np.float64), (n,))
        if not (np.isfinite(tau).all() and (tau > 0).all()):
            raise ValueError("dwell_s must be positive and finite (seconds)")
        if not (k >= 0).any():
            raise ValueError("no dwell ended in a hop: rates cannot be learned; collect more "
                             "dwells or dwell longer")
        if batch_size < 1 or epochs < 1:
            raise ValueError(f"batch_size and epochs must be >= 1, got {batch_size}, {epochs}")
        seed = self._fit_seed()
        g_shuffle = self._generator(seed)
        g_boot = self._generator(seed + 1)
        dev, net = self.device, self.module
        n_members = self.config["n_members"]
        xt = torch.as_tensor(x, device=dev)
        kt = torch.as_tensor(k, device=dev)
        taut = torch.as_tensor(np.array(tau, dtype=np.float32), device=dev)
        boot = torch.poisson(torch.ones(n_members, n, device=g_boot.device),
                             generator=g_boot).to(dev)  # (K, N) bootstrap counts
        if not self._fitted:  # first fit: start every member at the mean hop rate
            with torch.no_grad():
                mean_rate = (k >= 0).sum() / float(tau.sum()) / 3.0
                net.biases[-1].fill_(math.log(mean_rate))
        opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=weight_decay)
        steps = int(epochs) * math.ceil(n / batch_size)
        sched = torch.optim.lr_scheduler.LambdaLR(
            opt, lambda s: 0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(s, steps) / steps)))

        def epoch_batches(epoch):
            order = torch.randperm(n, generator=g_shuffle, device=g_shuffle.device).to(dev)
            for start in range(0, n, batch_size):
                idx = order[start:start + batch_size]
                yield idx, len(idx) / n

        def batch_loss(idx):
            nll = _nll(net(xt[idx]), taut[idx], kt[idx])  # (K, B)
            return (boot[:, idx] * nll).sum(1).mean() / len(idx), {}

        history = run_epochs(module=net, optimizer=opt, epoch_batches=epoch_batches,
                             batch_loss=batch_loss, epochs=epochs, desc="rate ensemble",
                             progress=progress, guard_floor=1.0, after_step=sched.step)
        self._fitted = True
        return history

    def predict(self, offsets, level: float = 0.9, inflation: float = 1.0,
                batch_size: int = 65536) -> RatePrediction:
        """Rates per second at ``(M, 2)`` local-frame offsets (angstrom), with the members'
        central ``level`` band, its half-width multiplied by ``inflation`` (>= 1; see
        :class:`RatePrediction` and :func:`spread_inflation`)."""
        if not self._fitted:
            raise not_fitted(type(self).__name__, "fit(offsets, dwell_s, neighbour)")
        if not 0.0 < level < 1.0:
            raise ValueError(f"level must be in (0, 1), got {level}")
        if not (isinstance(inflation, (int, float, np.floating)) and 1.0 <= inflation < math.inf):
            raise ValueError(f"inflation must be a finite number >= 1 (1 = the members' own "
                             f"spread; see spread_inflation), got {inflation!r}")
        x = self._inputs(offsets)
        outs = []
        with torch.no_grad():
            for start in range(0, len(x), batch_size):
                xb = torch.as_tensor(x[start:start + batch_size], device=self.device)
                outs.append(self.module(xb).double().cpu().numpy())
        log_rates = np.concatenate(outs, axis=1)  # (K, M, 3)
        members = np.exp(log_rates)
        mean_log, log_sd = log_rates.mean(0), log_rates.std(0, ddof=1)
        # the truth treated as one more draw from the members' distribution: a Student-t
        # prediction interval, since the spread is estimated from only K members
        n_members = log_rates.shape[0]
        z = float(student_t.ppf(0.5 + level / 2, n_members - 1) * math.sqrt(1 + 1 / n_members)
                  * inflation)
        return RatePrediction(rates=members.mean(0), lower=np.exp(mean_log - z * log_sd),
                              upper=np.exp(mean_log + z * log_sd), log_mean=mean_log,
                              log_sd=log_sd,
                              members=members, level=float(level))


def spread_inflation(a: RatePrediction, b: RatePrediction) -> float:
    """How much wider the band must be so that two ensembles trained on *independent*
    experiments disagree no more than their spreads allow: a check without ground truth.

    If each ensemble's member spread were the true fit-to-fit spread, the difference of the
    two ensembles' mean log rates at the same offsets would have variance
    ``sd_a^2 + sd_b^2``. The factor is ``sqrt(mean(diff^2) / mean(sd_a^2 + sd_b^2))`` over
    the offsets, floored at 1: disagreement between independent fits reveals spread that
    the bootstrap missed, but not a bias the two fits share, so it widens, never narrows.

    Args:
        a, b: predictions of the two ensembles at the same ``M`` offsets.

    Returns:
        The factor (>= 1) to pass as ``inflation`` to :meth:`RateEnsemble.predict`.
    """
    if a.log_mean.shape != b.log_mean.shape:
        raise ValueError(f"the two predictions must be at the same offsets, got shapes "
                         f"{a.log_mean.shape} and {b.log_mean.shape}")
    diff2 = np.mean((a.log_mean - b.log_mean) ** 2)
    spread2 = np.mean(a.log_sd ** 2 + b.log_sd ** 2)
    if not spread2 > 0:
        raise ValueError("the members do not differ at all (zero spread): train each "
                         "ensemble with two or more members from its own seed")
    return float(max(1.0, math.sqrt(diff2 / spread2)))


def _nll(log_rates: torch.Tensor, tau: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """Negative log-likelihood ``(K, B)`` of outcomes ``k`` ``(B,)`` after dwells ``tau``
    ``(B,)`` under log rates ``(K, B, 3)`` (module docstring)."""
    log_total = torch.logsumexp(log_rates, dim=-1)  # (K, B)
    x = (torch.exp(log_total) * tau).clamp(min=1e-12)  # keeps log(1 - exp(-x)) finite
    picked = torch.gather(log_rates, -1, k.clamp(min=0).view(1, -1, 1).expand(
        log_rates.shape[0], -1, 1)).squeeze(-1)
    hop = -(_log1mexp(x) + picked - log_total)
    return torch.where(k >= 0, hop, x)
