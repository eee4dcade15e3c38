"""Physical HAADF-STEM imaging with dose in e/A^2, for training atom finders that hold at low dose.

:func:`helpers.simulate.graphene_movie` images its atoms with one fixed contrast (``dose`` is
the peak counts of a C atom). This module images any set of atoms the way a scanning
microscope records them, with every knob a random draw when training images are made:

1. **Scattering.** Each atom sends a fraction ``sigma_Z`` (its HAADF cross-section, A^2) of a
   unit-intensity probe to the detector: ``sigma_Z = sigma_C * (Z / 6) ** z_exponent``. The
   noise-free image is the fraction of the incident beam detected at each scan position,
   ``f(x) = sum_atoms sigma_Z * P(x - s_atom) + background``, where the probe intensity ``P``
   (per A^2, integrating to 1) is an anisotropic Gaussian core (FWHM ``probe_fwhm``, long/short
   axis ratio ``astigmatism`` from two-fold astigmatism) plus a broad Gaussian ``tail`` (the
   aperture's rings and source-size spread) holding ``tail_fraction`` of the intensity. A C
   atom under a 1 A probe gives a peak fraction of about 1e-3 at 60-80 kV and a 70-200 mrad
   detector.
2. **Dose.** At a dose ``D`` (e/A^2) a pixel of side ``a`` (A) receives ``D a^2`` electrons, and
   the detector counts ``Poisson(f D a^2)`` of them (:func:`haadf_counts`). At 0.1 A/px and
   2e5 e/A^2 a C atom peaks at about 2 electrons per pixel.
3. **Detector and scan.** The recorded value is ``gain * (n + pulse-height noise) + offset +
   read noise + scan-line offset`` (:func:`detector_signal`); the scan has a linear drift (the
   sample moves between rows, so the lattice is sheared and stretched: the truth follows) and
   jitter (a random shift of each scan line; noise, not in the truth).

Coordinates are ``(row, col)``: pixel ``k`` is the scan position ``k * pixel_size`` angstrom.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from ._common import check_float, check_int, check_seed, check_shape, disc_labels

__all__ = ["HAADFConditions", "HAADFFrames", "haadf_fraction", "haadf_counts",
           "detector_signal", "random_haadf_conditions", "haadf_image", "graphene_haadf_frames",
           "IDEAL_DETECTOR"]

#: Detector settings of an ideal electron counter (used by :func:`haadf_image` by default).
IDEAL_DETECTOR = dict(gain=1.0, gain_spread=0.0, offset=0.0, read_noise=0.0, line_noise=0.0)


@dataclass
class HAADFConditions:
    """How one HAADF image is recorded (see the module docstring).

    Attributes:
        dose: electrons per A^2.
        sigma_c: HAADF cross-section of a C atom, A^2 (about 1e-3 for 70-200 mrad at 60-80 kV).
        z_exponent: ``sigma_Z = sigma_c * (Z / 6) ** z_exponent`` (Si / C = 4.2 at 1.7).
        probe_fwhm: FWHM of the probe core along its short axis, angstrom.
        astigmatism: long / short axis of the core (>= 1); astig_angle: direction of the long
            axis, radians anticlockwise on screen.
        tail_fraction: share of the probe intensity in the broad tail; tail_fwhm: its FWHM, A.
        background: uniform background, fraction of the beam; background_ripple: relative
            amplitude of a smooth random variation of it (a thin contamination layer).
        gain, gain_spread, offset, read_noise, line_noise: detector (see
            :func:`detector_signal`); ``gain`` output units per electron, the others in output
            units except ``gain_spread`` (relative sd of one electron's pulse height).
        drift: ``(2,)`` sample motion per scan row, ``(row, col)`` angstrom.
        jitter: sd of the per-row scan shift along the columns, angstrom.
    """

    dose: float
    sigma_c: float = 1e-3
    z_exponent: float = 1.7
    probe_fwhm: float = 1.0
    astigmatism: float = 1.0
    astig_angle: float = 0.0
    tail_fraction: float = 0.0
    tail_fwhm: float = 3.0
    background: float = 0.0
    background_ripple: float = 0.0
    gain: float = 1.0
    gain_spread: float = 0.0
    offset: float = 0.0
    read_noise: float = 0.0
    line_noise: float = 0.0
    drift: tuple = (0.0, 0.0)
    jitter: float = 0.0

    def as_dict(self) -> dict:
        """Plain floats (``drift`` as a list), e.g. for a JSON record."""
        d = asdict(self)
        d["drift"] = [float(v) for v in self.drift]
        return d


@dataclass
class HAADFFrames:
    """Simulated HAADF frames with their truth.

    Attributes:
        frames: ``(N, H, W)`` float32, recorded signal (detector output units).
        fractions: ``(N, H, W)`` float32, noise-free fraction of the beam detected.
        masks: ``(N, H, W)`` int64, 0 background, 1 C, 2 Si (discs of ``mask_radius`` A).
        atoms: list of ``N`` arrays ``(M, 3)`` ``[row_px, col_px, species]`` (0 C, 1 Si) of
            the atoms whose centres are in the frame, where they appear after the scan drift.
        conditions: list of ``N`` :class:`HAADFConditions`.
        pixel_size: angstrom per pixel.
        params: the generator's arguments.
    """

    frames: np.ndarray
    fractions: np.ndarray
    masks: np.ndarray
    atoms: list
    conditions: list
    pixel_size: float
    params: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.frames)


def _rng(seed):
    if isinstance(seed, np.random.Generator):
        return seed
    return np.random.default_rng(check_seed(seed))


def _check_pixel_size(pixel_size) -> float:
    return check_float(pixel_size, "pixel_size", 0.0, 1.0, low_open=True,
                       hint="angstrom per pixel, e.g. 0.1")


def _check_dose(dose) -> float:
    return check_float(dose, "dose", 0.0, low_open=True,
                       hint="electrons per square angstrom, e.g. 2e5")


def haadf_counts(fraction, dose: float, pixel_size: float, seed=0) -> np.ndarray:
    """Electrons counted per pixel: ``Poisson(fraction * dose * pixel_size ** 2)``.

    Args:
        fraction: ``(..., H, W)`` noise-free fraction of the incident beam reaching the
            detector at each scan position, in ``[0, 1]``.
        dose: electrons per A^2.
        pixel_size: scan step, angstrom (each position receives ``dose * pixel_size ** 2``
            electrons).
        seed: an integer or a ``numpy.random.Generator``.

    Returns:
        float32 array of the shape of ``fraction``: counts (whole numbers).
    """
    f = np.asarray(fraction, dtype=np.float64)
    if f.ndim < 2:
        raise ValueError(f"fraction must be an image (H, W) or a stack (..., H, W), got shape "
                         f"{f.shape}")
    if not np.isfinite(f).all():
        raise ValueError("fraction contains NaN or inf: pass a finite noise-free image")
    if f.min() < 0 or f.max() > 1:
        raise ValueError(f"fraction must lie in [0, 1] (a fraction of the incident beam), got "
                         f"{f.min():.3g}..{f.max():.3g}; divide an image in counts by the "
                         "electrons per pixel first")
    dose = _check_dose(dose)
    pixel_size = _check_pixel_size(pixel_size)
    return _rng(seed).poisson(f * (dose * pixel_size**2)).astype(np.float32)


def detector_signal(counts, gain: float = 1.0, gain_spread: float = 0.0, offset: float = 0.0,
                    read_noise: float = 0.0, line_noise: float = 0.0, seed=0) -> np.ndarray:
    """Detector output from counted electrons.

    ``gain * (n + gain_spread * sqrt(n) * e1) + offset + read_noise * e2 + line_noise * e3``
    with ``e1, e2`` standard normal per pixel and ``e3`` per scan row (row-to-row offset
    flicker). With the defaults the output equals the counts.

    Args:
        counts: ``(..., H, W)`` non-negative electron counts (:func:`haadf_counts`).
        gain: output units per electron (> 0). gain_spread: relative sd of one electron's
            pulse height (>= 0). offset, read_noise, line_noise: output units.
        seed: an integer or a ``numpy.random.Generator``.

    Returns:
        float32 array of the shape of ``counts``.
    """
    n = np.asarray(counts, dtype=np.float64)
    if n.ndim < 2 or not np.isfinite(n).all() or (n < 0).any():
        raise ValueError("counts must be a finite, non-negative image (H, W) or stack "
                         "(..., H, W) of electron counts (from haadf_counts)")
    gain = check_float(gain, "gain", 0.0, low_open=True, hint="output units per electron")
    gain_spread = check_float(gain_spread, "gain_spread", 0.0)
    offset = check_float(offset, "offset")
    read_noise = check_float(read_noise, "read_noise", 0.0)
    line_noise = check_float(line_noise, "line_noise", 0.0)
    rng = _rng(seed)
    out = n.copy()
    if gain_spread > 0:
        out += gain_spread * np.sqrt(n) * rng.standard_normal(n.shape)
    out = gain * out + offset
    if read_noise > 0:
        out += read_noise * rng.standard_normal(n.shape)
    if line_noise > 0:
        out += line_noise * rng.standard_normal(n.shape[:-1] + (1,))
    return out.astype(np.float32)


def _probe_kernel(cond: HAADFConditions, pixel_size: float) -> np.ndarray:
    """Probe intensity per A^2 on a pixel grid, ``(2R + 1, 2R + 1)``, centred."""
    to_sd = 1.0 / (2.0 * np.sqrt(2.0 * np.log(2.0)))
    s_short = cond.probe_fwhm * to_sd
    s_long = s_short * cond.astigmatism
    s_tail = cond.tail_fwhm * to_sd
    radius = int(np.ceil(4.0 * max(s_long, s_tail if cond.tail_fraction > 0 else 0.0)
                         / pixel_size)) + 1
    ax = np.arange(-radius, radius + 1) * pixel_size
    rr, cc = np.meshgrid(ax, ax, indexing="ij")
    # long axis at astig_angle anticlockwise on screen: direction (row, col) = (-sin, cos)
    u = -rr * np.sin(cond.astig_angle) + cc * np.cos(cond.astig_angle)
    v = rr * np.cos(cond.astig_angle) + cc * np.sin(cond.astig_angle)
    core = np.exp(-0.5 * ((u / s_long) ** 2 + (v / s_short) ** 2)) / (2 * np.pi * s_long * s_short)
    kernel = (1.0 - cond.tail_fraction) * core
    if cond.tail_fraction > 0:
        tail = np.exp(-0.5 * (rr**2 + cc**2) / s_tail**2) / (2 * np.pi * s_tail**2)
        kernel = kernel + cond.tail_fraction * tail
    return kernel


def _check_conditions(cond) -> HAADFConditions:
    if not isinstance(cond, HAADFConditions):
        raise ValueError(f"conditions must be a HAADFConditions, got {type(cond).__name__}; "
                         "build one with HAADFConditions(dose=...) or random_haadf_conditions")
    _check_dose(cond.dose)
    check_float(cond.sigma_c, "sigma_c", 0.0, 1.0, low_open=True, hint="A^2, about 1e-3")
    check_float(cond.z_exponent, "z_exponent", 0.0, 3.0)
    check_float(cond.probe_fwhm, "probe_fwhm", 0.0, 5.0, low_open=True, hint="angstrom")
    check_float(cond.astigmatism, "astigmatism", 1.0, 5.0, hint="long / short axis, >= 1")
    check_float(cond.astig_angle, "astig_angle")
    check_float(cond.tail_fraction, "tail_fraction", 0.0, 1.0)
    check_float(cond.tail_fwhm, "tail_fwhm", 0.0, 20.0, low_open=True, hint="angstrom")
    check_float(cond.background, "background", 0.0, 1.0, hint="fraction of the beam")
    check_float(cond.background_ripple, "background_ripple", 0.0, 1.0)
    check_float(cond.jitter, "jitter", 0.0, 2.0, hint="angstrom")
    drift = np.asarray(cond.drift, dtype=np.float64)
    if drift.shape != (2,) or not np.isfinite(drift).all():
        raise ValueError(f"drift must be (row, col) angstrom per scan row, got {cond.drift!r}")
    return cond


def haadf_fraction(positions, species, shape, pixel_size: float, conditions: HAADFConditions,
                   col_shift=None, ripple=None) -> np.ndarray:
    """Noise-free HAADF image: fraction of the incident beam detected at each scan position.

    Args:
        positions: ``(N, 2)`` atom positions ``(row, col)`` in angstrom, in the image frame
            (pixel ``k`` at ``k * pixel_size``); atoms outside the frame add their tails.
        species: ``(N,)`` 0 for C, 1 for Si (``Z = 6, 14``).
        shape: ``(H, W)`` pixels. pixel_size: angstrom per pixel.
        conditions: :class:`HAADFConditions` (its probe, cross-section and background are used).
        col_shift: optional ``(H,)`` shift of each scan row along the columns, pixels.
        ripple: optional ``(H, W)`` smooth field of mean 0 multiplying ``background_ripple``.

    Returns:
        ``(H, W)`` float64 in ``[0, 1]``.
    """
    cond = _check_conditions(conditions)
    h, w = check_shape(shape, "shape", 4)
    pixel_size = _check_pixel_size(pixel_size)
    pos = np.asarray(positions, dtype=np.float64).reshape(-1, 2)
    sp = np.asarray(species).reshape(-1)
    if len(sp) != len(pos):
        raise ValueError(f"positions hold {len(pos)} atoms but species {len(sp)}")
    if not np.isfinite(pos).all():
        raise ValueError("positions contain NaN or inf")
    if len(sp) and not np.isin(sp, (0, 1)).all():
        raise ValueError("species must be 0 (C) or 1 (Si)")
    kernel = _probe_kernel(cond, pixel_size)
    pad = kernel.shape[0] // 2 + 2
    # bilinear splat of the cross-sections on a padded grid, then convolution with the probe
    hp, wp = h + 2 * pad, w + 2 * pad
    rc = pos / pixel_size + pad
    keep = (rc[:, 0] >= 0) & (rc[:, 0] < hp - 1) & (rc[:, 1] >= 0) & (rc[:, 1] < wp - 1)
    z = np.where(sp[keep] == 1, 14.0, 6.0)
    rc, sigma = rc[keep], cond.sigma_c * (z / 6.0) ** cond.z_exponent
    r0, c0 = np.floor(rc[:, 0]).astype(np.int64), np.floor(rc[:, 1]).astype(np.int64)
    fr, fc = rc[:, 0] - r0, rc[:, 1] - c0
    grid = np.zeros((hp, wp))
    for dr, dc, wgt in ((0, 0, (1 - fr) * (1 - fc)), (1, 0, fr * (1 - fc)),
                        (0, 1, (1 - fr) * fc), (1, 1, fr * fc)):
        np.add.at(grid, (r0 + dr, c0 + dc), sigma * wgt)
    from scipy.signal import fftconvolve

    image = fftconvolve(grid, kernel, mode="same")
    if col_shift is not None:
        shift = np.asarray(col_shift, dtype=np.float64).reshape(-1)
        if shift.shape != (h,):
            raise ValueError(f"col_shift must have one value per row ({h}), got {shift.shape}")
        cols = np.arange(wp, dtype=np.float64)
        for r in range(h):  # row r sees the sample displaced by +shift: sample at c - shift
            image[r + pad] = np.interp(cols - shift[r], cols, image[r + pad])
    image = image[pad:pad + h, pad:pad + w]
    bg = np.full((h, w), cond.background)
    if ripple is not None and cond.background_ripple > 0:
        bg = bg * (1.0 + cond.background_ripple * np.asarray(ripple, dtype=np.float64))
    return np.clip(image + np.maximum(bg, 0.0), 0.0, 1.0)


def random_haadf_conditions(seed=0, dose_range=(1e4, 1e7), probe_fwhm_range=(0.6, 1.6),
                            sigma_c_range=(2e-4, 5e-3), z_exponent_range=(1.4, 2.0),
                            ideal_detector: float = 0.3) -> HAADFConditions:
    """Imaging conditions drawn at random over the ranges microscopes record.

    Dose and ``sigma_c`` are log-uniform; the probe core FWHM uniform in ``probe_fwhm_range``
    (A) with astigmatism 1-1.4, a tail of 0-35 % of the intensity with FWHM 1.5-4 A; a uniform
    background of 0-30 % of a C atom's peak fraction with 0-50 % smooth ripple; drift up to
    about 0.004 A per row and jitter up to 0.06 A. With probability ``ideal_detector`` the
    detector is an ideal counter; otherwise gain log-uniform 0.3-50 output units per
    electron, pulse-height spread 0-0.6, offset 0-30 electrons' worth, read noise 0-0.5 and
    line noise 0-0.3 electrons' worth (times the gain).

    Args:
        seed: an integer or a ``numpy.random.Generator``.

    Returns:
        :class:`HAADFConditions`.
    """
    rng = _rng(seed)

    def span(rng_range, name, log=False):
        lo, hi = (float(v) for v in rng_range)
        if not (np.isfinite(lo) and np.isfinite(hi) and 0 < lo <= hi):
            raise ValueError(f"{name} must be (low, high) with 0 < low <= high, got {rng_range!r}")
        if log:
            return float(np.exp(rng.uniform(np.log(lo), np.log(hi))))
        return float(rng.uniform(lo, hi))

    ideal_detector = check_float(ideal_detector, "ideal_detector", 0.0, 1.0,
                                 hint="probability of an ideal electron counter")
    dose = span(dose_range, "dose_range", log=True)
    sigma_c = span(sigma_c_range, "sigma_c_range", log=True)
    z_exp = span(z_exponent_range, "z_exponent_range")
    fwhm = span(probe_fwhm_range, "probe_fwhm_range")
    peak_c = sigma_c * 4 * np.log(2) / (np.pi * fwhm**2)  # peak fraction of a C atom
    cond = HAADFConditions(
        dose=dose, sigma_c=sigma_c, z_exponent=z_exp, probe_fwhm=fwhm,
        astigmatism=float(rng.uniform(1.0, 1.4)), astig_angle=float(rng.uniform(0, np.pi)),
        tail_fraction=float(rng.uniform(0.0, 0.35)), tail_fwhm=float(rng.uniform(1.5, 4.0)),
        background=float(peak_c * rng.uniform(0.0, 0.3)),
        background_ripple=float(rng.uniform(0.0, 0.5)),
        drift=tuple(float(v) for v in rng.normal(0.0, 0.002, 2)),
        jitter=float(rng.uniform(0.0, 0.06)),
    )
    if rng.random() >= ideal_detector:
        gain = float(np.exp(rng.uniform(np.log(0.3), np.log(50.0))))
        cond.gain = gain
        cond.gain_spread = float(rng.uniform(0.0, 0.6))
        cond.offset = gain * float(rng.uniform(0.0, 30.0))
        cond.read_noise = gain * float(rng.uniform(0.0, 0.5))
        cond.line_noise = gain * float(rng.uniform(0.0, 0.3))
    return cond


def _ripple(shape, rng) -> np.ndarray:
    """A smooth random field of mean 0 and sd 1 (correlation length ~ a tenth of the frame)."""
    from scipy import ndimage

    field = ndimage.gaussian_filter(rng.standard_normal(shape), max(shape) / 10.0, mode="wrap")
    return (field - field.mean()) / max(field.std(), 1e-12)


def haadf_image(positions, species, shape, pixel_size: float, conditions: HAADFConditions,
                seed=0):
    """Record one HAADF image of atoms under ``conditions``: scan drift and jitter, the probe,
    Poisson counting at ``conditions.dose`` and the detector.

    Args:
        positions: ``(N, 2)`` atom positions ``(row, col)`` in angstrom in the sample frame;
            at the first scan row the sample frame and the image frame coincide.
        species: ``(N,)`` 0 C, 1 Si. shape: ``(H, W)`` pixels. pixel_size: angstrom per pixel.
        conditions: :class:`HAADFConditions`.
        seed: an integer or a ``numpy.random.Generator``.

    Returns:
        ``(signal, fraction, image_positions)``: ``(H, W)`` float32 recorded signal,
        ``(H, W)`` float32 noise-free fraction, and ``(N, 2)`` float64 positions in pixels
        where the atoms appear once the drift has sheared the scan.
    """
    cond = _check_conditions(conditions)
    h, w = check_shape(shape, "shape", 4)
    pixel_size = _check_pixel_size(pixel_size)
    rng = _rng(seed)
    pos = np.asarray(positions, dtype=np.float64).reshape(-1, 2)
    # the sample moves by `drift` per row: row r images sample row r * (a + drift_r) and
    # sample col c * a + r * drift_c, so an atom at (s_r, s_c) shows at the pixel below
    vr, vc = (float(v) for v in cond.drift)
    row = pos[:, 0] / (pixel_size + vr)
    col = (pos[:, 1] - row * vc) / pixel_size
    image_px = np.column_stack([row, col])
    jit = rng.normal(0.0, cond.jitter / pixel_size, h) if cond.jitter > 0 else None
    ripple = _ripple((h, w), rng) if cond.background_ripple > 0 else None
    frac = haadf_fraction(image_px * pixel_size, species, (h, w), pixel_size, cond,
                          col_shift=jit, ripple=ripple)
    counts = haadf_counts(frac, cond.dose, pixel_size, seed=rng)
    signal = detector_signal(counts, cond.gain, cond.gain_spread, cond.offset, cond.read_noise,
                             cond.line_noise, seed=rng)
    return signal, frac.astype(np.float32), image_px


def graphene_haadf_frames(n_frames: int = 16, size=128, pixel_size: float = 0.1, seed: int = 0,
                          dose_range=(1e4, 1e7), mask_radius: float = 0.5,
                          si_fraction_range=(0.005, 0.05), extra_vacancies: int = 4,
                          **condition_ranges) -> HAADFFrames:
    """Training frames: graphene from :func:`graphene_movie`, each imaged under random
    conditions (:func:`random_haadf_conditions`).

    Each frame is a fresh sample (1 or 2 grains, random Si fraction in ``si_fraction_range``,
    0-1 holes, beam damage of 0-20 exposure units) with up to ``extra_vacancies`` single
    or double vacancies punched at random, recorded at a random dose in ``dose_range``
    (e/A^2, log-uniform) with random probe, detector, drift and jitter.

    Args:
        n_frames: number of frames ``N``. size: ``n`` or ``(H, W)`` pixels.
        pixel_size: angstrom per pixel (0.1 for the abTEM benchmark).
        seed: random seed; the same seed gives the same frames.
        dose_range: ``(low, high)`` e/A^2.
        mask_radius: radius of each atom's disc in ``masks``, angstrom.
        si_fraction_range: ``(low, high)`` fraction of crystalline sites that are Si.
        extra_vacancies: at most this many single or double vacancies added per frame.
        **condition_ranges: passed to :func:`random_haadf_conditions` (``probe_fwhm_range``,
            ``sigma_c_range``, ``z_exponent_range``, ``ideal_detector``).

    Returns:
        :class:`HAADFFrames`.
    """
    from scipy.spatial import cKDTree

    from .graphene import graphene_movie

    n_frames = check_int(n_frames, "n_frames", 1)
    h, w = check_shape(size, "size", 16)
    pixel_size = _check_pixel_size(pixel_size)
    seed = check_seed(seed)
    mask_radius = check_float(mask_radius, "mask_radius", 0.0, 1.0, low_open=True,
                              hint="angstrom")
    extra_vacancies = check_int(extra_vacancies, "extra_vacancies", 0)
    lo_si, hi_si = (float(v) for v in si_fraction_range)
    if not 0 <= lo_si <= hi_si <= 0.2:
        raise ValueError(f"si_fraction_range must be (low, high) within [0, 0.2], got "
                         f"{si_fraction_range!r}")
    rng = np.random.default_rng(seed)
    margin = 6.0  # A of sample around the frame, so edge atoms have their neighbours' tails
    struct_px = 0.25  # the structure generator's pixel size; only its atoms are used
    view = (np.array([h, w]) * pixel_size + 2 * margin) / struct_px
    frames = np.empty((n_frames, h, w), dtype=np.float32)
    fracs = np.empty((n_frames, h, w), dtype=np.float32)
    masks = np.empty((n_frames, h, w), dtype=np.int64)
    atoms_out, conds = [], []
    for t in range(n_frames):
        exposure = float(rng.uniform(0.0, 20.0))
        movie = graphene_movie(
            n_frames=2, size=(int(np.ceil(view[0])), int(np.ceil(view[1]))),
            pixel_size=struct_px, seed=int(rng.integers(2**31)), n_grains=int(rng.integers(1, 3)),
            si_fraction=float(rng.uniform(lo_si, hi_si)), n_holes=int(rng.integers(0, 2)),
            exposure=exposure, drift=0.0, jitter=0.0)
        a = movie.atoms[1]
        pos = a[:, :2] * struct_px - margin  # angstrom in this frame
        species = a[:, 2].astype(np.int64)
        keep = np.ones(len(pos), dtype=bool)
        if len(pos) > 2 and extra_vacancies:
            tree = cKDTree(pos)
            inner = np.flatnonzero((pos[:, 0] > 0) & (pos[:, 0] < h * pixel_size)
                                   & (pos[:, 1] > 0) & (pos[:, 1] < w * pixel_size))
            for _ in range(int(rng.integers(0, extra_vacancies + 1))):
                if not len(inner):
                    break
                i = int(rng.choice(inner))
                keep[i] = False
                if rng.random() < 0.4:  # a double vacancy: a bonded neighbour goes too
                    nb = [j for j in tree.query_ball_point(pos[i], 1.75) if j != i]
                    if nb:
                        keep[int(rng.choice(nb))] = False
        pos, species = pos[keep], species[keep]
        cond = random_haadf_conditions(rng, dose_range=dose_range, **condition_ranges)
        signal, frac, px = haadf_image(pos, species, (h, w), pixel_size, cond, seed=rng)
        inside = ((px[:, 0] >= -0.5) & (px[:, 0] < h - 0.5)
                  & (px[:, 1] >= -0.5) & (px[:, 1] < w - 0.5))
        atoms_out.append(np.column_stack([px[inside], species[inside].astype(np.float64)]))
        lab = species + 1
        draw = np.argsort(lab, kind="stable")  # Si discs drawn last, on top
        masks[t] = disc_labels((h, w), px[draw, 0], px[draw, 1], lab[draw],
                               mask_radius / pixel_size)
        frames[t], fracs[t] = signal, frac
        conds.append(cond)
    params = dict(n_frames=n_frames, size=(h, w), pixel_size=pixel_size, seed=seed,
                  dose_range=tuple(float(v) for v in dose_range), mask_radius=mask_radius,
                  si_fraction_range=(lo_si, hi_si), extra_vacancies=extra_vacancies,
                  **condition_ranges)
    return HAADFFrames(frames=frames, fractions=fracs, masks=masks, atoms=atoms_out,
                       conditions=conds, pixel_size=pixel_size, params=params)
