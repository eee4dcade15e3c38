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

Training: the hyperparameters maximise the exact marginal likelihood on a random subset of
at most ``n_train`` observed pixels (an exact GP costs O(n^3)), full batch, with Adam; one
epoch is one optimiser step on that subset, through the suite's ``run_epochs``.

Prediction is deterministic and exact, on *all* observed pixels: the posterior mean and
standard deviation of ``f_k`` (the noise-free map). When every pixel of the ``H x W`` grid is
observed, the kernel matrix factorises, ``K = K_rows (x) K_cols`` (the kernel is a product
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


def _gp_module(x: torch.Tensor, y: torch.Tensor, n_maps: int, shared: bool, lengthscale: float):
    """A batched gpytorch exact GP: ``n_maps`` outputs, one or ``n_maps`` length scales."""
    import gpytorch

    class _BatchGP(gpytorch.models.ExactGP):
        def __init__(self):
            likelihood = gpytorch.likelihoods.GaussianLikelihood(
                batch_shape=torch.Size([n_maps]),
                noise_constraint=gpytorch.constraints.GreaterThan(1e-4))
            super().__init__(x, y, likelihood)
            batch = torch.Size([]) if shared else torch.Size([n_maps])
            self.mean_module = gpytorch.means.ConstantMean(batch_shape=torch.Size([n_maps]))
            self.covar_module = gpytorch.kernels.ScaleKernel(
                gpytorch.kernels.RBFKernel(batch_shape=batch),
                batch_shape=torch.Size([n_maps]))
            self.covar_module.base_kernel.lengthscale = lengthscale
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
        seed, device: see :class:`~helpers.models.base.Estimator`.

    ``fit(maps, mask)`` returns the :class:`~helpers.models.training.History` (``loss``: the
    negative marginal log likelihood per pixel summed over maps; ``lengthscale``: the mean
    length scale, px). ``predict(upsample)`` returns :class:`GPMaps`.
    """

    def __init__(self, shared_kernel: bool = True, epochs: int = 100, lr: float = 0.1,
                 n_train: int = 1024, lengthscale: float = 2.0, *, seed: int = 0,
                 device: str = "auto"):
        if int(epochs) < 1 or int(n_train) < 8:
            raise ValueError(f"epochs must be >= 1 and n_train >= 8, got {epochs}, {n_train}")
        if not (float(lr) > 0 and float(lengthscale) > 0):
            raise ValueError(f"lr and lengthscale must be > 0, got {lr}, {lengthscale}")
        super().__init__(seed=seed, device=device, shared_kernel=bool(shared_kernel),
                         epochs=int(epochs), lr=float(lr), n_train=int(n_train),
                         lengthscale=float(lengthscale))
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
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            self.module = _gp_module(x_t, y_t, k, self.config["shared_kernel"],
                                     self.config["lengthscale"]).to(dev, torch.float64)
        gp = self.module
        mll = gpytorch.mlls.ExactMarginalLogLikelihood(gp.likelihood, gp)
        optimizer = torch.optim.Adam(gp.parameters(), lr=self.config["lr"])

        def batch_loss(_batch):
            with gpytorch.settings.fast_computations(False, False, False):
                loss = -mll(gp(x_t), y_t).sum()
            return loss, {}

        def epoch_end():
            return {"lengthscale": float(gp.covar_module.base_kernel.lengthscale.detach().mean())}

        # exact GPs train full batch: one epoch is one step on the whole training subset
        history = run_epochs(module=gp, optimizer=optimizer,
                             epoch_batches=lambda _e: [(None, 1.0)], batch_loss=batch_loss,
                             epochs=self.config["epochs"], desc="GP hyperparameters",
                             progress=progress, guard_floor=float(k), epoch_end=epoch_end)
        self._maps, self._mask = arr, m
        self._fitted = True
        return history

    # -- hyperparameters ---------------------------------------------------------------------
    def hyperparameters(self) -> dict[str, np.ndarray]:
        """``lengthscale`` (K,) px, ``outputscale`` (K,) and ``noise`` (K,) variances and
        ``mean`` (K,), all in the input maps' units (squared for variances)."""
        if not self._fitted:
            raise not_fitted(type(self).__name__, "fit(maps)")
        gp = self.module
        k = len(self._mu)
        ls = gp.covar_module.base_kernel.lengthscale.detach().cpu().numpy().reshape(-1)
        sd2 = self._sd**2
        return {
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
        with torch.no_grad():
            if self._mask.all():
                mean, var = self._grid_posterior(z, hp["lengthscale"], s, noise, mean0,
                                                 rows_out, cols_out, return_std)
            else:
                mean, var = self._sparse_posterior(z, hp["lengthscale"], s, noise, mean0,
                                                   rows_out, cols_out, return_std)
        mean = mean * self._sd[:, None, None] + self._mu[:, None, None]
        std = None if var is None else np.sqrt(np.clip(var, 0, None)) * self._sd[:, None, None]
        return GPMaps(mean=mean, std=std, rows=rows_out, cols=cols_out)

    @staticmethod
    def _rbf(a: np.ndarray, b: np.ndarray, ls: float) -> np.ndarray:
        return np.exp(-((a[:, None] - b[None, :]) ** 2) / (2 * ls**2))

    def _grid_posterior(self, z, ls, s, noise, mean0, rows_out, cols_out, return_std):
        """Exact posterior from a fully observed grid: eigendecompositions of the row and
        column kernels (``K = s K_r (x) K_c + noise I``)."""
        k, h, w = z.shape
        rows_in, cols_in = np.arange(h, dtype=float), np.arange(w, dtype=float)
        mean = np.empty((k, len(rows_out), len(cols_out)))
        var = np.empty_like(mean) if return_std else None
        for i in range(k):
            lr_, qr = np.linalg.eigh(self._rbf(rows_in, rows_in, ls[i]))
            lc, qc = np.linalg.eigh(self._rbf(cols_in, cols_in, ls[i]))
            lr_, lc = np.clip(lr_, 0, None), np.clip(lc, 0, None)
            d = 1.0 / (s[i] * np.outer(lr_, lc) + noise[i])  # (H, W) inverse eigenvalues
            alpha = qr.T @ (z[i] - mean0[i]) @ qc * d
            ar = self._rbf(rows_out, rows_in, ls[i]) @ qr  # (H', H)
            ac = self._rbf(cols_out, cols_in, ls[i]) @ qc  # (W', W)
            mean[i] = mean0[i] + s[i] * ar @ alpha @ ac.T
            if return_std:
                var[i] = s[i] - s[i] ** 2 * (ar**2) @ d @ (ac**2).T
        return mean, var

    def _sparse_posterior(self, z, ls, s, noise, mean0, rows_out, cols_out, return_std):
        """Exact posterior from scattered observed pixels (Cholesky of the n x n matrix)."""
        from scipy.linalg import cho_factor, cho_solve, solve_triangular

        k = z.shape[0]
        rows, cols = np.nonzero(self._mask)
        rr, cc = np.meshgrid(rows_out, cols_out, indexing="ij")
        mean = np.empty((k, len(rows_out), len(cols_out)))
        var = np.empty_like(mean) if return_std else None
        for i in range(k):
            kxx = s[i] * self._rbf(rows.astype(float), rows.astype(float), ls[i]) \
                * self._rbf(cols.astype(float), cols.astype(float), ls[i])
            kxx[np.diag_indices_from(kxx)] += noise[i]
            factor = cho_factor(kxx, lower=True)
            alpha = cho_solve(factor, z[i][rows, cols] - mean0[i])
            ks = s[i] * self._rbf(rr.ravel(), rows.astype(float), ls[i]) \
                * self._rbf(cc.ravel(), cols.astype(float), ls[i])  # (M, n)
            mean[i] = (mean0[i] + ks @ alpha).reshape(rr.shape)
            if return_std:
                v = solve_triangular(factor[0], ks.T, lower=True)
                var[i] = (s[i] - np.sum(v**2, axis=0)).reshape(rr.shape)
        return mean, var
