"""A STEM image stack of an atomic lattice with known, scan-dependent microscope distortions.

The specimen is a perovskite seen along [001]: A columns (bright) on the corners of a square
cell of side ``a`` and B columns (dimmer) in its centres, so that all columns together form a
square lattice of spacing ``a / sqrt(2)``, turned by a random angle and shifted by a random
sub-pixel offset (no column sits on a pixel). Optionally a small **real** strain develops during
the series (a beam-induced dilatation bump whose displacement grows linearly with time): it is
part of the specimen and must survive any correction.

The microscope scans row by row (the slow-scan axis is the row, the fast-scan axis the column),
and every pixel is recorded at the scan time ``tau = t + (row + col / W) / H`` (frames). Pixel
``p = (row, col)`` of frame ``t`` shows the specimen at ``p - u(p, t)``, so an atom at ``x``
appears at ``x + u``: ``u`` is the apparent displacement, the sum of

- **drift** ``D(tau)``: the stage drifts with a velocity that changes speed and direction
  (fast at first, settling exponentially towards a slower drift in another direction);
- **slow-scan line jitter** ``J_t(row)``: every scan line is shifted as a whole (constant along
  the fast-scan axis), correlated over a few neighbouring lines, drawn independently in every
  frame;
- **flyback** ``F_t(col) = -A_t exp(-col / lambda)`` along the fast-scan axis: the scan coils
  lag after the flyback and compress the first columns of every line; the amplitude
  ``A_t`` varies from frame to frame.

Counts are Poisson draws of ``dose`` times the noise-free image (plus a background), and read
noise is added. Ground truth (for scoring only): the true atom positions per frame, the
apparent displacement of every atom (the displacement of the centroid of its own noise-free
image, so that ``distorted_positions = true_positions + field_at_atoms`` exactly), the field on
the pixel grid and its components.

All positions and displacements are in picometres, ``(row, col)`` order; images in counts.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

from ._common import Series, check_float, check_int, check_seed

__all__ = ["ScanDistortionStack", "scan_distortion_stack"]


@dataclass
class ScanDistortionStack(Series):
    """A simulated STEM stack and its ground truth.

    Attributes:
        frames: ``(T, H, W)`` float32 counts.
        pixel_size: pm per pixel.
        true_positions: ``(T, N, 2)`` pm, the true (specimen) positions of every column,
            including the real strain of that frame.
        field_at_atoms: ``(T, N, 2)`` pm, apparent displacement of every column by the scan.
        distorted_positions: ``(T, N, 2)`` pm, ``true_positions + field_at_atoms``.
        strain: ``(T, N, 2)`` pm, the real specimen displacement (0 without strain).
        lattice_positions: ``(N, 2)`` pm, the unstrained lattice sites.
        sublattice: ``(N,)`` int, 0 for A columns, 1 for B columns.
        field: ``(T, H, W, 2)`` pm, the distortion field ``u`` on the pixel grid.
        drift: ``(T, H, 2)`` pm, the drift component at every scan line (at its centre).
        frame_drift: ``(T, 2)`` pm, the drift averaged over each frame.
        jitter: ``(T, H, 2)`` pm, the line jitter.
        flyback: ``(T, W, 2)`` pm, the flyback component.
        params: the generator's arguments.
    """

    frames: np.ndarray
    pixel_size: float
    true_positions: np.ndarray
    field_at_atoms: np.ndarray
    distorted_positions: np.ndarray
    strain: np.ndarray
    lattice_positions: np.ndarray
    sublattice: np.ndarray
    field: np.ndarray
    drift: np.ndarray
    frame_drift: np.ndarray
    jitter: np.ndarray
    flyback: np.ndarray
    params: dict = field(default_factory=dict)


def _drift_function(rng, v_start: float, v_end: float, settle: float):
    """``D(tau)`` (pm, (n, 2)) for scan times ``tau`` (frames): velocity ``v_end + (v_start -
    v_end) exp(-tau / settle)`` with two independently drawn directions."""
    a1, a2 = rng.uniform(0, 2 * np.pi, 2)
    va = v_start * np.array([np.sin(a1), np.cos(a1)])
    vb = v_end * np.array([np.sin(a2), np.cos(a2)])

    def drift(tau):
        tau = np.asarray(tau, dtype=np.float64)[..., None]
        return vb * tau + (va - vb) * settle * (1.0 - np.exp(-tau / settle))

    return drift


def _line_jitter(rng, n_frames: int, height: int, rms: tuple[float, float],
                 corr_rows: float) -> np.ndarray:
    """``(T, H, 2)`` pm: white noise smoothed along the rows by a Gaussian of ``corr_rows``
    lines, scaled to the given rms per axis, independent between frames."""
    white = rng.standard_normal((n_frames, height + 8 * int(np.ceil(corr_rows)), 2))
    smooth = ndimage.gaussian_filter1d(white, corr_rows, axis=1, mode="wrap")
    pad = 4 * int(np.ceil(corr_rows))
    smooth = smooth[:, pad:pad + height]
    smooth = smooth / smooth.std(axis=(0, 1), keepdims=True)
    return smooth * np.asarray(rms, dtype=np.float64)


def scan_distortion_stack(n_frames: int = 16, size: int = 160, pixel_size: float = 25.0,
                          lattice_constant: float = 390.0, atom_sigma: float = 40.0,
                          drift_start: float = 35.0, drift_end: float = 8.0,
                          drift_settle: float | None = None, jitter_rms: float = 14.0,
                          jitter_rows: float = 4.0, flyback: float = 25.0,
                          flyback_width: float = 10.0, strain: float = 20.0,
                          dose: float = 60.0, background: float = 3.0, read_noise: float = 1.0,
                          seed: int = 0) -> ScanDistortionStack:
    """Simulate a distorted STEM stack of a perovskite lattice (see the module docstring).

    Args:
        n_frames: frames ``T`` (>= 3).
        size: frame side ``H = W`` in pixels (>= 48).
        pixel_size: pm per pixel.
        lattice_constant: perovskite cell ``a`` in pm (columns are ``a / sqrt(2)`` apart).
        atom_sigma: Gaussian width of a column image, pm.
        drift_start, drift_end: drift speed at the start and the end of the series, pm/frame
            (drawn in two independent random directions).
        drift_settle: time constant of the change of speed, frames (default ``T / 4``).
        jitter_rms: rms of the line jitter along the fast-scan axis, pm (a third of it along
            the slow-scan axis).
        jitter_rows: correlation length of the line jitter, scan lines.
        flyback: mean flyback amplitude at the first column, pm (varies +-50 % between frames).
        flyback_width: decay length of the flyback, pixels.
        strain: peak displacement of the real strain at the last frame, pm (0: none). The
            default, 20 pm at one sixth of the frame from the bump's centre (a local dilatation
            of about 3 %), changes each column by several times the few-pm scatter of a
            localisation per frame averaged over the series, so it is detectable.
        dose: counts at the peak of an A column.
        background: mean background counts per pixel.
        read_noise: standard deviation of the Gaussian read noise, counts.
        seed: random seed.

    Returns:
        :class:`ScanDistortionStack`.
    """
    t_n = check_int(n_frames, "n_frames", 3, "a trajectory needs several frames")
    size = check_int(size, "size", 48, "smaller frames hold too few unit cells")
    px = check_float(pixel_size, "pixel_size", 0.0, low_open=True, hint="pm per pixel")
    a = check_float(lattice_constant, "lattice_constant", 4 * px, hint="at least 4 pixels")
    sigma = check_float(atom_sigma, "atom_sigma", 0.0, a / 3, low_open=True,
                        hint="columns must be resolved")
    for value, name in ((drift_start, "drift_start"), (drift_end, "drift_end"),
                        (jitter_rms, "jitter_rms"), (flyback, "flyback"), (strain, "strain"),
                        (background, "background"), (read_noise, "read_noise")):
        check_float(value, name, 0.0)
    if max(drift_start, drift_end) > 0.25 * a:
        raise ValueError(f"drift of {max(drift_start, drift_end)} pm per frame exceeds a "
                         f"quarter of the column spacing ({0.25 * a:.0f} pm): frames could not "
                         "be linked; lower drift_start / drift_end")
    settle = t_n / 4.0 if drift_settle is None else check_float(drift_settle, "drift_settle",
                                                                0.0, low_open=True)
    rows_c = check_float(jitter_rows, "jitter_rows", 0.5, hint="scan lines")
    fly_w = check_float(flyback_width, "flyback_width", 0.5, hint="pixels")
    dose = check_float(dose, "dose", 0.0, low_open=True)
    seed = check_seed(seed)
    rng = np.random.default_rng(seed)
    params = dict(n_frames=t_n, size=size, pixel_size=px, lattice_constant=a,
                  atom_sigma=sigma, drift_start=float(drift_start), drift_end=float(drift_end),
                  drift_settle=settle, jitter_rms=float(jitter_rms), jitter_rows=rows_c,
                  flyback=float(flyback), flyback_width=fly_w, strain=float(strain),
                  dose=dose, background=float(background), read_noise=float(read_noise),
                  seed=seed)

    # the lattice: all columns form a square lattice of spacing a / sqrt(2), turned by angle
    spacing = a / np.sqrt(2)
    angle = rng.uniform(0, np.pi / 2)
    basis = spacing * np.array([[np.cos(angle), np.sin(angle)],
                                [-np.sin(angle), np.cos(angle)]])  # rows: lattice vectors
    extent = size * px
    reach = int(np.ceil(extent * 1.5 / spacing))
    ij = np.stack(np.meshgrid(np.arange(-reach, reach + 1), np.arange(-reach, reach + 1),
                              indexing="ij"), -1).reshape(-1, 2)
    centre = extent / 2 + rng.uniform(-0.5, 0.5, 2) * spacing
    sites = centre + ij @ basis
    margin = 0.06 * extent  # columns that drift in and out of view are simulated too
    keep = np.all((sites > -margin) & (sites < extent + margin), axis=1)
    sites, ij = sites[keep], ij[keep]
    sub = ((ij[:, 0] + ij[:, 1]) % 2).astype(int)  # checkerboard: A and B columns
    amp = np.where(sub == 0, 1.0, 0.55)

    # the real strain: a dilatation bump growing linearly over the series
    bump_c = extent * rng.uniform(0.3, 0.7, 2)
    width = extent / 6
    rel = sites - bump_c
    shape = rel * np.exp(0.5 - (rel**2).sum(1, keepdims=True) / (2 * width**2)) / width
    growth = np.linspace(0.0, 1.0, t_n)
    strain_disp = float(strain) * growth[:, None, None] * shape[None]  # (T, N, 2)
    true_pos = sites[None] + strain_disp

    # the distortion components
    drift_fn = _drift_function(rng, float(drift_start), float(drift_end), settle)
    jit = _line_jitter(rng, t_n, size, (jitter_rms / 3.0, jitter_rms), rows_c)
    fly_amp = float(flyback) * np.clip(1.0 + 0.5 * rng.standard_normal(t_n), 0.0, None)
    cols = np.arange(size, dtype=np.float64)
    fly = np.zeros((t_n, size, 2))
    fly[:, :, 1] = -fly_amp[:, None] * np.exp(-cols / fly_w)[None]

    def field_at(t: int, r: np.ndarray, c: np.ndarray) -> np.ndarray:
        """u (pm, (..., 2)) at integer pixels (r, c) of frame t (indices clipped to the frame)."""
        rc, cc = np.clip(r, 0, size - 1), np.clip(c, 0, size - 1)
        tau = t + (r + c / size) / size
        return drift_fn(tau) + jit[t][rc] + fly[t][cc]

    rr, cc = np.meshgrid(np.arange(size), np.arange(size), indexing="ij")
    half = int(np.ceil(4 * sigma / px)) + 1
    offs = np.arange(-half, half + 1)
    frames = np.empty((t_n, size, size), np.float32)
    grid_field = np.empty((t_n, size, size, 2))
    field_atoms = np.empty_like(true_pos)
    for t in range(t_n):
        grid_field[t] = field_at(t, rr, cc)
        # where each column appears: solve p = x + u(p) by fixed-point iteration (u is smooth
        # on the scale of a pixel except for the jitter, which the window covers)
        p = true_pos[t] / px
        for _ in range(3):
            pr, pc = np.round(p).astype(int).T
            p = (true_pos[t] + field_at(t, pr, pc)) / px
        r_idx = np.round(p[:, 0]).astype(int)[:, None, None] + offs[None, :, None]
        c_idx = np.round(p[:, 1]).astype(int)[:, None, None] + offs[None, None, :]
        r_b, c_b = np.broadcast_arrays(r_idx, c_idx)
        u = field_at(t, r_b, c_b)  # (N, w, w, 2) pm
        # pixel p shows the specimen at p - u(p)
        dr = r_b * px - u[..., 0] - true_pos[t][:, 0, None, None]
        dc = c_b * px - u[..., 1] - true_pos[t][:, 1, None, None]
        g = np.exp(-(dr**2 + dc**2) / (2 * sigma**2))  # (N, w, w)
        mass = g.sum((1, 2))
        centroid = np.stack([(g * r_b).sum((1, 2)), (g * c_b).sum((1, 2))], -1) / mass[:, None]
        field_atoms[t] = centroid * px - true_pos[t]
        inside = (r_b >= 0) & (r_b < size) & (c_b >= 0) & (c_b < size)
        flat = (r_b * size + c_b)[inside]
        val = (amp[:, None, None] * g)[inside]
        frames[t] = np.bincount(flat, weights=val, minlength=size * size).reshape(size, size)

    # columns whose image lies inside every frame (with the window) are kept in the truth
    visible = np.all((true_pos + field_atoms > (half + 1) * px)
                     & (true_pos + field_atoms < (size - half - 2) * px), axis=(0, 2))
    counts = rng.poisson(dose * frames.astype(np.float64) + background).astype(np.float64)
    counts += read_noise * rng.standard_normal(counts.shape)
    tau_rows = np.arange(t_n)[:, None] + (np.arange(size)[None, :] + 0.5) / size
    drift_rows = drift_fn(tau_rows)  # (T, H, 2)
    tau_all = np.arange(t_n)[:, None, None] + (rr[None] + cc[None] / size) / size
    frame_drift = drift_fn(tau_all).mean(axis=(1, 2))
    return ScanDistortionStack(
        frames=counts.astype(np.float32), pixel_size=px,
        true_positions=true_pos[:, visible], field_at_atoms=field_atoms[:, visible],
        distorted_positions=(true_pos + field_atoms)[:, visible],
        strain=strain_disp[:, visible], lattice_positions=sites[visible],
        sublattice=sub[visible], field=grid_field, drift=drift_rows, frame_drift=frame_drift,
        jitter=jit, flyback=fly, params=params)
