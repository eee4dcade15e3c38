"""Synthetic benchmark for DIVIDE: two independent mechanisms acting on one measured signal.

A square grid of sites (think of a scanned sample). Every site carries

- an **image patch** of shape ``(patch_size, patch_size)`` showing one of a few categorical
  structural motifs (disk, ring, plus, square, ...), jittered in position, contrast and noise,
- a **position** ``(row, col)`` scaled to ``[0, 1]`` on which a smooth nonlinear field acts.

The measured signal combines the two mechanisms either additively,
``y = g(category) + h(position) + noise``, or by scaling,
``y = a(category) * h(position) + noise``. The per-site ground-truth contributions of each
mechanism are returned, so that a model's decomposition can be scored against them.

Two physical variants use the suite's kinetic ferroelectric lattice:
:func:`lattice_mechanisms` (point defects of a few types in a lattice whose Landau
coefficient varies smoothly in space) and :func:`hysteresis_mechanisms` (loop shifts of a
:func:`~helpers.simulate.ferroelectric.hysteresis_map`: local domains plus a hidden imprint).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = [
    "MechanismData",
    "mechanism_benchmark",
    "lattice_mechanisms",
    "hysteresis_mechanisms",
    "site_windows",
    "motif_patches",
    "spatial_field",
    "CATEGORY_EFFECTS",
    "CATEGORY_SCALES",
]

#: Additive effect of each category (signal units), used when ``interaction="additive"``.
CATEGORY_EFFECTS = np.array([-1.2, 0.9, -0.2, 1.5, 0.4, -0.7], dtype=np.float64)
#: Multiplicative amplitude of each category, used when ``interaction="scaled"``.
CATEGORY_SCALES = np.array([0.4, 1.6, 0.9, 1.25, 0.6, 1.9], dtype=np.float64)
_MAX_CATEGORIES = len(CATEGORY_EFFECTS)


@dataclass
class MechanismData:
    """One synthetic DIVIDE data set; all arrays have the sites along axis 0.

    Attributes:
        patches: ``(N, p, p)`` float32 image patches (arbitrary intensity units).
        coords: ``(N, 2)`` float32 site positions ``(row, col)`` scaled to ``[0, 1]``.
        labels: ``(N,)`` int64 category of each patch, in ``[0, n_categories)``.
        y: ``(N,)`` float32 noisy measured signal (signal units).
        y_clean: ``(N,)`` float32 signal without noise.
        contributions: mechanism name (``"patch"``, ``"position"``) -> ``(N,)`` float64
            ground-truth contribution. Additive: ``y_clean = patch + position``. Scaled:
            ``y_clean = patch * position`` (the category amplitude and the field).
        interaction: ``"additive"`` or ``"scaled"``.
        noise_std: standard deviation of the Gaussian measurement noise (signal units).
        grid_shape: ``(rows, cols)`` of the site grid; site ``i`` is at
            ``np.unravel_index(i, grid_shape)`` for the full grid.
        category_values: ``(n_categories,)`` effect (additive) or amplitude (scaled) per class.
    """

    patches: np.ndarray
    coords: np.ndarray
    labels: np.ndarray
    y: np.ndarray
    y_clean: np.ndarray
    contributions: dict[str, np.ndarray]
    interaction: str
    noise_std: float
    grid_shape: tuple[int, int]
    category_values: np.ndarray
    index: np.ndarray = field(default=None)  # (N,) int64 site index into the full grid

    def __post_init__(self):
        if self.index is None:
            self.index = np.arange(len(self.y), dtype=np.int64)

    def __len__(self) -> int:
        return len(self.y)

    @property
    def inputs(self) -> dict[str, np.ndarray]:
        """The model inputs, one array per mechanism: ``{"patch": (N,p,p), "position": (N,2)}``."""
        return {"patch": self.patches, "position": self.coords}

    def subset(self, idx) -> MechanismData:
        """The sites ``idx`` (an integer index array or boolean mask) as a new data set."""
        idx = np.asarray(idx)
        if idx.dtype == bool:
            if idx.shape != (len(self),):
                raise ValueError(f"boolean mask must have shape ({len(self)},), got {idx.shape}")
            idx = np.flatnonzero(idx)
        if idx.ndim != 1 or (idx.size and (idx.min() < -len(self) or idx.max() >= len(self))):
            raise ValueError(f"index out of range for a data set of {len(self)} sites")
        return MechanismData(
            patches=self.patches[idx], coords=self.coords[idx], labels=self.labels[idx],
            y=self.y[idx], y_clean=self.y_clean[idx],
            contributions={k: v[idx] for k, v in self.contributions.items()},
            interaction=self.interaction, noise_std=self.noise_std, grid_shape=self.grid_shape,
            category_values=self.category_values, index=self.index[idx],
        )

    def split(self, test_fraction: float = 0.3, seed: int = 0) -> tuple[MechanismData, ...]:
        """Random ``(train, test)`` split of the sites, deterministic by ``seed``."""
        if not 0.0 < test_fraction < 1.0:
            raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
        perm = np.random.default_rng(seed).permutation(len(self))
        n_test = max(1, int(round(test_fraction * len(self))))
        return self.subset(np.sort(perm[n_test:])), self.subset(np.sort(perm[:n_test]))

    def as_map(self, values: np.ndarray) -> np.ndarray:
        """Scatter per-site ``values`` (N,) onto the ``grid_shape`` map (NaN where no site)."""
        values = np.asarray(values, dtype=np.float64)
        if values.shape != (len(self),):
            raise ValueError(f"values must have shape ({len(self)},), got {values.shape}")
        out = np.full(self.grid_shape[0] * self.grid_shape[1], np.nan)
        out[self.index] = values
        return out.reshape(self.grid_shape)

    def mosaic(self) -> np.ndarray:
        """The structural image: every site's patch tiled at its grid position, shape
        ``(rows * p, cols * p)`` float32 (zeros where no site)."""
        rows, cols = self.grid_shape
        p = self.patches.shape[-1]
        img = np.zeros((rows * p, cols * p), dtype=np.float32)
        r, c = np.unravel_index(self.index, self.grid_shape)
        for k in range(len(self)):
            img[r[k] * p:(r[k] + 1) * p, c[k] * p:(c[k] + 1) * p] = self.patches[k]
        return img


def spatial_field(coords: np.ndarray) -> np.ndarray:
    """The smooth nonlinear spatial mechanism ``h(row, col)`` on ``[0, 1]^2``.

    A tilted wave plus a Gaussian bump: about zero mean and unit standard deviation over the
    unit square. ``coords`` (N, 2) -> (N,) float64.
    """
    coords = np.asarray(coords, dtype=np.float64)
    if coords.ndim != 2 or coords.shape[1] != 2:
        raise ValueError(f"coords must have shape (N, 2), got {coords.shape}")
    r, c = coords[:, 0], coords[:, 1]
    wave = np.sin(2.0 * np.pi * (0.8 * c + 0.35 * r)) * np.cos(1.2 * np.pi * r)
    bump = 1.6 * np.exp(-((r - 0.7) ** 2 + (c - 0.3) ** 2) / (2 * 0.12**2))
    return (wave + bump - 0.24) / 0.575


def _motif(category: int, size: int, center: tuple[float, float]) -> np.ndarray:
    """Noise-free motif ``category`` centred at ``center`` (row, col) on a ``size`` grid."""
    rr, cc = np.mgrid[0:size, 0:size].astype(np.float64)
    dr, dc = rr - center[0], cc - center[1]
    rad = np.hypot(dr, dc)
    s = size / 12.0  # motif scale relative to a 12-pixel patch
    if category == 0:  # filled disk
        m = rad < 3.2 * s
    elif category == 1:  # ring
        m = (rad > 2.4 * s) & (rad < 4.2 * s)
    elif category == 2:  # plus
        m = ((np.abs(dr) < 1.1 * s) & (np.abs(dc) < 4.2 * s)) | (
            (np.abs(dc) < 1.1 * s) & (np.abs(dr) < 4.2 * s))
    elif category == 3:  # hollow square
        box = np.maximum(np.abs(dr), np.abs(dc))
        m = (box > 2.0 * s) & (box < 3.6 * s)
    elif category == 4:  # two dots
        m = (np.hypot(dr, dc - 2.2 * s) < 1.6 * s) | (np.hypot(dr, dc + 2.2 * s) < 1.6 * s)
    else:  # diagonal bar
        m = (np.abs(dr - dc) < 1.4 * s) & (rad < 4.5 * s)
    return m.astype(np.float64)


def motif_patches(
    labels: np.ndarray, patch_size: int = 12, jitter: float = 1.0, pixel_noise: float = 0.1,
    seed: int = 0,
) -> np.ndarray:
    """Image patches of the categorical motifs.

    Args:
        labels: (N,) integer categories in ``[0, 6)``.
        patch_size: patch side in pixels (>= 8).
        jitter: maximum random shift of the motif centre, pixels.
        pixel_noise: standard deviation of the additive Gaussian pixel noise.
        seed: random seed.

    Returns:
        (N, patch_size, patch_size) float32 patches, background 0, motif about 1.
    """
    labels = np.asarray(labels)
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError("labels must be a 1-D integer array")
    if labels.size and (labels.min() < 0 or labels.max() >= _MAX_CATEGORIES):
        raise ValueError(f"labels must lie in [0, {_MAX_CATEGORIES}), "
                         f"got {labels.min()}..{labels.max()}")
    if patch_size < 8:
        raise ValueError(f"patch_size must be >= 8 pixels, got {patch_size}")
    rng = np.random.default_rng(seed)
    mid = (patch_size - 1) / 2.0
    out = np.empty((len(labels), patch_size, patch_size), dtype=np.float32)
    for k, lab in enumerate(labels):
        shift = rng.uniform(-jitter, jitter, size=2)
        contrast = rng.uniform(0.8, 1.2)
        img = contrast * _motif(int(lab), patch_size, (mid + shift[0], mid + shift[1]))
        out[k] = img + pixel_noise * rng.standard_normal((patch_size, patch_size))
    return out


def mechanism_benchmark(
    grid_shape: tuple[int, int] = (24, 24),
    patch_size: int = 12,
    n_categories: int = 4,
    interaction: str = "additive",
    noise_std: float = 0.1,
    seed: int = 0,
) -> MechanismData:
    """Sites on a grid, each with a random categorical patch and a position; signal from both.

    Args:
        grid_shape: ``(rows, cols)`` of the site grid; positions are ``(i / (rows-1),
            j / (cols-1))``.
        patch_size: side of each image patch in pixels.
        n_categories: number of motif classes (2 to 6), drawn uniformly per site.
        interaction: ``"additive"``: ``y = g(class) + h(position)``; ``"scaled"``:
            ``y = a(class) * h'(position)`` with ``h' = 1 + 0.8 h`` (mostly positive).
        noise_std: Gaussian noise added to ``y`` (signal units; each mechanism has a spread
            of about 1).
        seed: random seed (classes, patch jitter and noise).

    Returns:
        A :class:`MechanismData` with the ground-truth contribution of each mechanism.
    """
    rows, cols = (int(v) for v in grid_shape)
    if rows < 2 or cols < 2:
        raise ValueError(f"grid_shape must be at least (2, 2), got {grid_shape}")
    if not 2 <= n_categories <= _MAX_CATEGORIES:
        raise ValueError(f"n_categories must be in [2, {_MAX_CATEGORIES}], got {n_categories}")
    if interaction not in ("additive", "scaled"):
        raise ValueError(f"interaction must be 'additive' or 'scaled', got {interaction!r}")
    if not (np.isfinite(noise_std) and noise_std >= 0):
        raise ValueError(f"noise_std must be a finite number >= 0, got {noise_std}")
    rng = np.random.default_rng(seed)
    n = rows * cols
    labels = rng.integers(0, n_categories, size=n).astype(np.int64)
    patches = motif_patches(labels, patch_size, seed=int(rng.integers(2**31)))
    rr, cc = np.unravel_index(np.arange(n), (rows, cols))
    coords = np.stack([rr / (rows - 1), cc / (cols - 1)], axis=1)
    h = spatial_field(coords)
    if interaction == "additive":
        values = CATEGORY_EFFECTS[:n_categories].copy()
        cat, pos = values[labels], h
        y_clean = cat + pos
    else:
        values = CATEGORY_SCALES[:n_categories].copy()
        cat, pos = values[labels], 1.0 + 0.8 * h
        y_clean = cat * pos
    y = y_clean + noise_std * rng.standard_normal(n)
    return MechanismData(
        patches=patches, coords=coords.astype(np.float32), labels=labels,
        y=y.astype(np.float32), y_clean=y_clean.astype(np.float32),
        contributions={"patch": cat, "position": pos}, interaction=interaction,
        noise_std=float(noise_std), grid_shape=(rows, cols), category_values=values,
    )


def site_windows(image: np.ndarray, half: int, mode: str = "wrap") -> np.ndarray:
    """Square windows of ``image`` centred on every pixel.

    Args:
        image: (H, W) array.
        half: half-width; windows are ``(2 half + 1)`` pixels square.
        mode: how the border is padded (:func:`numpy.pad`): ``"wrap"`` for a periodic
            image, ``"edge"`` (repeat the border pixel) for a measured one.

    Returns:
        (H * W, 2 half + 1, 2 half + 1) float32, row-major over the sites.
    """
    image = np.asarray(image, dtype=np.float32)
    if image.ndim != 2:
        raise ValueError(f"image must be 2-D (H, W), got shape {image.shape}")
    if half < 1 or 2 * half + 1 > min(image.shape):
        raise ValueError(f"half must be >= 1 and the window fit in the image, got {half}")
    padded = np.pad(image, half, mode=mode)
    win = np.lib.stride_tricks.sliding_window_view(padded, (2 * half + 1, 2 * half + 1))
    return np.ascontiguousarray(win.reshape(-1, 2 * half + 1, 2 * half + 1))


#: Random field of each lattice defect type along (P0, P1), reduced units (type 0: none).
DEFECT_FIELDS = np.array([[0.0, 0.0], [0.7, 0.0], [-0.7, 0.0], [0.0, 0.7]])
#: How each defect type appears in the structural (defect-map) image.
DEFECT_CONTRAST = np.array([0.0, 1.0, -1.0, 0.5])


def lattice_mechanisms(
    size: int = 32, half: int = 3, defect_density: float = 0.2, a1_modulation: float = 0.45,
    noise_std: float = 0.01, n_steps: int = 600, seed: int = 0,
) -> MechanismData:
    """Point defects and a smooth Landau-coefficient field on the kinetic ferroelectric lattice.

    A tetragonal lattice (``a2 = 0.5``, ``a3 = 1.5``, coupling 2) poled along ``+P0`` relaxes
    (``n_steps`` Landau-Khalatnikov steps of 0.05) under two independent mechanisms:

    - **position**: ``a1(row, col) = -1 + a1_modulation * s(row, col)`` with ``s`` a smooth
      periodic pattern in ``[-1, 1]`` (a temperature or strain gradient), which sets the local
      spontaneous polarisation;
    - **patch**: point defects at a fraction ``defect_density`` of the sites, of three types
      with random fields ``DEFECT_FIELDS`` (+P0, -P0, +P1), seen in a structural image
      (``DEFECT_CONTRAST``) of which each site gets the ``(2 half + 1)`` square window.

    The measured signal is ``P0`` at every site plus Gaussian noise. Ground truth from the same
    lattice relaxed without defects: ``contributions["position"] = P0_clean``,
    ``contributions["patch"] = P0 - P0_clean`` (the defects' effect, whose size depends on the
    local susceptibility, i.e. on position too: additive plus a scaled interaction).

    Returns:
        :class:`MechanismData` with ``interaction = "additive+scaled"``, ``labels`` the defect
        type at each site, ``category_values`` the (4, 2) defect fields, ``patches``
        (size^2, 2 half + 1, 2 half + 1) and ``coords`` in ``[0, 1)``.
    """
    from ._lattice import LandauCoefficients, landau_khalatnikov

    if size < 8:
        raise ValueError(f"size must be >= 8 sites, got {size}")
    if not 0.0 <= defect_density <= 1.0:
        raise ValueError(f"defect_density must be in [0, 1], got {defect_density}")
    if not 0.0 <= a1_modulation < 1.0:
        raise ValueError(f"a1_modulation must be in [0, 1) to stay ferroelectric, "
                         f"got {a1_modulation}")
    if not (np.isfinite(noise_std) and noise_std >= 0):
        raise ValueError(f"noise_std must be a finite number >= 0, got {noise_std}")
    rng = np.random.default_rng(seed)
    rr, cc = np.mgrid[0:size, 0:size] / size
    smooth = 0.5 * np.sin(2 * np.pi * (rr + 0.5 * cc)) + 0.5 * np.cos(2 * np.pi * cc)
    a1 = -1.0 + a1_modulation * smooth / np.abs(smooth).max()
    coeffs = LandauCoefficients(a1=a1, a2=0.5, a3=1.5, coupling=2.0)
    types = np.zeros((size, size), dtype=np.int64)
    hit = rng.random((size, size)) < defect_density
    types[hit] = rng.integers(1, len(DEFECT_FIELDS), size=int(hit.sum()))
    defects = np.moveaxis(DEFECT_FIELDS[types], -1, 0)  # (2, H, W)
    start = np.zeros((2, size, size))
    start[0] = 1.0
    clean = landau_khalatnikov(start, n_steps, coeffs, dt=0.05)[0]
    full = landau_khalatnikov(start, n_steps, coeffs, defects=defects, dt=0.05)[0]
    y = full + noise_std * rng.standard_normal(full.shape)
    contrast = DEFECT_CONTRAST[types]
    coords = np.stack([rr.ravel(), cc.ravel()], axis=1)
    return MechanismData(
        patches=site_windows(contrast, half), coords=coords.astype(np.float32),
        labels=types.ravel(), y=y.ravel().astype(np.float32),
        y_clean=full.ravel().astype(np.float32),
        contributions={"patch": (full - clean).ravel(), "position": clean.ravel()},
        interaction="additive+scaled", noise_std=float(noise_std), grid_shape=(size, size),
        category_values=DEFECT_FIELDS.copy(),
    )


def hysteresis_mechanisms(hmap, half: int = 3, target: str = "shift") -> MechanismData:
    """DIVIDE inputs from a :func:`~helpers.simulate.ferroelectric.hysteresis_map`.

    Target (volts): ``"shift"``, the mean of each loop's two switching voltages (an imprint
    ``E`` shifts an ideal loop by ``-E / field_per_volt``), ``"up"`` / ``"down"``, the
    up- or down-switching voltage alone, or ``"width"``, their difference. Mechanisms:
    **patch**, the ``(2 half + 1)`` square window of the piezoresponse image around the site
    (local domains and walls), and **position**, on which the hidden smooth imprint acts.
    Sites whose loop never switches (NaN switching voltage) are dropped (``index`` keeps the
    grid position of the others).

    Ground truth: ``contributions["position"] = -imprint / field_per_volt`` (volts), the loop
    shift the imprint alone causes; the domain effect has no separate ground truth, so
    ``contributions`` holds only the position. ``labels`` are the true domain variants and
    ``y_clean`` equals ``y`` (the loop noise is already inside the switching voltages).
    """
    for name in ("image", "coercive_voltages", "imprint", "domains", "field_per_volt"):
        if not hasattr(hmap, name):
            raise ValueError(f"hmap must be a HysteresisMap (missing {name!r})")
    cv = np.asarray(hmap.coercive_voltages, dtype=np.float64)
    targets = {"shift": cv.mean(axis=-1), "down": cv[..., 0], "up": cv[..., 1],
               "width": cv[..., 1] - cv[..., 0]}
    if target not in targets:
        raise ValueError(f"target must be one of {sorted(targets)}, got {target!r}")
    h, w = hmap.image.shape
    shift = targets[target].ravel()
    keep = np.flatnonzero(np.isfinite(shift))
    rr, cc = np.mgrid[0:h, 0:w]
    coords = np.stack([rr.ravel() / h, cc.ravel() / w], axis=1).astype(np.float32)
    imprint_shift = -np.asarray(hmap.imprint, dtype=np.float64).ravel() / hmap.field_per_volt
    full = MechanismData(
        patches=site_windows(hmap.image, half), coords=coords,
        labels=np.asarray(hmap.domains).ravel().astype(np.int64),
        y=shift.astype(np.float32), y_clean=shift.astype(np.float32),
        contributions={"position": imprint_shift}, interaction="additive",
        noise_std=float("nan"), grid_shape=(h, w), category_values=np.arange(4.0),
    )
    return full.subset(keep)
