"""Circular statistics of angles (radians): wrapping, circular means, and a mixture of von
Mises distributions fitted by expectation-maximisation.

An n-fold symmetric object has an angle defined modulo ``2 pi / n``; multiplying by ``n``
maps it onto the full circle, where these statistics apply (``symmetry=n`` does it for you
in :func:`circular_mean`).

- :func:`wrap_angle`: angles (or differences) wrapped to ``(-pi, pi]``;
- :func:`circular_mean`: the direction of the mean resultant vector;
- :func:`fit_von_mises_mixture`: ``K`` von Mises components by EM, returned as a
  :class:`VonMisesMixture` (means, concentrations, weights, responsibilities, density).

The von Mises density with mean ``mu`` and concentration ``kappa`` is
``exp(kappa cos(x - mu)) / (2 pi I0(kappa))``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._checks import real_array

__all__ = ["wrap_angle", "circular_mean", "VonMisesMixture", "fit_von_mises_mixture"]


def _radians(x, name: str) -> np.ndarray:
    """Real angles as a float array; float32 stays float32 (so results match the same
    arithmetic written inline on float32 encodings), integers become float64."""
    a = np.asarray(real_array(x, name))
    return a.astype(np.result_type(a.dtype, np.float32), copy=False)


def wrap_angle(angle) -> np.ndarray:
    """``angle`` (radians, any shape) wrapped to ``(-pi, pi]``; the size of a wrapped
    difference ``abs(wrap_angle(a - b))`` is the distance of two directions on the circle."""
    return np.angle(np.exp(1j * _radians(angle, "angle")))


def circular_mean(angles, symmetry: int = 1) -> float:
    """Direction of the mean resultant vector of ``angles`` ``(N,)`` (radians), modulo
    ``2 pi / symmetry``: ``angle(mean(exp(i n theta))) / n``, in ``(-pi/n, pi/n]``."""
    a = _radians(angles, "angles")
    if a.size == 0 or not np.isfinite(a).all():
        raise ValueError("angles must be a non-empty array of finite angles (radians)")
    return np.angle(np.mean(np.exp(1j * symmetry * a))) / symmetry


@dataclass
class VonMisesMixture:
    """A mixture of ``K`` von Mises distributions on the circle.

    Attributes:
        means: ``(K,)`` mean directions, radians in ``(-pi, pi]``.
        concentrations: ``(K,)`` ``kappa`` of each component (0 uniform; large = narrow, the
            angular spread about ``1 / sqrt(kappa)`` radians).
        weights: ``(K,)`` mixing weights, summing to 1.
        responsibilities: ``(N, K)`` posterior probability of each component for each of the
            fitted angles (rows sum to 1).
    """

    means: np.ndarray
    concentrations: np.ndarray
    weights: np.ndarray
    responsibilities: np.ndarray

    @property
    def labels(self) -> np.ndarray:
        """``(N,)`` int, the most probable component of each fitted angle."""
        return self.responsibilities.argmax(1)

    def pdf(self, x) -> np.ndarray:
        """Mixture density at angles ``x`` (radians, any shape), per radian."""
        from scipy.special import i0e

        x = np.asarray(x, dtype=np.float64)
        return sum(w * np.exp(k * (np.cos(x - m) - 1)) / (2 * np.pi * i0e(k))
                   for w, k, m in zip(self.weights, self.concentrations, self.means))


def fit_von_mises_mixture(angles, n_components: int = 2, n_iter: int = 200) -> VonMisesMixture:
    """Fit a ``K``-component von Mises mixture to angles on the full circle by EM.

    Deterministic: the means start evenly spaced, ``2 pi / K`` apart, on the axis of the
    ``K``-fold circular mean (``angle(mean(exp(i K x))) / K``), with concentrations 2 and equal
    weights. The E step computes responsibilities (with ``i0e(k) = I0(k) exp(-k)`` so large
    concentrations stay finite); the M step sets each mean to the direction of its weighted
    resultant, each weight to its share, and each concentration from the mean resultant
    length ``R`` by the approximation ``kappa = R (2 - R^2) / (1 - R^2)`` (Banerjee et al.
    2005), clipped to ``[1e-3, 1e3]``.

    Args:
        angles: ``(N,)`` radians on the full circle (for an n-fold symmetric angle pass
            ``n * angle``).
        n_components: ``K``, at least 1 and at most N.
        n_iter: EM iterations (a fixed number: same input, same result).

    Returns:
        :class:`VonMisesMixture`.
    """
    from scipy.special import i0e

    phi = _radians(angles, "angles")
    if phi.ndim != 1 or not np.isfinite(phi).all():
        raise ValueError(f"angles must be a finite (N,) array of radians, got shape {phi.shape}")
    k = int(n_components)
    if k < 1 or len(phi) < k:
        raise ValueError(f"n_components must be between 1 and the number of angles "
                         f"({len(phi)}), got {n_components}")
    if int(n_iter) < 1:
        raise ValueError(f"n_iter must be >= 1, got {n_iter}")
    axis = circular_mean(phi, k)
    # scalar arithmetic in the angles' own precision (float32 encodings stay float32)
    mu = np.array([axis + 2 * np.pi * j / k for j in range(k)])
    kappa, w = np.full(k, 2.0), np.full(k, 1.0 / k)
    for _ in range(int(n_iter)):
        # E step
        logp = np.log(w) + kappa * (np.cos(phi[:, None] - mu) - 1) - np.log(i0e(kappa))
        resp = np.exp(logp - logp.max(1, keepdims=True))
        resp /= resp.sum(1, keepdims=True)
        # M step
        n_m = resp.sum(0)
        s = (resp * np.exp(1j * phi[:, None])).sum(0)
        mu, big_r, w = np.angle(s), np.abs(s) / n_m, n_m / len(phi)
        kappa = np.clip(big_r * (2 - big_r**2) / (1 - big_r**2 + 1e-12), 1e-3, 1e3)
    return VonMisesMixture(means=mu, concentrations=kappa, weights=w, responsibilities=resp)
