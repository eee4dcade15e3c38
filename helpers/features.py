"""Local structure: patches around objects, dense sliding windows, tracking, descriptors.

The steps between "objects found in an image" (``helpers.segment``) and "latent analysis"
(``helpers.models``):

- :func:`extract_patches` cuts a square window around every object of an image or a movie
  (vectorised: about 100k windows of 24x24 px per second);
- :func:`grid_patches` cuts dense sliding windows and maps per-window values back to a grid;
- :func:`inside_frame` keeps the positions at least a margin away from the image border;
- :func:`track` links objects across frames into trajectories (optimal assignment with gap
  closing; :func:`helpers.analysis.link_accuracy` scores the links against known identities);
- per-frame descriptors: :func:`fft_power`, :func:`autocorrelation`, their radial averages
  (:func:`radial_profile`) and the radial pair distribution function
  (:func:`pair_distribution`);
- thin wrappers over scikit-learn that work on patch stacks and keep the link to the image:
  :func:`decompose_patches` (PCA / NMF), :func:`cluster` (Gaussian mixture) and
  :func:`map_to_image` (per-object values painted back onto the image grid).

Coordinates are ``(row, col)`` in pixels; frames are indexed from 0.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ._checks import image_stack, real_array

__all__ = [
    "Patches",
    "GridPatches",
    "Tracks",
    "Decomposition",
    "Clustering",
    "extract_patches",
    "grid_patches",
    "inside_frame",
    "track",
    "fft_power",
    "autocorrelation",
    "radial_profile",
    "pair_distribution",
    "decompose_patches",
    "cluster",
    "map_to_image",
]


# --------------------------------------------------------------------------------------------
# input checks
# --------------------------------------------------------------------------------------------
def _as_stack(frames, name: str = "frames") -> tuple[np.ndarray, bool]:
    """Return ``(T, H, W)`` array and whether the input was a single ``(H, W)`` image."""
    return image_stack(frames, name)


def _check_window(window) -> int:
    if not isinstance(window, (int, np.integer)) or window < 1:
        raise ValueError(f"window must be a positive integer number of pixels, got {window!r}")
    return int(window)


def _points(coords, name: str = "coords", min_cols: int = 2) -> np.ndarray:
    """An ``(N, >=min_cols)`` float array of finite real numbers (N may be 0)."""
    arr = np.asarray(real_array(coords, name), dtype=float)
    if arr.size == 0:
        return np.zeros((0, max(min_cols, arr.shape[-1] if arr.ndim == 2 else min_cols)))
    if arr.ndim != 2 or arr.shape[1] < min_cols:
        raise ValueError(
            f"{name} must be an (N, {min_cols}+) array of positions, got shape {arr.shape}"
        )
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} contains NaN or inf; drop those rows first")
    return arr


def inside_frame(points, shape, margin: float) -> np.ndarray:
    """Which positions lie at least ``margin`` pixels inside an image.

    A position ``(row, col)`` is inside when ``margin <= row <= H - 1 - margin`` and
    ``margin <= col <= W - 1 - margin``: its distance to the first and to the last pixel
    centre of each axis is at least ``margin`` (objects nearer the border are cut by it, so
    their centres are biased or their windows do not fit).

    Args:
        points: ``(N, 2+)`` ``[row, col, ...]`` in pixels (extra columns are ignored).
        shape: ``(H, W)`` of the image, pixels.
        margin: pixels, >= 0.

    Returns:
        ``(N,)`` bool mask; ``points[mask]`` keeps the inside ones (a NaN position is not
        inside).
    """
    p = np.asarray(real_array(points, "points"), dtype=float)
    if p.size == 0:
        return np.zeros(len(p), dtype=bool)
    if p.ndim != 2 or p.shape[1] < 2:
        raise ValueError(f"points must be an (N, 2+) array [row, col, ...], got shape {p.shape}")
    if len(shape) != 2:
        raise ValueError(f"shape must be the image's (H, W), got {shape!r}; for a movie "
                         "(T, H, W) pass frames.shape[1:]")
    if not np.isfinite(margin) or margin < 0:
        raise ValueError(f"margin must be a non-negative number of pixels, got {margin!r}")
    height, width = shape[0], shape[1]
    return ((p[:, 0] >= margin) & (p[:, 0] <= height - 1 - margin)
            & (p[:, 1] >= margin) & (p[:, 1] <= width - 1 - margin))


# --------------------------------------------------------------------------------------------
# patches
# --------------------------------------------------------------------------------------------
@dataclass
class Patches:
    """Windows cut around objects.

    Attributes:
        patches: ``(M, window, window)`` float32, the pixels of each window.
        frame: ``(M,)`` int, frame of each window (0 for a single image).
        coords: ``(M, 2)`` float, the ``(row, col)`` given for each object (sub-pixel kept).
        centers: ``(M, 2)`` int, the pixel at window index ``(window // 2, window // 2)``.
        index: ``(M,)`` int, row of each window in the (concatenated) input coordinates,
            so ``extras[index]`` pulls any per-object column (class, id) along.
        dropped: ``(K,)`` int, input rows whose window crossed the border (not returned).
        window: the window size in pixels.
    """

    patches: np.ndarray
    frame: np.ndarray
    coords: np.ndarray
    centers: np.ndarray
    index: np.ndarray
    dropped: np.ndarray
    window: int

    @property
    def n_dropped(self) -> int:
        """Number of objects whose window crossed the image border."""
        return int(self.dropped.size)

    @property
    def offsets(self) -> np.ndarray:
        """``(M, 2)`` sub-pixel offset ``coords - centers`` in pixels, each in [-0.5, 0.5]."""
        return self.coords - self.centers


def _frame_keys(coords: dict, n_frames: int | None, name: str) -> int:
    """Check the keys of a ``{frame: array}`` dict; return the number of frames they span.

    Keys must be integers (integral floats are accepted) >= 0, and below ``n_frames`` when
    the movie length is known, so that no frame is silently left out.
    """
    top = -1
    for key in coords:
        try:
            k = int(key)
            ok = not isinstance(key, (bool, np.bool_)) and k == key
        except (TypeError, ValueError, OverflowError):
            ok = False
        if not ok or k < 0:
            raise ValueError(f"{name} has the frame key {key!r}; keys must be frame numbers, "
                             "integers >= 0 (the first frame is 0)")
        if n_frames is not None and k >= n_frames:
            raise ValueError(f"{name} has the frame key {key!r} but the movie has {n_frames} "
                             f"frames (0 to {n_frames - 1})")
        top = max(top, k)
    return top + 1


def _movie_points(coords, n_frames: int, single: bool) -> np.ndarray:
    """Normalise object positions to an ``(N, 3)`` array ``[frame, row, col]``."""
    if isinstance(coords, dict):
        _frame_keys(coords, n_frames, "coords")
        lookup = {int(k): v for k, v in coords.items()}
        coords = [lookup.get(t, np.zeros((0, 2))) for t in range(n_frames)]
    if isinstance(coords, (list, tuple)) and not single and (
        len(coords) == 0 or np.asarray(coords[0]).ndim == 2
    ):
        if len(coords) != n_frames:
            raise ValueError(
                f"got coordinates for {len(coords)} frames but the movie has {n_frames}; "
                "pass one (N_t, 2+) array per frame"
            )
        parts = []
        for t, c in enumerate(coords):
            c = _points(c, f"coords[{t}]")
            parts.append(np.column_stack([np.full(len(c), t, float), c[:, :2]]))
        return np.concatenate(parts) if parts else np.zeros((0, 3))
    arr = _points(coords)
    if single:
        return np.column_stack([np.zeros(len(arr)), arr[:, :2]])
    if arr.shape[1] < 3:
        raise ValueError(
            "for a movie, coords must be a list of per-frame (N_t, 2+) arrays or one "
            f"(N, 3) array [frame, row, col]; got shape {arr.shape}"
        )
    frames = arr[:, 0]
    if (frames != np.round(frames)).any() or frames.min(initial=0) < 0 or (
        frames.max(initial=0) >= n_frames
    ):
        raise ValueError(f"the frame column of coords must hold integers in [0, {n_frames})")
    return arr[:, :3]


def extract_patches(frames, coords, window: int) -> Patches:
    """Cut a ``window x window`` patch around every object.

    Args:
        frames: an image ``(H, W)`` or a movie ``(T, H, W)`` of real numbers.
        coords: for an image, ``(N, 2+)`` ``[row, col, ...]`` in pixels; for a movie, a list of
            ``T`` per-frame ``(N_t, 2+)`` arrays (as returned per frame by
            ``helpers.segment.find_atoms``), a dict ``{frame: array}``, or one ``(N, 3+)``
            array ``[frame, row, col, ...]``. Extra columns are ignored (use ``index``).
        window: side of the square window in pixels. Each position is rounded to the nearest
            pixel ``(r, c)`` and the window covers rows ``r - window // 2`` to
            ``r - window // 2 + window - 1`` (same for columns), so ``(r, c)`` sits at
            index ``(window // 2, window // 2)`` of the patch.

    Returns:
        :class:`Patches`. Windows that would cross the border are dropped and their input
        rows listed in ``dropped``.

    Raises:
        ValueError: bad shapes, NaN/inf or complex input, frame numbers outside the movie,
            or positions so far outside the image that no pixel of their window is in it
            (coordinates in other units, or of another image); the message says how many.
    """
    stack, single = _as_stack(frames)
    window = _check_window(window)
    n_frames, height, width = stack.shape
    if window > min(height, width):
        raise ValueError(f"window {window} is larger than the image ({height}x{width})")
    pts = _movie_points(coords, n_frames, single)
    half = window // 2
    # rounded and tested in float first: huge values must not overflow the integer cast
    first = np.rint(pts[:, 1:3]) - half
    away = ((first[:, 0] + window <= 0) | (first[:, 0] >= height)
            | (first[:, 1] + window <= 0) | (first[:, 1] >= width))
    if away.any():
        i = int(np.flatnonzero(away)[0])
        raise ValueError(
            f"{int(away.sum())} of {len(pts)} positions lie outside the {height} x {width} "
            f"image, beyond the reach of a {window} px window (first: row {pts[i, 1]:.6g}, "
            f"col {pts[i, 2]:.6g}); coords must be (row, col) in pixels of these frames"
        )
    centers = np.rint(pts[:, 1:3]).astype(np.int64)
    top_left = centers - half
    inside = (
        (top_left[:, 0] >= 0)
        & (top_left[:, 1] >= 0)
        & (top_left[:, 0] + window <= height)
        & (top_left[:, 1] + window <= width)
    )
    keep = np.flatnonzero(inside)
    frame = pts[keep, 0].astype(np.int64)
    views = sliding_window_view(stack, (window, window), axis=(1, 2))
    patches = np.asarray(
        views[frame, top_left[keep, 0], top_left[keep, 1]], dtype=np.float32
    ).reshape(len(keep), window, window)
    return Patches(
        patches=patches,
        frame=frame,
        coords=pts[keep, 1:3],
        centers=centers[keep],
        index=keep,
        dropped=np.flatnonzero(~inside),
        window=window,
    )


@dataclass
class GridPatches:
    """Dense sliding windows on a regular grid.

    Attributes:
        patches: ``(M, window, window)`` float32 with ``M = T * n_rows * n_cols``.
        frame: ``(M,)`` int frame of each window (0 for a single image).
        centers: ``(M, 2)`` int, pixel at index ``(window // 2, window // 2)`` of each window.
        grid_shape: ``(n_rows, n_cols)`` for an image or ``(T, n_rows, n_cols)`` for a movie.
        window, step: in pixels.
    """

    patches: np.ndarray
    frame: np.ndarray
    centers: np.ndarray
    grid_shape: tuple
    window: int
    step: int

    def to_grid(self, values) -> np.ndarray:
        """Arrange per-window values ``(M,)`` or ``(M, K)`` as ``grid_shape (+ (K,))``."""
        values = np.asarray(values)
        n = int(np.prod(self.grid_shape))
        if values.shape[0] != n:
            raise ValueError(f"expected {n} values (one per window), got {values.shape[0]}")
        return values.reshape(tuple(self.grid_shape) + values.shape[1:])


def grid_patches(image, window: int, step: int = 1) -> GridPatches:
    """Sliding ``window x window`` patches every ``step`` pixels over an image or a movie.

    Args:
        image: ``(H, W)`` or ``(T, H, W)``.
        window: window side in pixels; step: grid spacing in pixels.

    Returns:
        :class:`GridPatches`; ``to_grid(values)`` maps per-window results back onto the grid
        whose node ``(i, j)`` is the window centred at ``centers`` (row ``i * step +
        window // 2``, col ``j * step + window // 2``).
    """
    stack, single = _as_stack(image, "image")
    window = _check_window(window)
    if not isinstance(step, (int, np.integer)) or step < 1:
        raise ValueError(f"step must be a positive integer number of pixels, got {step!r}")
    n_frames, height, width = stack.shape
    if window > min(height, width):
        raise ValueError(f"window {window} is larger than the image ({height}x{width})")
    views = sliding_window_view(stack, (window, window), axis=(1, 2))[:, ::step, ::step]
    _, n_rows, n_cols = views.shape[:3]
    patches = np.asarray(views, dtype=np.float32).reshape(-1, window, window)
    rows = np.arange(n_rows) * step + window // 2
    cols = np.arange(n_cols) * step + window // 2
    rr, cc = np.meshgrid(rows, cols, indexing="ij")
    centers = np.tile(np.column_stack([rr.ravel(), cc.ravel()]), (n_frames, 1))
    frame = np.repeat(np.arange(n_frames), n_rows * n_cols)
    shape = (n_rows, n_cols) if single else (n_frames, n_rows, n_cols)
    return GridPatches(patches, frame, centers, shape, window, int(step))


# --------------------------------------------------------------------------------------------
# tracking
# --------------------------------------------------------------------------------------------
@dataclass
class Tracks:
    """Objects linked across frames.

    Attributes:
        ids: list of ``T`` arrays ``(N_t,)`` int, the trajectory id of every input object.
        trajectories: list (indexed by id) of ``(L, 3)`` float arrays ``[frame, row, col]``,
            sorted by frame; frames skipped by gap closing are simply absent.
    """

    ids: list
    trajectories: list = field(default_factory=list)

    @property
    def n_tracks(self) -> int:
        return len(self.trajectories)

    def lengths(self) -> np.ndarray:
        """``(n_tracks,)`` number of detections in each trajectory."""
        return np.array([len(t) for t in self.trajectories], dtype=int)


def _assign(cost: np.ndarray, limit: float) -> tuple[np.ndarray, np.ndarray]:
    """Optimal partial assignment: pairs with cost <= limit, unmatched items cost ``limit``.

    ``cost`` is ``(n, m)`` with ``inf`` for forbidden pairs. Uses the usual augmented
    ``(n + m) x (m + n)`` matrix so that leaving an item unmatched is an option, not forced.
    """
    from scipy.optimize import linear_sum_assignment

    n, m = cost.shape
    if n == 0 or m == 0:
        return np.zeros(0, int), np.zeros(0, int)
    big = 1e12 if not np.isfinite(limit) else max(1e6, 1e3 * (limit + 1.0))
    aug = np.full((n + m, m + n), big)
    aug[:n, :m] = np.where(cost <= limit, cost, big)
    aug[np.arange(n), m + np.arange(n)] = limit  # track / row left unmatched
    aug[n + np.arange(m), np.arange(m)] = limit  # detection / column left unmatched
    aug[n:, m:] = np.where(cost.T <= limit, 0.0, big)
    rows, cols = linear_sum_assignment(aug)
    real = (rows < n) & (cols < m)
    rows, cols = rows[real], cols[real]
    ok = cost[rows, cols] <= limit
    return rows[ok], cols[ok]


def track(coords_per_frame, max_displacement: float, max_gap: int = 1) -> Tracks:
    """Link objects frame to frame into trajectories.

    Each new frame is linked to the trajectories alive so far by optimal assignment
    (``scipy.optimize.linear_sum_assignment``) of the squared displacement normalised by the
    elapsed frames, ``d^2 / dt`` (diffusive motion). A link is allowed when
    ``d <= max_displacement * sqrt(dt)``; leaving an object unlinked costs
    ``max_displacement^2``. A trajectory not seen for ``max_gap`` frames can still be
    continued (gap closing: a missed detection does not split it); after that it ends.

    Args:
        coords_per_frame: list of ``T`` arrays ``(N_t, 2+)`` ``[row, col, ...]`` in pixels
            (or a dict ``{frame: array}`` with integer frame keys >= 0; missing frames are
            empty); extra columns are ignored.
        max_displacement: largest step between consecutive frames, in pixels.
        max_gap: number of consecutive missed frames that may be bridged (0: none).

    Returns:
        :class:`Tracks` with the id of every object and the trajectories.
    """
    if isinstance(coords_per_frame, dict):
        n = _frame_keys(coords_per_frame, None, "coords_per_frame")
        lookup = {int(k): v for k, v in coords_per_frame.items()}
        coords_per_frame = [lookup.get(t, np.zeros((0, 2))) for t in range(n)]
    if isinstance(coords_per_frame, np.ndarray) and coords_per_frame.ndim == 2:
        raise ValueError(
            "coords_per_frame must be a list of per-frame (N_t, 2) arrays, not one 2D array; "
            "split an (N, 3) [frame, row, col] array by frame first"
        )
    if not np.isfinite(max_displacement) or max_displacement <= 0:
        raise ValueError(f"max_displacement must be a positive number of pixels, got "
                         f"{max_displacement!r}")
    if not isinstance(max_gap, (int, np.integer)) or max_gap < 0:
        raise ValueError(f"max_gap must be a non-negative integer, got {max_gap!r}")
    frames = [_points(c, f"coords_per_frame[{t}]")[:, :2] for t, c in
              enumerate(coords_per_frame)]
    limit = float(max_displacement) ** 2
    ids: list[np.ndarray] = []
    trajectories: list[list] = []
    last_pos = np.zeros((0, 2))
    last_frame = np.zeros(0, int)
    for t, pts in enumerate(frames):
        frame_ids = np.full(len(pts), -1, dtype=int)
        alive = np.flatnonzero(t - last_frame <= max_gap + 1)
        if alive.size and len(pts):
            dt = (t - last_frame[alive]).astype(float)
            d2 = ((last_pos[alive, None, :] - pts[None, :, :]) ** 2).sum(-1)
            cost = d2 / dt[:, None]
            rows, cols = _assign(cost, limit)
            frame_ids[cols] = alive[rows]
        for j in np.flatnonzero(frame_ids < 0):
            frame_ids[j] = len(trajectories)
            trajectories.append([])
        if len(trajectories) > len(last_pos):
            grow = len(trajectories) - len(last_pos)
            last_pos = np.concatenate([last_pos, np.zeros((grow, 2))])
            last_frame = np.concatenate([last_frame, np.zeros(grow, int)])
        for j, k in enumerate(frame_ids):
            trajectories[k].append((t, pts[j, 0], pts[j, 1]))
        last_pos[frame_ids] = pts
        last_frame[frame_ids] = t
        ids.append(frame_ids)
    return Tracks(ids=ids, trajectories=[np.asarray(tr, dtype=float) for tr in trajectories])


# --------------------------------------------------------------------------------------------
# per-frame descriptors
# --------------------------------------------------------------------------------------------
def _taper(height: int, width: int) -> np.ndarray:
    return np.outer(np.hanning(height), np.hanning(width))


def fft_power(frames, window: bool = True, log: bool = False) -> np.ndarray:
    """Centred 2D power spectrum of an image or of every frame of a movie.

    The mean is removed and (``window=True``) a 2D Hann taper applied before the FFT so the
    image edges do not add a cross of spurious power. Zero frequency sits at pixel
    ``(H // 2, W // 2)``; pixel ``(i, j)`` is the frequency ``((i - H // 2) / H,
    (j - W // 2) / W)`` in cycles per pixel.

    Returns:
        float array, same shape as ``frames``: ``|F|^2`` (or ``log1p(|F|^2)`` with ``log``).
    """
    stack, single = _as_stack(frames)
    x = stack.astype(np.float64)
    x = x - x.mean(axis=(1, 2), keepdims=True)
    if window:
        x = x * _taper(*x.shape[1:])
    power = np.abs(np.fft.fftshift(np.fft.fft2(x), axes=(1, 2))) ** 2
    if log:
        power = np.log1p(power)
    return power[0] if single else power


def autocorrelation(frames, normalize: bool = True) -> np.ndarray:
    """Centred, periodic 2D autocorrelation (Wiener-Khinchin) of an image or of each frame.

    Lag ``(0, 0)`` sits at pixel ``(H // 2, W // 2)``; pixel ``(i, j)`` is the lag
    ``(i - H // 2, j - W // 2)`` pixels. The frame mean is removed first; with ``normalize``
    the zero-lag value is 1 (a flat frame gives all zeros).
    """
    stack, single = _as_stack(frames)
    x = stack.astype(np.float64)
    x = x - x.mean(axis=(1, 2), keepdims=True)
    f = np.fft.fft2(x)
    acf = np.fft.fftshift(np.fft.ifft2(np.abs(f) ** 2).real, axes=(1, 2)) / x[0].size
    if normalize:
        zero = acf[:, x.shape[1] // 2, x.shape[2] // 2][:, None, None]
        acf = np.divide(acf, zero, out=np.zeros_like(acf), where=zero > 0)
    return acf[0] if single else acf


def radial_profile(image, n_bins: int | None = None, frequency: bool = False):
    """Azimuthal average of a centred map (:func:`fft_power`, :func:`autocorrelation`).

    Args:
        image: ``(H, W)`` or ``(T, H, W)`` map with its origin at ``(H // 2, W // 2)``.
        n_bins: number of radial bins (default ``min(H, W) // 2``), evenly covering radii up to
            the largest full circle.
        frequency: the map is a power spectrum: radii are spatial frequencies in cycles per
            pixel (pixel offsets divided by ``H`` and ``W``, so non-square frames work);
            otherwise radii are in pixels.

    Returns:
        ``(radii, profile)``: bin centres ``(n_bins,)`` and the mean in each bin, ``(n_bins,)``
        or ``(T, n_bins)``. For a lattice with plane spacing ``d`` pixels the power profile
        peaks at ``1 / d`` cycles/px and the autocorrelation profile at ``d`` px (and
        multiples).
    """
    stack, single = _as_stack(image, "image")
    _, height, width = stack.shape
    rows = np.arange(height) - height // 2
    cols = np.arange(width) - width // 2
    if frequency:
        r = np.hypot(rows[:, None] / height, cols[None, :] / width)
        r_max = 0.5
    else:
        r = np.hypot(rows[:, None], cols[None, :]).astype(float)
        r_max = float(min(height, width) // 2)
    n_bins = int(n_bins or min(height, width) // 2)
    if n_bins < 1:
        raise ValueError(f"n_bins must be >= 1, got {n_bins}")
    edges = np.linspace(0.0, r_max, n_bins + 1)
    which = np.digitize(r.ravel(), edges) - 1
    valid = (which >= 0) & (which < n_bins)
    counts = np.bincount(which[valid], minlength=n_bins)
    flat = stack.reshape(len(stack), -1)[:, valid]
    sums = np.stack([np.bincount(which[valid], weights=f, minlength=n_bins) for f in flat])
    profile = np.divide(sums, counts, out=np.zeros_like(sums), where=counts > 0)
    centres = 0.5 * (edges[1:] + edges[:-1])
    return centres, (profile[0] if single else profile)


def pair_distribution(coords, image_shape, r_max: float, n_bins: int = 100):
    """Radial pair distribution function g(r) of point positions in one frame (or several).

    Edge-corrected by using as reference points only those at least ``r_max`` from the image
    border (all of their neighbours up to ``r_max`` are then inside); every point counts as a
    neighbour. g(r) tends to 1 for an uncorrelated (Poisson) arrangement and peaks at the
    neighbour distances of a lattice.

    Args:
        coords: ``(N, 2+)`` ``[row, col, ...]`` in pixels, or a list of such arrays (one per
            frame, giving one g(r) per frame).
        image_shape: ``(H, W)`` of the frame the points lie in.
        r_max: largest distance in pixels (less than half the smaller image side).
        n_bins: number of distance bins.

    Returns:
        ``(r, g)``: bin centres ``(n_bins,)`` in pixels and g ``(n_bins,)`` or ``(T, n_bins)``
        (zeros where there are no reference points).
    """
    from scipy.spatial import cKDTree

    if len(image_shape) < 2:
        raise ValueError(f"image_shape must be (H, W), got {image_shape!r}")
    height, width = float(image_shape[-2]), float(image_shape[-1])
    if not 0 < r_max < min(height, width) / 2:
        raise ValueError(
            f"r_max must be in (0, {min(height, width) / 2}) px for a {height:.0f}x{width:.0f}"
            f" frame, got {r_max!r}"
        )
    is_list = isinstance(coords, (list, tuple)) and (
        len(coords) == 0 or np.asarray(coords[0]).ndim == 2
    )
    sets = [_points(c, "coords")[:, :2] for c in (coords if is_list else [coords])]
    edges = np.linspace(0.0, r_max, n_bins + 1)
    shell = np.pi * (edges[1:] ** 2 - edges[:-1] ** 2)
    out = np.zeros((len(sets), n_bins))
    for k, pts in enumerate(sets):
        ref = (
            (pts[:, 0] >= r_max) & (pts[:, 0] <= height - r_max)
            & (pts[:, 1] >= r_max) & (pts[:, 1] <= width - r_max)
        )
        if ref.sum() == 0 or len(pts) < 2:
            continue
        tree = cKDTree(pts)
        pairs = tree.query_ball_point(pts[ref], r_max)
        ref_idx = np.flatnonzero(ref)
        dists = [
            np.hypot(*(pts[np.asarray(nb, int)] - pts[i]).T)
            for i, nb in zip(ref_idx, pairs)
        ]
        d = np.concatenate(dists) if dists else np.zeros(0)
        d = d[d > 0]
        hist = np.histogram(d, bins=edges)[0].astype(float)
        density = len(pts) / (height * width)
        out[k] = hist / (ref.sum() * density * shell)
    centres = 0.5 * (edges[1:] + edges[:-1])
    return centres, (out if is_list else out[0])


# --------------------------------------------------------------------------------------------
# scikit-learn on patch stacks
# --------------------------------------------------------------------------------------------
def _flat(patches, name: str = "patches") -> tuple[np.ndarray, tuple]:
    arr = np.asarray(real_array(patches, name), dtype=np.float64)
    if arr.ndim < 2:
        raise ValueError(f"{name} must be (M, ...) with one row per sample, got {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} contains NaN or inf")
    return arr.reshape(len(arr), -1), arr.shape[1:]


@dataclass
class Decomposition:
    """Linear decomposition of a patch stack.

    Attributes:
        weights: ``(M, k)`` per-patch coefficients (map them onto the image with
            :func:`map_to_image` or ``GridPatches.to_grid``).
        components: ``(k,) + patch_shape`` components, viewable as images.
        explained_variance_ratio: ``(k,)`` for PCA, None for NMF.
        model: the fitted scikit-learn estimator (``transform`` new patches with it).
    """

    weights: np.ndarray
    components: np.ndarray
    explained_variance_ratio: np.ndarray | None
    model: object


def decompose_patches(patches, n_components: int, method: str = "pca", seed: int = 0,
                      **kwargs) -> Decomposition:
    """PCA or NMF of a stack of patches (or of any ``(M, F)`` descriptor matrix).

    Args:
        patches: ``(M, ...)``; each sample is flattened. NMF needs non-negative values
            (shift or clip first).
        n_components: number of components.
        method: ``"pca"`` or ``"nmf"``.
        seed: ``random_state`` of the estimator.
        **kwargs: passed to ``sklearn.decomposition.PCA`` / ``NMF`` (e.g. ``max_iter``).
    """
    from sklearn.decomposition import NMF, PCA

    x, shape = _flat(patches)
    method = method.lower()
    if method == "pca":
        model = PCA(n_components=n_components, random_state=seed, **kwargs)
    elif method == "nmf":
        if (x < 0).any():
            raise ValueError(
                "NMF needs non-negative input; subtract the minimum or clip at zero first"
            )
        kwargs.setdefault("init", "nndsvda")
        kwargs.setdefault("max_iter", 1000)
        model = NMF(n_components=n_components, random_state=seed, **kwargs)
    else:
        raise ValueError(f"method must be 'pca' or 'nmf', got {method!r}")
    weights = model.fit_transform(x)
    ratio = getattr(model, "explained_variance_ratio_", None)
    comps = model.components_.reshape((n_components,) + shape)
    return Decomposition(weights, comps, ratio, model)


@dataclass
class Clustering:
    """Gaussian-mixture classes of patches or latent codes.

    Attributes:
        labels: ``(M,)`` int, the most probable class of each sample.
        probabilities: ``(M, k)`` class responsibilities.
        means: ``(k,) + sample_shape``, the class centres (images for patches).
        model: the fitted ``sklearn.mixture.GaussianMixture``.
    """

    labels: np.ndarray
    probabilities: np.ndarray
    means: np.ndarray
    model: object


def cluster(samples, n_components: int, seed: int = 0, covariance_type: str = "diag",
            **kwargs) -> Clustering:
    """Gaussian mixture over patches ``(M, h, w)`` or latent codes ``(M, d)``.

    ``covariance_type="diag"`` keeps it fast on raw patches (hundreds of pixels); use
    ``"full"`` on a few latent dimensions. Extra keyword arguments go to
    ``sklearn.mixture.GaussianMixture``.
    """
    from sklearn.mixture import GaussianMixture

    x, shape = _flat(samples, "samples")
    model = GaussianMixture(n_components=n_components, covariance_type=covariance_type,
                            random_state=seed, **kwargs)
    model.fit(x)
    prob = model.predict_proba(x)
    return Clustering(prob.argmax(1), prob, model.means_.reshape((n_components,) + shape), model)


def map_to_image(values, coords, shape, radius: float = 0.0, fill: float = np.nan):
    """Paint per-object values onto an image grid (latent maps over a frame).

    Args:
        values: ``(N,)`` one value per object.
        coords: ``(N, 2+)`` ``[row, col, ...]`` positions in pixels.
        shape: ``(H, W)`` of the output.
        radius: paint a disc of this radius (pixels) around each object; 0 paints only the
            nearest pixel. Where discs overlap, the nearest object wins (a Voronoi tiling
            limited to ``radius``).
        fill: value of pixels with no object.

    Returns:
        ``(H, W)`` float array.
    """
    from scipy.spatial import cKDTree

    vals = np.asarray(values, dtype=float).ravel()
    pts = _points(coords)[:, :2]
    if len(vals) != len(pts):
        raise ValueError(f"got {len(vals)} values for {len(pts)} positions")
    height, width = int(shape[-2]), int(shape[-1])
    out = np.full((height, width), fill, dtype=float)
    if not len(pts):
        return out
    if radius <= 0:
        r = np.rint(pts).astype(int)
        ok = (r[:, 0] >= 0) & (r[:, 0] < height) & (r[:, 1] >= 0) & (r[:, 1] < width)
        out[r[ok, 0], r[ok, 1]] = vals[ok]
        return out
    rr, cc = np.mgrid[0:height, 0:width]
    grid = np.column_stack([rr.ravel(), cc.ravel()]).astype(float)
    dist, idx = cKDTree(pts).query(grid, distance_upper_bound=radius * (1 + 1e-9))
    hit = np.isfinite(dist)
    out.ravel()[hit] = vals[idx[hit]]
    return out
