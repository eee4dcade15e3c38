"""Unmixing a spectrum image in energy (PCA scree, NMF component maps), the interpolation
baseline for sparsely sampled maps.

A spectrum image is ``(H, W, E)``: one spectrum of ``E`` channels per pixel. NMF writes it as
``X ~ W S`` with ``K`` non-negative maps ``W`` (pixels x K) and spectra ``S`` (K x E); the
maps are what notebook 10 reconstructs with Gaussian processes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._checks import real_array
from ..features import decompose_patches

__all__ = ["Unmixing", "interpolate_sparse", "pca_scree", "unmix_spectra"]


def _cube(spectra, name: str = "spectra") -> np.ndarray:
    arr = np.asarray(real_array(spectra, name), dtype=np.float64)
    if arr.ndim != 3 or min(arr.shape) < 2:
        raise ValueError(f"{name} must be a spectrum image (H, W, E), got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} holds NaN or inf; clean or mask those pixels first")
    return arr


def pca_scree(spectra, n_components: int = 20) -> np.ndarray:
    """Explained-variance ratio ``(n_components,)`` of a PCA of the ``(H, W, E)`` spectra
    (one sample per pixel): components above the flat noise floor carry signal."""
    arr = _cube(spectra)
    n = min(int(n_components), arr.shape[0] * arr.shape[1], arr.shape[2])
    dec = decompose_patches(arr.reshape(-1, arr.shape[2]), n, method="pca", seed=0)
    return np.asarray(dec.explained_variance_ratio)


@dataclass
class Unmixing:
    """NMF of a spectrum image, components ordered by their share of the counts.

    Attributes:
        maps: ``(K, H, W)`` abundance maps (the exact non-negative least-squares weights
            of each pixel on the NMF spectra), in order of decreasing ``share``.
        spectra: ``(K, E)`` component spectra (counts per channel at unit map value).
        share: ``(K,)`` fraction of all modelled counts each component holds, decreasing:
            the last components are the weak ones.
        model: the fitted ``sklearn.decomposition.NMF`` (columns in its own order; it works
            on the channel-weighted spectra ``X / sqrt(weights)``).
        order: ``(K,)`` the model's component index of each row of ``maps``.
        weights: ``(E,)`` the mean spectrum the channels were divided by (square root).
    """

    maps: np.ndarray
    spectra: np.ndarray
    share: np.ndarray
    model: object
    order: np.ndarray
    weights: np.ndarray

    def transform(self, spectra) -> np.ndarray:
        """``(K, H, W)`` maps of another ``(H, W, E)`` spectrum image on these spectra (e.g.
        the noise-free image, for scoring): per pixel, the exact non-negative least-squares
        weights on the channel-weighted spectra, the same projection that gave ``maps``."""
        arr = _cube(spectra)
        h, w, e = arr.shape
        if e != self.spectra.shape[1]:
            raise ValueError(f"spectra have {e} channels, the unmixing {self.spectra.shape[1]}")
        scaled = np.clip(arr.reshape(-1, e), 0, None) / np.sqrt(self.weights)
        return _nnls_maps(scaled, self.model.components_).T[self.order].reshape(-1, h, w)


def _nnls_maps(scaled: np.ndarray, components: np.ndarray) -> np.ndarray:
    """``(M, K)`` non-negative least-squares weights of ``(M, E)`` spectra on the ``(K, E)``
    components: the minimiser of NMF's objective with the spectra fixed, solved exactly per
    pixel (scikit-learn's ``NMF.transform`` iterates to a tolerance and is ~40x slower)."""
    from scipy.optimize import nnls

    basis = np.ascontiguousarray(components.T)
    return np.array([nnls(basis, x)[0] for x in scaled])


def unmix_spectra(spectra, n_components: int, seed: int = 0, max_iter: int = 1000) -> Unmixing:
    """NMF of the ``(H, W, E)`` non-negative spectra into ``n_components`` maps and spectra.

    Poisson counts are noisier where there are more of them (variance = mean), and the
    power-law background holds most counts; so each channel is first divided by the square
    root of the mean spectrum (the usual weighting for Poisson data, which makes the noise
    about equal across channels and stops the background from dominating the fit). The maps
    are each pixel's exact non-negative least-squares weights on the fitted spectra (the
    projection that :meth:`Unmixing.transform` applies to other images), ordered by decreasing
    share of the counts.
    """
    arr = _cube(spectra)
    h, w, e = arr.shape
    if (arr < 0).any():
        raise ValueError("spectra must be non-negative counts for NMF; subtract a dark "
                         "reference that leaves no negative values, or clip at zero")
    flat = arr.reshape(-1, e)
    weights = np.maximum(flat.mean(axis=0), 1e-12)
    scaled = flat / np.sqrt(weights)
    dec = decompose_patches(scaled, int(n_components), method="nmf", seed=seed,
                            max_iter=max_iter)
    maps = _nnls_maps(scaled, dec.model.components_)
    comps = np.asarray(dec.components) * np.sqrt(weights)  # back to counts
    counts = maps.sum(axis=0) * comps.sum(axis=1)
    order = np.argsort(-counts, kind="stable")
    return Unmixing(maps=maps.T[order].reshape(-1, h, w), spectra=comps[order],
                    share=counts[order] / counts.sum(), model=dec.model, order=order,
                    weights=weights)


def interpolate_sparse(maps, mask, method: str = "cubic") -> np.ndarray:
    """Fill the unobserved pixels of ``(K, H, W)`` (or ``(H, W)``) maps from the observed
    ones (``mask`` ``(H, W)`` bool) by scipy's scattered-data interpolation: ``"cubic"``
    (piecewise bicubic Clough-Tocher on a triangulation of the observed pixels) or
    ``"linear"``; pixels outside the observed pixels' convex hull take the nearest observed
    value. Returns the filled maps, the shape of ``maps``."""
    from scipy.interpolate import griddata

    arr = np.asarray(real_array(maps, "maps"), dtype=np.float64)
    single = arr.ndim == 2
    arr = arr[None] if single else arr
    m = np.asarray(mask)
    if arr.ndim != 3 or m.shape != arr.shape[1:] or m.dtype != bool:
        raise ValueError(f"maps must be (K, H, W) and mask a bool (H, W) array, got "
                         f"{arr.shape} and {m.dtype} {m.shape}")
    if m.sum() < 3:
        raise ValueError("mask observes fewer than 3 pixels; nothing to interpolate from")
    if method not in ("cubic", "linear"):
        raise ValueError(f"method must be 'cubic' or 'linear', got {method!r}")
    pts = np.stack(np.nonzero(m), 1)
    grid = tuple(np.mgrid[0:m.shape[0], 0:m.shape[1]])
    out = np.empty_like(arr)
    for k, img in enumerate(arr):
        filled = griddata(pts, img[m], grid, method=method)
        near = griddata(pts, img[m], grid, method="nearest")
        out[k] = np.where(np.isnan(filled), near, filled)
    return out[0] if single else out
