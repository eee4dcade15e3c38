"""Gaussian-process regression of a STEM scan-distortion field (notebook 09, arXiv:2009.05635).

The measured displacement of atom ``i`` in frame ``t`` (from its time-mean position) is modelled
per axis ``a`` (row, col) as ``y = f_a(x) + e``, ``e ~ N(0, sigma_a^2)`` (localisation noise),
where ``x`` is where the atom was *scanned*: scan row ``r``, fast-scan column ``c``, frame
``t``. The kernel follows the scan. With the scan time ``tau = t + (r + c / W) / H`` (frames:
the probe visits the rows one after the other, frame after frame),

    k(x, x') = s_d   k_SE(tau; l_drift)                          drift: smooth in scan time
             + s_j   k_SE(tau; l_jit) k_SE(c; l_fast)            line jitter: short along the
                                                                 slow scan, long along the fast
             + s_f   k_SE(c; l_fly) [t = t']                     flyback: a profile along the
                                                                 fast scan, new in every frame
             + s_a   (1 + r~ r~' + q q') [t = t']                frame shift, shear and bend:
                                                                 the drift to second order in
                                                                 each frame (fixed, broad prior)
             + s_s   k_SE((r, c); l_spec) t~ t~'                 specimen: a field smooth over
                                                                 the field of view, growing
                                                                 linearly in time

``t~`` is the frame number centred on the series and ``r~`` the scan row centred on the frame,
both scaled to [-1, 1], and ``q = r~^2 - 1/3``. The first four terms
are the **distortion** (functions of the scan: scan time, fast-scan column, frame); the last is
a real, slowly developing **specimen** displacement (e.g. beam-induced strain). It is fitted
jointly so that the scan terms do not absorb it (a strain that grows in the same place in every
frame is cheap for this term and expensive for a jitter drawn anew per frame), and it is left
out of the correction: :meth:`DistortionGP.predict` returns the distortion alone unless asked
for ``part="specimen"`` or ``"all"``. A specimen displacement that is uniform over the field of
view, linear or quadratic in the scan row, cannot be told from a drift whose speed changes
(which shifts each frame, shears it and bends it along the slow scan): the frame term, with a
broad fixed prior (``s_a`` = 5 standard deviations of the values), takes those components, so
that a real displacement is only recovered up to them.

``l_jit`` is a few scan lines (a fraction of a frame in ``tau``) and ``l_fast`` spans the
frame; frames are independent in the jitter term because their scan times differ by a whole
frame. All length scales, scales and the noise are learned per axis; ``l_spec`` is bounded by
a quarter of the frame: a longer specimen field would overlap the drift's own smooth in-frame
shear (uniform and linear-in-row fields) and take part of it.

Training: the hyperparameters maximise the exact marginal likelihood on a random subset of at
most ``n_train`` observations (an exact GP costs O(n^3)), full batch, with Adam, one step per
epoch through the suite's :func:`~helpers.models.training.run_epochs` (gpytorch supplies the
kernels and the likelihood). Prediction is deterministic: the exact posterior mean and
variance of ``f`` given *all* observations (one Cholesky factor per axis).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .base import Estimator, as_float_array, not_fitted
from .training import History, run_epochs

__all__ = ["Calibration", "DistortionGP", "DistortionPrediction"]


@dataclass
class Calibration:
    """What validation atoms say about a fitted :class:`DistortionGP` (see ``calibrate``).

    Attributes:
        fitted_noise: ``(2,)`` localisation noise learned by the fit, per axis.
        validation_noise: ``(2,)`` the noise the validation atoms' scatter implies.
        validation_coverage: fraction of the validation values inside their 95 % predictive
            band (field plus fitted noise).
    """

    fitted_noise: np.ndarray
    validation_noise: np.ndarray
    validation_coverage: float


@dataclass
class DistortionPrediction:
    """Posterior of the distortion field at query points.

    Attributes:
        mean: ``(m, 2)`` posterior mean of the displacement (the unit of the fitted values).
        std: ``(m, 2)`` posterior standard deviation of the noise-free field, or None.
    """

    mean: np.ndarray
    std: np.ndarray | None


def _gp_module(x: torch.Tensor, y: torch.Tensor, frame_shape: tuple[int, int]):
    """One exact GP (gpytorch) with the scan-aware kernel on inputs ``[tau, col, frame, row,
    t~]``."""
    import gpytorch
    from gpytorch.kernels import LinearKernel, RBFKernel, ScaleKernel

    h, w = frame_shape

    class _ScanGP(gpytorch.models.ExactGP):
        def __init__(self):
            likelihood = gpytorch.likelihoods.GaussianLikelihood(
                noise_constraint=gpytorch.constraints.GreaterThan(1e-4))
            super().__init__(x, y, likelihood)
            self.mean_module = gpytorch.means.ZeroMean()
            drift = RBFKernel(active_dims=[0])
            drift.lengthscale = 3.0
            jit_slow = RBFKernel(active_dims=[0])
            jit_slow.lengthscale = 4.0 / h
            jit_fast = RBFKernel(active_dims=[1])
            jit_fast.lengthscale = float(w)
            fly = RBFKernel(active_dims=[1])
            fly.lengthscale = 0.1 * w
            same_frame = RBFKernel(active_dims=[2])  # 1 within a frame, ~0 between frames
            same_frame.lengthscale = 0.05
            same_frame.raw_lengthscale.requires_grad_(False)
            self.drift = ScaleKernel(drift)
            self.jitter = ScaleKernel(jit_slow * jit_fast)
            self.flyback = ScaleKernel(fly * same_frame)
            affine = LinearKernel(active_dims=[5, 6, 7])  # [1, r~, q] . [1, r~', q']
            affine.variance = 1.0
            affine.raw_variance.requires_grad_(False)
            frame_only = RBFKernel(active_dims=[2])
            frame_only.lengthscale = 0.05
            frame_only.raw_lengthscale.requires_grad_(False)
            self.frame_affine = ScaleKernel(affine * frame_only)
            self.frame_affine.outputscale = 25.0  # broad and fixed: see the module docstring
            self.frame_affine.raw_outputscale.requires_grad_(False)
            space = RBFKernel(active_dims=[3, 1], lengthscale_constraint=gpytorch.constraints
                              .Interval(1.0, 0.25 * min(h, w)))
            space.lengthscale = 0.15 * min(h, w)
            growth = LinearKernel(active_dims=[4])  # t~ t~': linear growth over the series
            growth.variance = 1.0
            growth.raw_variance.requires_grad_(False)  # the scale is the ScaleKernel's
            self.specimen = ScaleKernel(space * growth)
            for part, scale in ((self.drift, 1.0), (self.jitter, 0.1), (self.flyback, 0.05),
                                (self.specimen, 0.05)):
                part.outputscale = scale
            self.likelihood.noise = 0.05

        def covar(self, a, b=None, part: str = "all", diag: bool = False):
            """Prior covariance of the distortion, the specimen term, or their sum."""
            terms = {"distortion": (self.drift, self.jitter, self.flyback, self.frame_affine),
                     "specimen": (self.specimen,)}
            terms["all"] = terms["distortion"] + terms["specimen"]
            return sum(k(a, b, diag=diag) for k in terms[part])

        def forward(self, inputs):
            prior_mean = self.mean_module(inputs)  # zero: the values are standardised
            return gpytorch.distributions.MultivariateNormal(prior_mean, self.covar(inputs))

    return _ScanGP()


class DistortionGP(Estimator):
    """Exact GP of a two-component scan-distortion field over (scan row, column, frame).

    Args:
        frame_shape: ``(H, W)`` of the frames, pixels (defines the scan time).
        n_train: at most this many observations train the hyperparameters.
        epochs: Adam steps (full batch on that subset).
        lr: Adam learning rate on gpytorch's unconstrained hyperparameters.
        seed, device: see :class:`~helpers.models.base.Estimator`.

    ``fit(coords, values)`` returns the :class:`~helpers.models.training.History` (``loss``:
    negative marginal log likelihood per observation summed over the two axes);
    ``predict(coords)`` the :class:`DistortionPrediction` of the distortion (``part=
    "specimen"``: the specimen term; ``"all"``: their sum); ``calibrate`` checks the model on
    validation atoms that were not fitted; ``hyperparameters()`` the learned
    length scales (``l_drift``, ``l_jitter`` in frames and also in scan lines, ``l_fast``,
    ``l_flyback``, ``l_specimen`` in pixels) and scales (the values' unit).

    Not checkpointed: ``save`` / ``load`` of the base class are not supported, since the
    posterior depends on the training data; refit instead (a few seconds).
    """

    def __init__(self, frame_shape, n_train: int = 800, epochs: int = 60, lr: float = 0.05, *,
                 seed: int = 0, device: str = "auto"):
        shape = tuple(int(v) for v in np.ravel(frame_shape))
        if len(shape) != 2 or min(shape) < 8:
            raise ValueError(f"frame_shape must be (H, W) with H, W >= 8 pixels, got "
                             f"{frame_shape!r}")
        if int(epochs) < 1 or int(n_train) < 16:
            raise ValueError(f"epochs must be >= 1 and n_train >= 16, got {epochs}, {n_train}")
        if not float(lr) > 0:
            raise ValueError(f"lr must be > 0, got {lr}")
        super().__init__(seed=seed, device=device, frame_shape=list(shape), n_train=int(n_train),
                         epochs=int(epochs), lr=float(lr))
        self.module = None

    def save(self, path):  # noqa: D102 - documented in the class
        raise NotImplementedError("DistortionGP is not checkpointed: its posterior depends on "
                                  "the training data; fit it again instead")

    # -- input -------------------------------------------------------------------------------
    def _inputs(self, coords, fitting: bool = False) -> np.ndarray:
        """``(n, 3)`` ``[row, col, frame]`` -> ``(n, 8)`` float64 ``[tau, col, frame, row, t~,
        1, r~, r~^2 - 1/3]`` (``t~``: the frame centred on the fitted series, ``r~`` the row
        centred on the frame, both scaled to [-1, 1]; ``fitting`` sets the centre and scale of
        ``t~``)."""
        c = as_float_array(coords, "coords", ndim=2, shape_tail=(3,)).astype(np.float64)
        h, w = self.config["frame_shape"]
        frame = c[:, 2]
        if np.any(frame < 0) or np.any(frame != np.round(frame)):
            raise ValueError("coords[:, 2] must hold integer frame numbers >= 0")
        if fitting:
            lo, hi = frame.min(), frame.max()
            self._t_centre, self._t_half = 0.5 * (lo + hi), max(0.5 * (hi - lo), 0.5)
        t_scaled = (frame - self._t_centre) / self._t_half
        r_scaled = (c[:, 0] - 0.5 * h) / (0.5 * h)
        return np.column_stack([frame + (c[:, 0] + c[:, 1] / w) / h, c[:, 1], frame, c[:, 0],
                                t_scaled, np.ones(len(c)), r_scaled, r_scaled**2 - 1 / 3])

    # -- training ----------------------------------------------------------------------------
    def fit(self, coords, values, progress: bool = True) -> History:
        """Learn the hyperparameters and condition on all observations.

        Args:
            coords: ``(n, 3)`` ``[row, col, frame]``: where each displacement was measured
                (scan row and column in pixels, integer frame number).
            values: ``(n, 2)`` measured displacements along (row, col) (e.g. pm).
        """
        x = self._inputs(coords, fitting=True)
        y = as_float_array(values, "values", ndim=2, shape_tail=(2,)).astype(np.float64)
        if len(y) != len(x):
            raise ValueError(f"coords has {len(x)} rows but values has {len(y)}; pass one "
                             "displacement per position")
        if len(x) < 16:
            raise ValueError(f"need at least 16 observations, got {len(x)}")
        self._mu, self._sd = y.mean(0), y.std(0) + 1e-12
        z = (y - self._mu) / self._sd
        rng = np.random.default_rng(self._fit_seed())
        pick = np.sort(rng.choice(len(x), min(self.config["n_train"], len(x)), replace=False))
        dev = self.device
        x_t = torch.tensor(x[pick], dtype=torch.float64, device=dev)
        y_t = [torch.tensor(z[pick, a], dtype=torch.float64, device=dev) for a in (0, 1)]
        shape = tuple(self.config["frame_shape"])
        self.module = torch.nn.ModuleList(
            [_gp_module(x_t, y_t[a], shape) for a in (0, 1)]).to(dev, torch.float64)
        self._train_once(x_t, y_t, progress)
        self._x, self._z = x, z
        self._factor = None
        self._fitted = True
        return self._history

    def _train_once(self, x_t, y_t, progress: bool) -> None:
        import gpytorch

        gps = list(self.module)
        mlls = [gpytorch.mlls.ExactMarginalLogLikelihood(gp.likelihood, gp) for gp in gps]
        params = [p for p in self.module.parameters() if p.requires_grad]
        optimizer = torch.optim.Adam(params, lr=self.config["lr"])

        def batch_loss(_batch):
            with gpytorch.settings.fast_computations(False, False, False):
                loss = -sum(mll(gp(x_t), y) for mll, gp, y in zip(mlls, gps, y_t))
            return loss, {}

        self.module.train()
        self._history = run_epochs(
            module=self.module, optimizer=optimizer, epoch_batches=lambda _e: [(None, 1.0)],
            batch_loss=batch_loss, epochs=self.config["epochs"], desc="distortion GP",
            progress=progress, guard_floor=2.0)
        self.module.eval()

    # -- hyperparameters ---------------------------------------------------------------------
    def hyperparameters(self) -> dict[str, np.ndarray]:
        """Per axis (row, col), ``(2,)`` each: ``l_drift`` (frames), ``l_jitter`` (frames),
        ``l_jitter_lines`` (scan lines), ``l_fast``, ``l_flyback``, ``l_specimen`` (pixels),
        ``s_drift``, ``s_jitter``, ``s_flyback``, ``s_specimen`` (at the series' ends) and
        ``noise`` (standard deviations, the values' unit)."""
        if not self._fitted:
            raise not_fitted(type(self).__name__, "fit(coords, values)")
        h = self.config["frame_shape"][0]
        out: dict[str, list] = {k: [] for k in ("l_drift", "l_jitter", "l_jitter_lines",
                                                "l_fast", "l_flyback", "l_specimen", "s_drift",
                                                "s_jitter", "s_flyback", "s_specimen", "noise")}
        for a, gp in enumerate(self.module):
            sd = self._sd[a]
            jit = gp.jitter.base_kernel.kernels
            out["l_drift"].append(float(gp.drift.base_kernel.lengthscale.detach()))
            out["l_jitter"].append(float(jit[0].lengthscale.detach()))
            out["l_jitter_lines"].append(float(jit[0].lengthscale.detach()) * h)
            out["l_fast"].append(float(jit[1].lengthscale.detach()))
            out["l_flyback"].append(float(gp.flyback.base_kernel.kernels[0].lengthscale.detach()))
            out["l_specimen"].append(
                float(gp.specimen.base_kernel.kernels[0].lengthscale.detach()))
            for name, part in (("s_drift", gp.drift), ("s_jitter", gp.jitter),
                               ("s_flyback", gp.flyback), ("s_specimen", gp.specimen)):
                out[name].append(float(part.outputscale.detach().sqrt()) * sd)
            out["noise"].append(float(gp.likelihood.noise.detach().sqrt()) * sd)
        return {k: np.array(v) for k, v in out.items()}

    # -- prediction --------------------------------------------------------------------------
    def _kernel(self, gp, a: np.ndarray, b: np.ndarray | None, part: str = "all",
                diag: bool = False) -> np.ndarray:
        ta = torch.tensor(a, dtype=torch.float64, device=self.device)
        tb = ta if b is None else torch.tensor(b, dtype=torch.float64, device=self.device)
        out = gp.covar(ta, tb, part=part, diag=diag)
        return (out if diag else out.to_dense()).cpu().numpy()

    def _factors(self):
        """Cholesky factor and weights of every axis on all observations (computed once)."""
        from scipy.linalg import cho_factor, cho_solve

        if self._factor is None:
            self._factor = []
            with torch.no_grad():
                for a, gp in enumerate(self.module):
                    kxx = self._kernel(gp, self._x, self._x)
                    kxx[np.diag_indices_from(kxx)] += float(gp.likelihood.noise)
                    factor = cho_factor(kxx, lower=True)
                    self._factor.append((factor, cho_solve(factor, self._z[:, a])))
        return self._factor

    def _axes(self):
        """``(axis, gp, lower Cholesky factor, weights)`` for the row and the column axis."""
        return [(a, gp, factor[0][0], factor[1])
                for a, (gp, factor) in enumerate(zip(self.module, self._factors()))]

    def predict(self, coords, return_std: bool = True, groups=None, part: str = "distortion",
                chunk: int = 4096) -> DistortionPrediction:
        """Exact posterior of the noise-free field at ``coords`` ``(m, 3)``
        ``[row, col, frame]`` (pixels, integer frames).

        ``part`` chooses the field: ``"distortion"`` (the scan terms: what a correction
        removes), ``"specimen"`` (the real displacement growing over the series) or ``"all"``.

        With ``groups`` ``(m,)`` (e.g. the atom of each query), the posterior is that of the
        field minus its mean over each group: the displacement of an atom from its own time
        mean, which is what the fitted values measure (mean and standard deviation both
        account for the centring, through the posterior covariance within the group).
        """
        from scipy.linalg import solve_triangular

        if not self._fitted:
            raise not_fitted(type(self).__name__, "fit(coords, values)")
        if part not in ("distortion", "specimen", "all"):
            raise ValueError(f"part must be 'distortion', 'specimen' or 'all', got {part!r}")
        q = self._inputs(coords)
        if groups is not None:
            g = np.asarray(groups).ravel()
            if g.shape != (len(q),):
                raise ValueError(f"groups must hold one label per query ({len(q)}), got "
                                 f"shape {g.shape}")
            return self._predict_centred(q, g, return_std, part)
        mean, std = np.empty((len(q), 2)), (np.empty((len(q), 2)) if return_std else None)
        with torch.no_grad():
            for a, gp, c_low, alpha in self._axes():
                for s in range(0, len(q), chunk):
                    ks = self._kernel(gp, q[s:s + chunk], self._x, part)
                    mean[s:s + chunk, a] = ks @ alpha
                    if return_std:
                        prior = self._kernel(gp, q[s:s + chunk], None, part, diag=True)
                        v = solve_triangular(c_low, ks.T, lower=True)
                        var = np.clip(prior - np.sum(v**2, axis=0), 0, None)
                        std[s:s + chunk, a] = np.sqrt(var)
        # the values' constant mean is an offset of the distortion, not of the specimen term
        mean = mean * self._sd + (0.0 if part == "specimen" else self._mu)
        if std is not None:
            std = std * self._sd
        return DistortionPrediction(mean=mean, std=std)

    def calibrate(self, coords, values, groups) -> Calibration:
        """Check the model on validation atoms that were not fitted (no ground truth).

        ``values`` are *measured* displacements of those atoms (their own time mean removed,
        one ``groups`` label per atom): distortion plus specimen plus localisation noise. They
        are compared with the posterior of the sum (``part="all"``): with the posterior
        variance ``s^2`` and noise ``sigma^2``, ``E[(y - m)^2] = s^2 + sigma^2 (1 - 1/T_g)``
        (``T_g`` the frames of the atom). The noise is the component the validation atoms
        measure best (it dominates their scatter), so the excess (or deficit) of their
        scatter over ``s^2`` re-estimates it; the field band is left as the exact posterior
        gives it.

        Returns:
            :class:`Calibration`: per axis ``(2,)`` the fitted noise, the noise the validation
            atoms imply (same unit as the values), and the fraction of the validation values
            inside their 95 % predictive band (field plus fitted noise).
        """
        y = as_float_array(values, "values", ndim=2, shape_tail=(2,)).astype(np.float64)
        g = np.asarray(groups).ravel()
        if len(y) != len(g):
            raise ValueError(f"values has {len(y)} rows but groups has {len(g)}; pass one "
                             "group label (atom) per value")
        pred = self.predict(coords, groups=g, part="all")
        size = np.array([np.sum(g == label) for label in g], dtype=float)
        keep = (1 - 1 / size)[:, None]
        fitted = self.hyperparameters()["noise"]
        resid2 = (y - pred.mean) ** 2
        implied = np.sqrt(np.clip((resid2 - pred.std**2).mean(0), 0, None) / keep.mean())
        spread = np.sqrt(pred.std**2 + fitted[None] ** 2 * keep)
        inside = float(np.mean(np.sqrt(resid2) <= 1.96 * spread))
        return Calibration(fitted_noise=fitted, validation_noise=implied,
                           validation_coverage=inside)

    def _predict_centred(self, q: np.ndarray, groups: np.ndarray, return_std: bool, part: str
                         ) -> DistortionPrediction:
        """Posterior of ``f - mean_group(f)`` (``f`` the ``part`` of the field) at the inputs
        ``q`` (already ``[tau, col, frame, row, t~, 1, r~, r~^2 - 1/3]``)."""
        from scipy.linalg import solve_triangular

        mean, std = np.empty((len(q), 2)), (np.empty((len(q), 2)) if return_std else None)
        with torch.no_grad():
            for a, gp, c_low, alpha in self._axes():
                for label in np.unique(groups):
                    idx = np.flatnonzero(groups == label)
                    centre = np.eye(len(idx)) - 1.0 / len(idx)
                    ks = self._kernel(gp, q[idx], self._x, part)
                    mean[idx, a] = centre @ (ks @ alpha)
                    if return_std:
                        v = solve_triangular(c_low, ks.T, lower=True)
                        cov = self._kernel(gp, q[idx], None, part) - v.T @ v
                        var = np.einsum("ij,jk,ik->i", centre, cov, centre)
                        std[idx, a] = np.sqrt(np.clip(var, 0, None))
        # the constant mean of the values cancels in the centring
        mean = mean * self._sd
        if std is not None:
            std = std * self._sd
        return DistortionPrediction(mean=mean, std=std)
