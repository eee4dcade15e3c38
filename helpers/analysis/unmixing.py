"""Unmixing a spectrum image in energy (PCA scree and the rank it shows, NMF component maps,
reference-seeded NMF), the interpolation baseline for sparsely sampled maps.

A spectrum image is ``(H, W, E)``: one spectrum of ``E`` channels per pixel. NMF writes it as
``X ~ W S`` with ``K`` non-negative maps ``W`` (pixels x K) and spectra ``S`` (K x E); the
maps are what notebook 10 reconstructs with Gaussian processes. NMF is not unique: a weak
component whose map overlaps a strong one (Ti3+ on the Ti4+ columns) is spread over several
components unless one component is *seeded* with a reference fingerprint (white-line
energies known from reference compounds) confined to its edge, which the multiplicative
updates keep confined (:func:`unmix_spectra` with ``references``, :func:`line_fingerprint`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._checks import real_array
from ..features import decompose_patches

__all__ = ["Unmixing", "interpolate_sparse", "line_fingerprint", "pca_scree", "scree_rank",
           "unmix_spectra"]


def _cube(spectra, name: str = "spectra") -> np.ndarray:
    arr = np.asarray(real_array(spectra, name), dtype=np.float64)
    if arr.ndim != 3 or min(arr.shape) < 2:
        raise ValueError(f"{name} must be a spectrum image (H, W, E), got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} holds NaN or inf; clean or mask those pixels first")
    return arr


def pca_scree(spectra, n_components: int = 20, poisson: bool = False) -> np.ndarray:
    """Explained-variance ratio ``(n_components,)`` of a PCA of the ``(H, W, E)`` spectra
    (one sample per pixel): components above the flat noise floor carry signal. With
    ``poisson`` each channel is first divided by the square root of the mean spectrum (as
    :func:`unmix_spectra` does), which makes Poisson noise about equal in every channel and so
    the noise floor flat."""
    arr = _cube(spectra)
    flat = arr.reshape(-1, arr.shape[2])
    if poisson:
        flat = flat / np.sqrt(np.maximum(flat.mean(axis=0), 1e-12))
    n = min(int(n_components), arr.shape[0] * arr.shape[1], arr.shape[2])
    dec = decompose_patches(flat, n, method="pca", seed=0)
    return np.asarray(dec.explained_variance_ratio)


def scree_rank(ratio, factor: float = 1.5, n_floor: int = 4) -> int:
    """The number of PCA components above the noise floor: those whose explained-variance
    ratio exceeds ``factor`` times the floor, the median of the last ``n_floor`` of ``ratio``
    ``(n,)`` (decreasing; pass more components than you expect signals). A component whose
    variance is near the floor (a weak signal) is not counted: an NMF that goes looking for
    one with a reference (:func:`unmix_spectra`'s ``references``) needs one more."""
    r = np.asarray(real_array(ratio, "ratio"), dtype=np.float64).ravel()
    if r.size < n_floor + 2 or n_floor < 1:
        raise ValueError(f"ratio needs at least n_floor + 2 = {n_floor + 2} components to "
                         f"estimate a noise floor, got {r.size}; compute a longer scree")
    floor = float(np.median(r[-n_floor:]))
    above = np.nonzero(r <= factor * floor)[0]
    return int(above[0]) if above.size else int(r.size)


def line_fingerprint(energy, lines, heights=None, width: float = 1.0,
                     window: tuple[float, float] | None = None) -> np.ndarray:
    """``(E,)`` a reference spectrum shape: Gaussian white lines at ``lines`` (eV) of relative
    ``heights`` and standard deviation ``width`` (eV), zero outside ``window`` (eV, low,
    high), for seeding :func:`unmix_spectra`. Non-negative, maximum 1."""
    e = np.asarray(real_array(energy, "energy"), dtype=np.float64).ravel()
    centres = np.atleast_1d(np.asarray(lines, dtype=np.float64))
    h = np.ones_like(centres) if heights is None else np.atleast_1d(
        np.asarray(heights, dtype=np.float64))
    if h.shape != centres.shape or (h < 0).any() or not width > 0:
        raise ValueError(f"need one non-negative height per line and width > 0, got "
                         f"{h.shape} heights for {centres.shape} lines, width {width}")
    out = (h[:, None] * np.exp(-0.5 * ((e[None] - centres[:, None]) / width) ** 2)).sum(0)
    if window is not None:
        out = out * ((e >= window[0]) & (e <= window[1]))
    if out.max() <= 0:
        raise ValueError("the fingerprint is zero on this energy axis; put the lines and "
                         "the window inside the energy range")
    return out / out.max()


@dataclass
class Unmixing:
    """NMF of a spectrum image, components ordered by their share of the counts.

    Attributes:
        maps: ``(K, H, W)`` abundance maps (the least-squares weights of each pixel on the
            NMF spectra, see :func:`unmix_spectra`), in order of decreasing ``share``.
        spectra: ``(K, E)`` component spectra (counts per channel at unit map value).
        share: ``(K,)`` fraction of all modelled counts each component holds, decreasing:
            the last components are the weak ones.
        model: the fitted ``sklearn.decomposition.NMF`` (columns in its own order; it works
            on the channel-weighted spectra ``X / sqrt(weights)``).
        order: ``(K,)`` the model's component index of each row of ``maps``.
        weights: ``(E,)`` the mean spectrum the channels were divided by (square root).
        seeded: positions in ``maps`` of the components seeded with ``references``, in the
            order of the references (empty without references).
    """

    maps: np.ndarray
    spectra: np.ndarray
    share: np.ndarray
    model: object
    order: np.ndarray
    weights: np.ndarray
    seeded: tuple[int, ...] = ()

    def transform(self, spectra) -> np.ndarray:
        """``(K, H, W)`` maps of another ``(H, W, E)`` spectrum image on these spectra (e.g.
        the noise-free image, for scoring): per pixel, the least-squares weights on the
        channel-weighted spectra, the same linear projection that gave ``maps``; so the
        noise-free image's maps are the expectation of the noisy image's maps."""
        arr = _cube(spectra)
        h, w, e = arr.shape
        if e != self.spectra.shape[1]:
            raise ValueError(f"spectra have {e} channels, the unmixing {self.spectra.shape[1]}")
        scaled = arr.reshape(-1, e) / np.sqrt(self.weights)
        return _ls_maps(scaled, self.model.components_).T[self.order].reshape(-1, h, w)


def _ls_maps(scaled: np.ndarray, components: np.ndarray) -> np.ndarray:
    """``(M, K)`` least-squares weights of ``(M, E)`` spectra on the ``(K, E)`` components.

    Unconstrained on purpose: the weights are linear in the counts, so their noise averages
    to zero. Non-negative least squares clips the noise of a weak map at zero where its signal
    is near zero, a positive bias that no spatial smoothing removes."""
    return np.linalg.lstsq(components.T, scaled.T, rcond=None)[0].T


def unmix_spectra(spectra, n_components: int, seed: int = 0, max_iter: int = 1000,
                  references=None) -> Unmixing:
    """NMF of the ``(H, W, E)`` non-negative spectra into ``n_components`` maps and spectra.

    Poisson counts are noisier where there are more of them (variance = mean), and the
    power-law background holds most counts; so each channel is first divided by the square
    root of the mean spectrum (the usual weighting for Poisson data, which makes the noise
    about equal across channels and stops the background from dominating the fit). The maps
    are each pixel's least-squares weights on the fitted spectra (unconstrained, so unbiased:
    a weak map's noise may dip below zero; the linear projection that
    :meth:`Unmixing.transform` applies to other images), ordered by decreasing share of the
    counts.

    ``references`` ``(M, E)`` (M < ``n_components``), non-negative spectrum shapes (any scale,
    e.g. :func:`line_fingerprint`): M components start from them and the other
    ``n_components - M`` from an NMF of the data; all are then refined together by
    multiplicative updates, which never make a zero non-zero, so a reference that is zero
    outside one edge stays there. ``Unmixing.seeded`` says where those components ended up.
    """
    arr = _cube(spectra)
    h, w, e = arr.shape
    if (arr < 0).any():
        raise ValueError("spectra must be non-negative counts for NMF; subtract a dark "
                         "reference that leaves no negative values, or clip at zero")
    flat = arr.reshape(-1, e)
    weights = np.maximum(flat.mean(axis=0), 1e-12)
    scaled = flat / np.sqrt(weights)
    n_ref = 0
    if references is not None:
        ref = np.atleast_2d(np.asarray(real_array(references, "references"), dtype=np.float64))
        n_ref = ref.shape[0]
        if ref.shape[1] != e or (ref < 0).any() or not np.isfinite(ref).all() or not (
                0 < n_ref < int(n_components)) or (ref.max(axis=1) <= 0).any():
            raise ValueError(f"references must be (M, E) = (<{n_components}, {e}) finite, "
                             f"non-negative, non-zero spectra, got shape {ref.shape}; build "
                             "them with line_fingerprint(energy, ...)")
    dec = decompose_patches(scaled, int(n_components) - n_ref, method="nmf", seed=seed,
                            max_iter=max_iter)
    model = dec.model
    if n_ref:
        from sklearn.decomposition import NMF

        free = model.components_
        ref_scaled = ref / np.sqrt(weights)
        ref_scaled *= free.max() / ref_scaled.max(axis=1, keepdims=True)
        h0 = np.vstack([free, ref_scaled])
        w0 = np.hstack([model.transform(scaled), np.full((len(scaled), n_ref), 1e-3)])
        model = NMF(int(n_components), init="custom", solver="mu", max_iter=max_iter,
                    random_state=seed)
        model.fit(scaled, W=w0, H=h0)
    maps = _ls_maps(scaled, model.components_)
    comps = model.components_ * np.sqrt(weights)  # back to counts
    counts = maps.sum(axis=0) * comps.sum(axis=1)
    order = np.argsort(-counts, kind="stable")
    k = int(n_components)
    seeded = tuple(int(np.nonzero(order == i)[0][0]) for i in range(k - n_ref, k))
    return Unmixing(maps=maps.T[order].reshape(-1, h, w), spectra=comps[order],
                    share=counts[order] / counts.sum(), model=model, order=order,
                    weights=weights, seeded=seeded)


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
