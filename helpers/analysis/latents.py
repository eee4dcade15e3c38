"""Diagnostics of learned latent spaces: which latents carry information.

A VAE switches off latents it does not need: their posterior ``q(z_j | x)`` collapses onto
the prior ``N(0, 1)`` for every input, so their KL term is about zero. The mean KL of each
latent over the data,

    KL_j = mean_i 0.5 * (mu_ij^2 + s_ij^2 - 1 - 2 log s_ij)      (nats),

counts the *active* latents: those whose ``KL_j`` exceeds a small threshold (0.1 nats by
default; a collapsed latent sits at about 0.01 or below, an informative one at 0.5 or above).

- :func:`kl_per_latent`: ``KL_j`` from posterior means and standard deviations (e.g.
  ``Encoding.z`` and ``Encoding.z_std`` of the suite's VAEs);
- :func:`active_latents`: the indices of the active latents, most informative first;
- :func:`orient_latents`: a rotation of the latent space that puts its first axis along the
  direction in which a data-derived quantity grows (the prior ``N(0, I)`` is unchanged by a
  rotation, so the axes a VAE returns are not the only valid ones).
"""

from __future__ import annotations

import numpy as np

__all__ = ["kl_per_latent", "active_latents", "orient_latents", "DEFAULT_THRESHOLD"]

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


def orient_latents(z, reference) -> np.ndarray:
    """Rotation of the latent space whose first axis follows ``reference``.

    The standard-normal prior of a VAE is unchanged by a rotation about the origin, so a
    VAE's latent axes are one choice among many: two latents can share one factor between
    them. This fixes the orientation from the data: the first new axis is the direction ``w``
    of the least-squares fit ``reference ~ a + z @ w`` (the direction in which ``reference``
    grows fastest, linearly), the others complete an orthonormal basis (for ``d = 2``: the
    perpendicular). For ``d >= 2`` the rotation is proper (determinant +1); it turns about
    the origin, the prior's centre: ``z @ axes`` are the coordinates along the new axes.

    Args:
        z: ``(N, d)`` latent codes (posterior means), ``d >= 1``.
        reference: ``(N,)`` a quantity computed from the data (not from a ground truth), e.g.
            the mean of each patch.

    Returns:
        ``(d, d)`` float64 orthonormal matrix; its columns are the new axes in the old
        coordinates, the first along ``w``.
    """
    mu = np.asarray(z, dtype=np.float64)
    mu = mu.reshape(-1, 1) if mu.ndim == 1 else mu
    ref = np.asarray(reference, dtype=np.float64).ravel()
    if mu.ndim != 2 or len(mu) != len(ref) or len(mu) < mu.shape[1] + 2:
        raise ValueError(f"z must be (N, d) with N >= d + 2 and reference (N,), got "
                         f"{np.shape(z)} and {np.shape(reference)}")
    if not (np.isfinite(mu).all() and np.isfinite(ref).all()):
        raise ValueError("z and reference must be finite")
    w = np.linalg.lstsq(mu - mu.mean(0), ref - ref.mean(), rcond=None)[0]
    norm = np.linalg.norm(w)
    if not norm > 0:
        raise ValueError("reference does not vary linearly with z: no direction to orient by "
                         "(pass a quantity that changes across the codes)")
    d = mu.shape[1]
    basis = np.linalg.qr(np.column_stack([w / norm, np.eye(d)]))[0][:, :d]
    basis[:, 0] = w / norm  # QR may flip its sign
    if d > 1 and np.linalg.det(basis) < 0:
        basis[:, -1] *= -1
    return basis
