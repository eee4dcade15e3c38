"""Gaussian-process reconstruction of component maps (the "parallel GP" of arXiv:2005.10507).

``K`` maps of one field of view (the abundance maps of an unmixed spectrum image) are modelled
as ``K`` Gaussian processes over the pixel coordinates ``x = (row, col)``:

    f_k ~ GP(m_k, s_k * k(x, x')),  y_k(x) = f_k(x) + e,  e ~ N(0, sigma_k^2),

with the squared-exponential kernel ``k(x, x') = exp(-|x - x'|^2 / (2 l^2))``. The
**parallel GP** (``shared_kernel=True``) gives every component the *same* spatial kernel
(one length scale ``l`` learned from all maps at once, by the sum of their marginal
likelihoods), each component keeping its own mean, scale and noise: the weak, noisy
components borrow the length scale that the strong components determine well. The
**independent GP** (``shared_kernel=False``) learns one length scale per component. Both
are one batched gpytorch exact GP.

With ``periodic=True`` the kernel is *locally periodic*, for maps of a lattice of atomic
columns: per axis ``a``, ``exp(-2 sin^2(pi d_a / p_a) / l_p,a)`` (gpytorch's periodic kernel)
times the squared exponential above as an envelope, so a pixel resembles pixels a lattice
period away while the lattice may drift (turn) across the field. The periods start at the
strongest peak of the maps' power spectrum (no prior lattice constant) and are learned.

Training: the hyperparameters maximise the exact marginal likelihood on a random subset of
at most ``n_train`` observed pixels (an exact GP costs O(n^3)), full batch, with Adam; one
epoch is one optimiser step on that subset, through the suite's ``run_epochs``.

Prediction is deterministic and exact, on *all* observed pixels: the posterior mean and
standard deviation of ``f_k`` (the noise-free map). When every pixel of the ``H x W`` grid is
observed, the kernel matrix factorises, ``K = K_rows (x) K_cols`` (either kernel is a product
over the two axes and the pixels form a product grid), so one eigendecomposition of each
small factor gives the exact posterior on the full image and on any finer product grid in
O(H^3 + W^3 + H W min(H, W)). With a sparse set of observed pixels, a Cholesky factor of the
``n x n`` kernel matrix does it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .base import Estimator, as_float_array, not_fitted
from .training import History, run_epochs

__all__ = ["GPMaps", "ParallelGP"]


@dataclass
class GPMaps:
    """Posterior of the component maps on a grid.

    Attributes:
        mean: ``(K, H', W')`` posterior mean of the noise-free maps (the input's units).
        std: ``(K, H', W')`` posterior standard deviation (same units), or None when not
            asked for.
        rows, cols: ``(H',)``, ``(W',)`` pixel coordinates of the grid (input pixels).
    """

    mean: np.ndarray
    std: np.ndarray | None
    rows: np.ndarray
    cols: np.ndarray


def _lattice_period(z: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """``(2,)`` initial periods (px) along rows and columns: the strongest peak of the maps'
    power spectrum along each axis (unobserved pixels at zero, the standardised mean; FFT
    zero-padded to 256 for resolution), searched between 3 px and a third of the field."""
    filled = np.where(mask, z, 0.0)
    out = np.empty(2)
    for axis in (0, 1):
        size = filled.shape[axis + 1]
        power = (np.abs(np.fft.rfft(filled, n=256, axis=axis + 1)) ** 2).sum(
            axis=(0, 2 - axis))
        freq = np.fft.rfftfreq(256)
        ok = (freq >= 3.0 / size) & (freq <= 1 / 3)
        out[axis] = 1.0 / freq[ok][np.argmax(power[ok])]
    return out


def _axis_kernel(a: np.ndarray, b: np.ndarray, ls: float, period: float | None,
                 period_ls: float | None) -> np.ndarray:
    """One axis's factor of the kernel: ``exp(-d^2 / 2 l^2)``, times gpytorch's periodic
    factor ``exp(-2 sin^2(pi d / p) / l_p)`` for the locally periodic kernel."""
    d = a[:, None] - b[None, :]
    k = np.exp(-(d**2) / (2 * ls**2))
    if period is not None:
        k = k * np.exp(-2 * np.sin(np.pi * d / period) ** 2 / period_ls)
    return k


def _gp_module(x: torch.Tensor, y: torch.Tensor, n_maps: int, shared: bool, lengthscale: float,
               period: np.ndarray | None = None):
    """A batched gpytorch exact GP: ``n_maps`` outputs, one or ``n_maps`` kernels; squared
    exponential, or (``period`` (2,) px given) locally periodic: a per-axis periodic kernel
    times a squared exponential envelope."""
    import gpytorch

    class _BatchGP(gpytorch.models.ExactGP):
        def __init__(self):
            likelihood = gpytorch.likelihoods.GaussianLikelihood(
                batch_shape=torch.Size([n_maps]),
                noise_constraint=gpytorch.constraints.GreaterThan(1e-4))
            super().__init__(x, y, likelihood)
            batch = torch.Size([]) if shared else torch.Size([n_maps])
            self.mean_module = gpytorch.means.ConstantMean(batch_shape=torch.Size([n_maps]))
            rbf = gpytorch.kernels.RBFKernel(batch_shape=batch)
            rbf.lengthscale = lengthscale
            base = rbf
            if period is not None:
                per = gpytorch.kernels.PeriodicKernel(ard_num_dims=2, batch_shape=batch)
                per.period_length = torch.as_tensor(period, dtype=torch.float64)
                per.lengthscale = 1.0
                rbf.lengthscale = 4 * lengthscale  # the envelope: drift of the lattice
                base = per * rbf
            self.covar_module = gpytorch.kernels.ScaleKernel(
                base, batch_shape=torch.Size([n_maps]))
            self.covar_module.outputscale = 1.0
            self.likelihood.noise = 0.5

        def forward(self, inputs):
            return gpytorch.distributions.MultivariateNormal(
                self.mean_module(inputs), self.covar_module(inputs))

    return _BatchGP()


class ParallelGP(Estimator):
    """GP reconstruction of ``K`` component maps, with one shared or ``K`` separate kernels.

    Args:
        shared_kernel: True for the parallel GP (one length scale for all maps), False for an
            independent GP per map.
        epochs: optimiser steps (full batch on the training subset).
        lr: Adam learning rate (on gpytorch's unconstrained hyperparameters).
        n_train: at most this many observed pixels train the hyperparameters.
        lengthscale: initial length scale (pixels).
        periodic: True for the locally periodic kernel (a lattice of atomic columns): per axis
            ``exp(-2 sin^2(pi d / p) / l_p)`` times a squared-exponential envelope, with the
            periods ``p`` initialised from the maps' power spectrum and then learned.
        seed, device: see :class:`~helpers.models.base.Estimator`.

    ``fit(maps, mask)`` returns the :class:`~helpers.models.training.History` (``loss``: the
    negative marginal log likelihood per pixel summed over maps; ``lengthscale``: the mean
    length scale, px). ``predict(upsample)`` returns :class:`GPMaps`.
    """

    def __init__(self, shared_kernel: bool = True, epochs: int = 100, lr: float = 0.1,
                 n_train: int = 1024, lengthscale: float = 2.0, periodic: bool = False, *,
                 seed: int = 0, device: str = "auto"):
        if int(epochs) < 1 or int(n_train) < 8:
            raise ValueError(f"epochs must be >= 1 and n_train >= 8, got {epochs}, {n_train}")
        if not (float(lr) > 0 and float(lengthscale) > 0):
            raise ValueError(f"lr and lengthscale must be > 0, got {lr}, {lengthscale}")
        super().__init__(seed=seed, device=device, shared_kernel=bool(shared_kernel),
                         epochs=int(epochs), lr=float(lr), n_train=int(n_train),
                         lengthscale=float(lengthscale), periodic=bool(periodic))
        self.module = None

    # -- input -------------------------------------------------------------------------------
    @staticmethod
    def _check(maps, mask) -> tuple[np.ndarray, np.ndarray]:
        arr = as_float_array(maps, "maps", ndim=(2, 3)).astype(np.float64)
        if arr.ndim == 2:
            arr = arr[None]
        if min(arr.shape[1:]) < 4:
            raise ValueError(f"maps must be (K, H, W) with H, W >= 4, got {arr.shape}")
        if mask is None:
            m = np.ones(arr.shape[1:], bool)
        else:
            m = np.asarray(mask)
            if m.shape != arr.shape[1:] or m.dtype != bool:
                raise ValueError(f"mask must be a boolean (H, W) = {arr.shape[1:]} array of "
                                 f"observed pixels, got {m.dtype} {m.shape}")
            if m.sum() < 8:
                raise ValueError(f"mask observes {int(m.sum())} pixels; at least 8 are needed")
        return arr, m

    # -- training ----------------------------------------------------------------------------
    def fit(self, maps, mask=None, progress: bool = True) -> History:
        """Learn the hyperparameters from the observed pixels of ``maps``.

        Args:
            maps: ``(K, H, W)`` (or ``(H, W)``) component maps; unobserved pixels may hold
                anything finite (they are ignored).
            mask: ``(H, W)`` bool, True where a pixel was observed; None: all.
        """
        import gpytorch

        arr, m = self._check(maps, mask)
        k, h, w = arr.shape
        rows, cols = np.nonzero(m)
        y = arr[:, rows, cols]  # (K, n)
        self._mu, self._sd = y.mean(1), y.std(1) + 1e-12
        fit_seed = self._fit_seed()
        rng = np.random.default_rng(fit_seed)
        pick = np.sort(rng.choice(len(rows), min(self.config["n_train"], len(rows)),
                                  replace=False))
        dev = self.device
        x_t = torch.tensor(np.stack([rows[pick], cols[pick]], 1), dtype=torch.float64,
                           device=dev)
        y_t = torch.tensor((y[:, pick] - self._mu[:, None]) / self._sd[:, None],
                           dtype=torch.float64, device=dev)
        z = (arr - self._mu[:, None, None]) / self._sd[:, None, None]
        period = _lattice_period(z, m) if self.config["periodic"] else None
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            self.module = _gp_module(x_t, y_t, k, self.config["shared_kernel"],
                                     self.config["lengthscale"], period).to(dev, torch.float64)
        gp = self.module
        mll = gpytorch.mlls.ExactMarginalLogLikelihood(gp.likelihood, gp)
        optimizer = torch.optim.Adam(gp.parameters(), lr=self.config["lr"])

        def batch_loss(_batch):
            with gpytorch.settings.fast_computations(False, False, False):
                loss = -mll(gp(x_t), y_t).sum()
            return loss, {}

        def epoch_end():
            return {"lengthscale": float(self._kernels()[0].lengthscale.detach().mean())}

        # exact GPs train full batch: one epoch is one step on the whole training subset
        history = run_epochs(module=gp, optimizer=optimizer,
                             epoch_batches=lambda _e: [(None, 1.0)], batch_loss=batch_loss,
                             epochs=self.config["epochs"], desc="GP hyperparameters",
                             progress=progress, guard_floor=float(k), epoch_end=epoch_end)
        self._maps, self._mask = arr, m
        self._fitted = True
        return history

    # -- hyperparameters ---------------------------------------------------------------------
    def _kernels(self):
        """The squared-exponential kernel and the periodic one (None unless periodic)."""
        base = self.module.covar_module.base_kernel
        if self.config["periodic"]:
            return base.kernels[1], base.kernels[0]
        return base, None

    def hyperparameters(self) -> dict[str, np.ndarray]:
        """``lengthscale`` (K,) px, ``outputscale`` (K,) and ``noise`` (K,) variances and
        ``mean`` (K,), all in the input maps' units (squared for variances); periodic:
        also ``period`` (K, 2) px and ``period_lengthscale`` (K, 2) along (rows, cols)."""
        if not self._fitted:
            raise not_fitted(type(self).__name__, "fit(maps)")
        gp = self.module
        k = len(self._mu)
        rbf, per = self._kernels()
        ls = rbf.lengthscale.detach().cpu().numpy().reshape(-1)
        sd2 = self._sd**2
        extra = {} if per is None else {
            name: np.broadcast_to(getattr(per, attr).detach().cpu().numpy().reshape(-1, 2),
                                  (k, 2)).copy()
            for name, attr in (("period", "period_length"), ("period_lengthscale", "lengthscale"))}
        return {
            **extra,
            "lengthscale": np.broadcast_to(ls, (k,)).copy(),
            "outputscale": gp.covar_module.outputscale.detach().cpu().numpy().reshape(k) * sd2,
            "noise": gp.likelihood.noise.detach().cpu().numpy().reshape(k) * sd2,
            "mean": gp.mean_module.constant.detach().cpu().numpy().reshape(k) * self._sd
            + self._mu,
        }

    # -- prediction --------------------------------------------------------------------------
    def predict(self, upsample: int = 1, return_std: bool = True) -> GPMaps:
        """Exact posterior of the noise-free maps on the input grid refined ``upsample``
        times: grid pixel ``(i, j)`` sits at ``(i / upsample, j / upsample)`` input pixels.

        Returns:
            :class:`GPMaps` with ``(K, upsample * H, upsample * W)`` mean and std.
        """
        if not self._fitted:
            raise not_fitted(type(self).__name__, "fit(maps)")
        if isinstance(upsample, bool) or int(upsample) != upsample or upsample < 1:
            raise ValueError(f"upsample must be an integer >= 1, got {upsample!r}")
        up = int(upsample)
        k, h, w = self._maps.shape
        rows_out, cols_out = np.arange(up * h) / up, np.arange(up * w) / up
        hp = self.hyperparameters()
        z = (self._maps - self._mu[:, None, None]) / self._sd[:, None, None]
        s = hp["outputscale"] / self._sd**2
        noise = hp["noise"] / self._sd**2
        mean0 = (hp["mean"] - self._mu) / self._sd
        axes = [self._axis_params(hp, i) for i in range(k)]
        with torch.no_grad():
            if self._mask.all():
                mean, var = self._grid_posterior(z, axes, s, noise, mean0,
                                                 rows_out, cols_out, return_std)
            else:
                mean, var = self._sparse_posterior(z, axes, s, noise, mean0,
                                                   rows_out, cols_out, return_std)
        mean = mean * self._sd[:, None, None] + self._mu[:, None, None]
        std = None if var is None else np.sqrt(np.clip(var, 0, None)) * self._sd[:, None, None]
        return GPMaps(mean=mean, std=std, rows=rows_out, cols=cols_out)

    @staticmethod
    def _axis_params(hp: dict, i: int) -> list[tuple]:
        """Component ``i``'s kernel parameters along (rows, cols), for :func:`_axis_kernel`."""
        if "period" not in hp:
            return [(hp["lengthscale"][i], None, None)] * 2
        return [(hp["lengthscale"][i], hp["period"][i, a], hp["period_lengthscale"][i, a])
                for a in (0, 1)]

    def _grid_posterior(self, z, axes, s, noise, mean0, rows_out, cols_out, return_std):
        """Exact posterior from a fully observed grid: eigendecompositions of the row and
        column kernels (``K = s K_r (x) K_c + noise I``)."""
        k, h, w = z.shape
        rows_in, cols_in = np.arange(h, dtype=float), np.arange(w, dtype=float)
        mean = np.empty((k, len(rows_out), len(cols_out)))
        var = np.empty_like(mean) if return_std else None
        for i in range(k):
            (pr, pc) = axes[i]
            lr_, qr = np.linalg.eigh(_axis_kernel(rows_in, rows_in, *pr))
            lc, qc = np.linalg.eigh(_axis_kernel(cols_in, cols_in, *pc))
            lr_, lc = np.clip(lr_, 0, None), np.clip(lc, 0, None)
            d = 1.0 / (s[i] * np.outer(lr_, lc) + noise[i])  # (H, W) inverse eigenvalues
            alpha = qr.T @ (z[i] - mean0[i]) @ qc * d
            ar = _axis_kernel(rows_out, rows_in, *pr) @ qr  # (H', H)
            ac = _axis_kernel(cols_out, cols_in, *pc) @ qc  # (W', W)
            mean[i] = mean0[i] + s[i] * ar @ alpha @ ac.T
            if return_std:
                var[i] = s[i] - s[i] ** 2 * (ar**2) @ d @ (ac**2).T
        return mean, var

    def _sparse_posterior(self, z, axes, s, noise, mean0, rows_out, cols_out, return_std):
        """Exact posterior from scattered observed pixels (Cholesky of the n x n matrix)."""
        from scipy.linalg import cho_factor, cho_solve, solve_triangular

        k = z.shape[0]
        rows, cols = np.nonzero(self._mask)
        rr, cc = np.meshgrid(rows_out, cols_out, indexing="ij")
        mean = np.empty((k, len(rows_out), len(cols_out)))
        var = np.empty_like(mean) if return_std else None
        for i in range(k):
            (pr, pc) = axes[i]
            r_in, c_in = rows.astype(float), cols.astype(float)
            kxx = s[i] * _axis_kernel(r_in, r_in, *pr) * _axis_kernel(c_in, c_in, *pc)
            kxx[np.diag_indices_from(kxx)] += noise[i]
            factor = cho_factor(kxx, lower=True)
            alpha = cho_solve(factor, z[i][rows, cols] - mean0[i])
            ks = s[i] * _axis_kernel(rr.ravel(), r_in, *pr) \
                * _axis_kernel(cc.ravel(), c_in, *pc)  # (M, n)
            mean[i] = (mean0[i] + ks @ alpha).reshape(rr.shape)
            if return_std:
                v = solve_triangular(factor[0], ks.T, lower=True)
                var[i] = (s[i] - np.sum(v**2, axis=0)).reshape(rr.shape)
        return mean, var
