"""Diagnostics of learned latent spaces: which latents carry information.

A VAE switches off latents it does not need: their posterior ``q(z_j | x)`` collapses onto
the prior ``N(0, 1)`` for every input, so their KL term is about zero. The mean KL of each
latent over the data,

    KL_j = mean_i 0.5 * (mu_ij^2 + s_ij^2 - 1 - 2 log s_ij)      (nats),

counts the *active* latents: those whose ``KL_j`` exceeds a small threshold (0.1 nats by
default; a collapsed latent sits at about 0.01 or below, an informative one at 0.5 or above).

- :func:`kl_per_latent`: ``KL_j`` from posterior means and standard deviations (e.g.
  ``Encoding.z`` and ``Encoding.z_std`` of the suite's VAEs);
- :func:`active_latents`: the indices of the active latents, most informative first.
"""

from __future__ import annotations

import numpy as np

__all__ = ["kl_per_latent", "active_latents", "DEFAULT_THRESHOLD"]

DEFAULT_THRESHOLD = 0.1  # nats


def _moments(z, z_std) -> tuple[np.ndarray, np.ndarray]:
    mu = np.asarray(z, dtype=np.float64)
    sd = np.asarray(z_std, dtype=np.float64)
    mu = mu.reshape(-1, 1) if mu.ndim == 1 else mu
    sd = sd.reshape(-1, 1) if sd.ndim == 1 else sd
    if mu.ndim != 2 or mu.shape != sd.shape or len(mu) == 0:
        raise ValueError(f"z and z_std must be matching (N, d) arrays, got {np.shape(z)} and "
                         f"{np.shape(z_std)}")
    if not (np.isfinite(mu).all() and np.isfinite(sd).all()):
        raise ValueError("z and z_std must be finite")
    if (sd <= 0).any():
        raise ValueError("z_std must be standard deviations (> 0), not log-variances")
    return mu, sd


def kl_per_latent(z, z_std) -> np.ndarray:
    """Mean KL divergence of each latent's posterior from the standard-normal prior.

    Args:
        z: ``(N, d)`` posterior means.
        z_std: ``(N, d)`` posterior standard deviations (not log).

    Returns:
        ``(d,)`` float64, nats per image.
    """
    mu, sd = _moments(z, z_std)
    return (0.5 * (mu**2 + sd**2 - 1.0) - np.log(sd)).mean(axis=0)


def active_latents(z, z_std, threshold: float = DEFAULT_THRESHOLD) -> np.ndarray:
    """Indices of the latents whose mean KL exceeds ``threshold`` nats, largest KL first.

    Returns:
        ``(n_active,)`` int (its length is the number of active latents).
    """
    if not threshold >= 0:
        raise ValueError(f"threshold must be >= 0 nats, got {threshold}")
    kl = kl_per_latent(z, z_std)
    order = np.argsort(-kl, kind="stable")
    return order[kl[order] > threshold]
