"""HAADF images of Mo(1-x)Re(x)S2 monolayers whose metal chains distort with the local and the
global Re content: the simulator of the 2H to 1T' transition studied by local crystallography.

The structure, projected along c: metal columns (Mo or Re) on a triangular lattice of constant
``a`` (3.16 Angstrom) and S2 columns on the second sublattice of the honeycomb, at
``(a1 + a2) / 3``. In the distorted (1T'-like) structure the metal rows along one lattice
direction (the *chain* direction, one of three, drawn per image) pair up: row ``n`` moves by
``(-1)^n u_i e`` with ``e`` the unit vector perpendicular to the chains, so neighbouring rows
approach in pairs and the period doubles. The S2 columns stay where they are.

The amplitude model, per metal atom ``i`` (picometres)::

    u_i = local_coefficient * f_i + global_coefficient * x + eta_k + N(0, amplitude_noise^2)

``f_i`` is the local chemical drive: a distance-weighted Re fraction of the metal sites around
atom ``i``, ``f_i = sum_j w_ij Re_j / sum_j w_ij`` with ``w_ij = exp(-r_ij / l)`` (default,
``kernel_shape="exponential"``) or ``exp(-r_ij^2 / (2 l^2))`` (``"gaussian"``), ``r_ij`` the
distance between the sites, ``l = kernel_length`` lattice constants (the atom itself has
weight 1; sites beyond :func:`kernel_reach` are left out). The chemical influence fades with
distance: no count over whole neighbour shells reproduces it, so a regression on shell
counts is misspecified, as it would be on real data. ``x`` is the Re fraction of the metal
sites in the frame (the global, electronic drive: doping moves the Fermi level for every
atom alike). ``eta_k ~ N(0, image_noise^2)`` is one draw per image, shared by all its atoms:
what makes real images differ besides their composition (strain, substrate, dose), so the
atoms of one image are not independent evidence about ``global_coefficient``. Re sits where a
smooth random field (correlation length ``correlation_length`` lattice constants) plus white
noise is highest, so Re clusters and ``f`` spreads widely inside each image: ``f`` and ``x``
are not collinear. An atom is *1T'-like* when ``u_i`` exceeds half the amplitude of pure ReS2
(``f = x = 1``, ``eta = 0``).

Image formation (HAADF, Z contrast): a Gaussian probe (``probe_sigma``) per column with peak
``(Z / 42)^1.7`` per atom (Mo 1, Re 2.68, S2 0.39) times ``1 + 0.05 N(0, 1)``, on a constant
background, scan drift (a slow-axis scale error, a shear and a slow wave along the fast axis,
drawn per image) and scan-line noise (each line shifted at random along the fast axis), then
Poisson counts with ``dose`` counts at a Mo peak. Every column also
moves by a random static ``jitter``. The lattice is turned by a random angle and shifted by a
random sub-cell offset, so no column sits on a pixel centre.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

from ._common import Series, check_float, check_int, check_seed, check_shape, gaussian_splat

__all__ = [
    "AlloyLatticeSeries",
    "kernel_fractions",
    "kernel_reach",
    "alloy_lattice_series",
    "SPECIES_NAMES",
    "MOS2_LATTICE_CONSTANT",
    "metal_shell_offsets",
]

#: species labels of :class:`AlloyLatticeSeries` (``species`` holds the index)
SPECIES_NAMES = ("Mo", "Re", "S2")
#: the in-plane lattice constant of MoS2, Angstrom
MOS2_LATTICE_CONSTANT = 3.16
# HAADF peak per column relative to Mo, (Z / 42)^1.7 summed over the column's atoms
_PEAK = {0: 1.0, 1: (75 / 42) ** 1.7, 2: 2 * (16 / 42) ** 1.7}


def metal_shell_offsets(n_shells: int) -> list[np.ndarray]:
    """Lattice-index offsets ``(di, dj)`` of the first ``n_shells`` neighbour shells of a
    triangular lattice with basis ``a1``, ``a2`` at 60 degrees.

    ``|di a1 + dj a2|^2 = a^2 (di^2 + dj^2 + di dj)``: shell 1 (6 sites) at ``a``, shell 2 (6)
    at ``sqrt(3) a``, shell 3 (6) at ``2 a``, shell 4 (12) at ``sqrt(7) a``, ...

    Returns:
        A list of ``n_shells`` int arrays, each ``(m_k, 2)``.
    """
    n_shells = check_int(n_shells, "n_shells", 1, "number of neighbour shells")
    reach = n_shells + 1
    di, dj = np.meshgrid(np.arange(-reach, reach + 1), np.arange(-reach, reach + 1),
                         indexing="ij")
    norm = (di**2 + dj**2 + di * dj).ravel()
    off = np.c_[di.ravel(), dj.ravel()]
    levels = np.unique(norm[norm > 0])[:n_shells]
    return [off[norm == lv] for lv in levels]


@dataclass
class AlloyLatticeSeries(Series):
    """Simulated HAADF images of Mo(1-x)Re(x)S2 at several Re concentrations, with the truth.

    Columns of all images are concatenated; ``image_index`` says which image each belongs to.
    Image coordinates are ``(row, col)`` pixels; displacements are picometres along
    ``(row, col)`` of the undrifted image.

    Attributes:
        images: ``(n_images, H, W)`` float32 counts.
        concentration: ``(n_images,)`` Re fraction of the metal sites in each frame (``x``).
        positions: ``(n, 2)`` float64 true column centres in the image (drift included).
        image_index: ``(n,)`` int64.
        species: ``(n,)`` int8, index into :data:`SPECIES_NAMES` (0 Mo, 1 Re, 2 S2).
        lattice_index: ``(n, 2)`` int64 ``(i, j)`` of the column's cell (for scoring).
        amplitude: ``(n,)`` float64 the model amplitude ``u_i`` in pm (NaN for S2).
        displacement: ``(n, 2)`` float64 the distortion ``(-1)^n u_i e`` in pm (row, col);
            zero for S2; the random ``jitter`` is not included.
        local_fraction: ``(n,)`` float64 the true, kernel-weighted ``f_i`` (NaN for S2).
        phase: ``(n,)`` int8, 1 where ``u_i`` exceeds half the ReS2 amplitude (1T'-like), 0
            otherwise (2H-like) and for S2.
        chain_axis: ``(n_images,)`` int64, 0: chains along ``a1``, 1: along ``a2``, 2: along
            ``a2 - a1``.
        lattice_angle: ``(n_images,)`` radians, direction of ``a1`` (anticlockwise on screen).
        local_coefficient, global_coefficient: pm, the model's coefficients.
        amplitude_noise: pm, the model's per-atom noise.
        image_noise: pm, the standard deviation of the per-image term ``eta_k``.
        image_offset: ``(n_images,)`` pm, the drawn ``eta_k`` of each image.
        kernel_length: lattice constants, the length ``l`` of ``f_i``'s weights.
        kernel_shape: ``"exponential"`` or ``"gaussian"``, the shape of those weights.
        phase_threshold: half the amplitude of pure ReS2 (``f = x = 1``), pm: the 2H / 1T'
            boundary of ``phase``.
        pixel_size: Angstrom per pixel.
        lattice_constant: Angstrom.
        params: the arguments of the call that made it.
    """

    # per image (len() counts them)
    _length_of = "images"
    images: np.ndarray
    concentration: np.ndarray
    chain_axis: np.ndarray
    lattice_angle: np.ndarray
    # the imaging scale
    pixel_size: float
    lattice_constant: float
    # per column, all images concatenated: where and what
    positions: np.ndarray
    image_index: np.ndarray
    species: np.ndarray
    lattice_index: np.ndarray
    # per column: the distortion and its drive
    amplitude: np.ndarray
    displacement: np.ndarray
    local_fraction: np.ndarray
    phase: np.ndarray
    # the amplitude model
    local_coefficient: float
    global_coefficient: float
    amplitude_noise: float
    image_noise: float
    image_offset: np.ndarray
    kernel_length: float
    kernel_shape: str
    phase_threshold: float
    params: dict = field(default_factory=dict)


def _unit(angle):
    """Unit vector(s) at ``angle`` radians anticlockwise on screen, in (row, col)."""
    return np.stack([-np.sin(angle), np.cos(angle)], axis=-1)


def _re_sites(xy, inside, x, corr_px, rng) -> np.ndarray:
    """Boolean Re mask over metal sites at ``xy`` (n, 2) Angstrom: a smooth Gaussian field of
    correlation length ``corr_px`` (Angstrom) plus white noise, thresholded so that a fraction
    ``x`` of the sites with ``inside`` is Re."""
    step = 0.5  # Angstrom per cell of the field's grid
    lo = xy.min(0) - 4 * corr_px
    shape = tuple(np.ceil((xy.max(0) + 4 * corr_px - lo) / step).astype(int) + 1)
    smooth = ndimage.gaussian_filter(rng.standard_normal(shape), corr_px / step)
    value = ndimage.map_coordinates(smooth, ((xy - lo) / step).T, order=1)
    value = value / value[inside].std() + 0.35 * rng.standard_normal(len(xy))
    n_re = int(round(x * inside.sum()))
    if n_re == 0:
        return np.zeros(len(xy), bool)
    cut = np.sort(value[inside])[::-1][n_re - 1]
    return value >= cut


#: the kernel shapes of :func:`kernel_fractions` and their reach in units of the length
KERNEL_REACH = {"gaussian": 3.0, "exponential": 5.0}


def kernel_reach(length: float, shape: str = "gaussian") -> float:
    """Distance beyond which :func:`kernel_fractions` leaves sites out, lattice constants:
    ``3 l`` for the Gaussian (weight 0.011), ``5 l`` for the exponential (weight 0.007)."""
    if shape not in KERNEL_REACH:
        raise ValueError(f"shape must be one of {tuple(KERNEL_REACH)}, got {shape!r}")
    return KERNEL_REACH[shape] * float(length)


def _kernel(length: float, shape: str) -> np.ndarray:
    """Weights ``exp(-r^2 / (2 l^2))`` (Gaussian) or ``exp(-r / l)`` (exponential) on the
    (di, dj) offsets of a triangular lattice within :func:`kernel_reach` (``r`` in lattice
    constants), as a ``(2R + 1, 2R + 1)`` array centred on ``(R, R)``."""
    cut = kernel_reach(length, shape)
    reach = int(np.ceil(cut)) + 1
    di, dj = np.meshgrid(np.arange(-reach, reach + 1), np.arange(-reach, reach + 1),
                         indexing="ij")
    r2 = (di**2 + dj**2 + di * dj).astype(float)
    w = (np.exp(-r2 / (2.0 * length**2)) if shape == "gaussian"
         else np.exp(-np.sqrt(r2) / length))
    return np.where(r2 <= cut**2, w, 0.0)


def kernel_fractions(re_grid, length: float, shape: str = "gaussian") -> np.ndarray:
    """Distance-weighted fraction of B sites around every site of a triangular-lattice grid.

    Args:
        re_grid: ``(I, J)`` bool, the site ``(i, j)`` (``a1``, ``a2`` at 60 degrees) holds B.
        length: kernel length ``l``, lattice constants (> 0).
        shape: ``"gaussian"``, ``w = exp(-r^2 / (2 l^2))``, or ``"exponential"``,
            ``w = exp(-r / l)``.

    Returns:
        ``(I, J)`` float64 ``sum_j w_ij B_j / sum_j w_ij`` over the sites within
        :func:`kernel_reach` (sites beyond the grid count as absent).
    """
    grid = np.asarray(re_grid, dtype=float)
    if grid.ndim != 2:
        raise ValueError(f"re_grid must be an (I, J) grid of sites, got shape {grid.shape}")
    length = check_float(length, "length", 0.0, low_open=True, hint="lattice constants")
    k = _kernel(length, shape)
    total = ndimage.correlate(grid, k, mode="constant", cval=0.0)
    count = ndimage.correlate(np.ones_like(grid), k, mode="constant", cval=0.0)
    return total / count


def alloy_lattice_series(
    concentrations=(0.08, 0.16, 0.25, 0.33, 0.42, 0.5, 0.59, 0.67, 0.76, 0.84), size=320, *,
    pixel_size: float = 0.16, local_coefficient: float = 21.7, global_coefficient: float = 13.9,
    amplitude_noise: float = 2.3, image_noise: float = 0.5, kernel_length: float = 0.63,
    kernel_shape: str = "exponential", correlation_length: float = 1.4,
    jitter: float = 1.5, probe_sigma: float = 0.45, dose: float = 40.0, background: float = 0.08,
    drift: float = 1.0, scan_noise: float = 3.0, seed: int = 0,
) -> AlloyLatticeSeries:
    """Simulate HAADF images of Mo(1-x)Re(x)S2 monolayers with a composition-driven metal-chain
    distortion (see the module docstring for the model).

    Args:
        concentrations: Re fractions ``x``, one image each, each in [0, 1].
        size: image side ``n`` or ``(H, W)``, pixels (>= 64).
        pixel_size: Angstrom per pixel (0.05 to 0.5).
        local_coefficient: pm of amplitude per unit local Re fraction.
        global_coefficient: pm of amplitude per unit global Re fraction.
        amplitude_noise: standard deviation of the per-atom amplitude noise, pm (>= 0).
        image_noise: standard deviation of the per-image amplitude term ``eta_k``, pm (>= 0).
        kernel_length: length of the local fraction's weights, lattice constants (0.3 to 4).
        kernel_shape: ``"exponential"`` (weights ``exp(-r / l)``) or ``"gaussian"``
            (``exp(-r^2 / (2 l^2))``).
        correlation_length: of the Re clustering field, lattice constants (> 0).
        jitter: random static displacement of every column, pm per coordinate (>= 0).
        probe_sigma: Gaussian probe standard deviation, Angstrom (> 0).
        dose: counts at the peak of a Mo column (> 0).
        background: constant background relative to a Mo peak (>= 0).
        drift: scale of the scan drift (0: none; 1: slow-axis scale error up to 2 %, shear up
            to 0.03, a wave of 0.5 to 1.5 px along the fast axis).
        scan_noise: standard deviation of a random shift of each scan line along the fast
            axis (columns), pm (>= 0).
        seed: random seed.

    Returns:
        :class:`AlloyLatticeSeries`.
    """
    params = dict(concentrations=tuple(concentrations) if np.ndim(concentrations) else
                  concentrations, size=size, pixel_size=pixel_size,
                  local_coefficient=local_coefficient, global_coefficient=global_coefficient,
                  amplitude_noise=amplitude_noise, image_noise=image_noise,
                  kernel_length=kernel_length, kernel_shape=kernel_shape,
                  correlation_length=correlation_length, jitter=jitter,
                  probe_sigma=probe_sigma, dose=dose, background=background, drift=drift,
                  scan_noise=scan_noise, seed=seed)
    xs = np.asarray(concentrations, dtype=np.float64).ravel()
    if xs.size == 0 or not np.isfinite(xs).all() or (xs < 0).any() or (xs > 1).any():
        raise ValueError(f"concentrations must be a non-empty list of Re fractions in [0, 1], "
                         f"got {concentrations!r}")
    h, w = check_shape(size, "size", minimum=64)
    px = check_float(pixel_size, "pixel_size", 0.05, 0.5, hint="Angstrom per pixel")
    beta_l = check_float(local_coefficient, "local_coefficient", hint="pm per unit fraction")
    beta_g = check_float(global_coefficient, "global_coefficient", hint="pm per unit x")
    noise_u = check_float(amplitude_noise, "amplitude_noise", 0.0, hint="pm")
    noise_img = check_float(image_noise, "image_noise", 0.0, hint="pm")
    ell = check_float(kernel_length, "kernel_length", 0.3, 4.0, hint="lattice constants")
    if kernel_shape not in KERNEL_REACH:
        raise ValueError(f"kernel_shape must be one of {tuple(KERNEL_REACH)}, got "
                         f"{kernel_shape!r}")
    corr = check_float(correlation_length, "correlation_length", 0.0, low_open=True,
                       hint="lattice constants")
    jitter = check_float(jitter, "jitter", 0.0, hint="pm")
    probe = check_float(probe_sigma, "probe_sigma", 0.0, low_open=True, hint="Angstrom")
    dose = check_float(dose, "dose", 0.0, low_open=True, hint="counts at a Mo peak")
    background = check_float(background, "background", 0.0)
    drift = check_float(drift, "drift", 0.0, 5.0)
    scan_noise = check_float(scan_noise, "scan_noise", 0.0, hint="pm per scan line")
    rngs = [np.random.default_rng(s) for s in
            np.random.SeedSequence(check_seed(seed)).spawn(len(xs))]

    a = MOS2_LATTICE_CONSTANT
    reach = int(np.ceil(np.hypot(h, w) * px / a)) + 6
    ii, jj = np.meshgrid(np.arange(-reach, reach + 1), np.arange(-reach, reach + 1),
                         indexing="ij")
    idx = np.c_[ii.ravel(), jj.ravel()]
    threshold = 0.5 * (beta_l + beta_g)
    out = {k: [] for k in ("pos", "img", "spec", "lidx", "amp", "disp", "frac", "phase")}
    images, x_frame, chains, angles, etas = [], [], [], [], []
    for k, (x, rng) in enumerate(zip(xs, rngs)):
        theta = rng.uniform(0.0, 2 * np.pi / 6)  # the lattice repeats every 60 degrees
        a1, a2 = a * _unit(theta), a * _unit(theta + np.pi / 3)
        origin = rng.uniform(0.0, 1.0, 2) @ np.stack([a1, a2])
        centre = np.array([h, w]) / 2.0
        metal = origin + idx[:, :1] * a1 + idx[:, 1:] * a2  # Angstrom, (row, col)
        sulfur = metal + (a1 + a2) / 3.0
        in_frame = np.all((metal / px + centre >= 0) & (metal / px + centre < [h, w]), axis=1)
        re = _re_sites(metal, in_frame, x, corr * a, rng)
        x_real = float(re[in_frame].mean()) if in_frame.any() else 0.0
        frac = kernel_fractions(re.reshape(ii.shape), ell, kernel_shape).ravel()
        eta = noise_img * rng.standard_normal()  # the image's own term, shared by its atoms
        u = beta_l * frac + beta_g * x_real + eta + noise_u * rng.standard_normal(len(idx))
        chain = int(rng.integers(3))
        chain_vec = (a1, a2, a2 - a1)[chain]
        row_n = (idx[:, 1], idx[:, 0], idx[:, 0] + idx[:, 1])[chain]
        e = np.array([-chain_vec[1], chain_vec[0]]) / np.linalg.norm(chain_vec)
        e = -e if e[0] < 0 or (e[0] == 0 and e[1] < 0) else e  # a fixed orientation
        disp = np.where(row_n % 2 == 0, 1.0, -1.0)[:, None] * u[:, None] * e  # pm
        sites = np.concatenate([metal + disp / 100.0, sulfur])
        sites = sites + jitter / 100.0 * rng.standard_normal(sites.shape)
        spec = np.r_[re.astype(np.int8), np.full(len(sulfur), 2, np.int8)]
        pix = sites / px + centre
        # scan drift: slow-axis (row) scale error, fast-axis shift growing with the row
        scale = 1.0 + drift * rng.uniform(-0.02, 0.02)
        shear = drift * rng.uniform(-0.03, 0.03)
        wave, phase0 = drift * rng.uniform(0.5, 1.5), rng.uniform(0, 2 * np.pi)
        pix[:, 0] = centre[0] + (pix[:, 0] - centre[0]) * scale

        def shift(r, shear=shear, wave=wave, phase0=phase0, r0=centre[0]):
            return shear * (r - r0) + wave * np.sin(2 * np.pi * r / (1.7 * h) + phase0)

        lines = scan_noise / 100.0 / px * rng.standard_normal(h)  # per scan line, px
        peaks = np.vectorize(_PEAK.get)(spec) * (1.0 + 0.05 * rng.standard_normal(len(spec)))
        clean = gaussian_splat((h, w), pix[:, 0], pix[:, 1], peaks, probe / px,
                               col_shift=shift(np.arange(h, dtype=float)) + lines)
        images.append(rng.poisson(dose * (clean + background)).astype(np.float32))
        # a column's apparent centre: the drift at its row plus the line shifts averaged
        # over the rows its peak covers (weights of the probe profile)
        rows_of = np.arange(h, dtype=float)
        wts = np.exp(-(rows_of[None, :] - pix[:, :1]) ** 2 / (2 * (probe / px) ** 2))
        line_mean = (wts @ lines) / np.maximum(wts.sum(1), 1e-12)
        seen = np.c_[pix[:, 0], pix[:, 1] + shift(pix[:, 0]) + line_mean]
        inside = np.all((seen >= -0.5) & (seen < np.array([h, w]) - 0.5), axis=1)
        n_m = len(metal)
        out["pos"].append(seen[inside])
        out["img"].append(np.full(inside.sum(), k, np.int64))
        out["spec"].append(spec[inside])
        out["lidx"].append(np.concatenate([idx, idx])[inside])
        amp = np.r_[u, np.full(n_m, np.nan)]
        out["amp"].append(amp[inside])
        out["disp"].append(np.concatenate([disp, np.zeros((n_m, 2))])[inside])
        out["frac"].append(np.r_[frac, np.full(n_m, np.nan)][inside])
        out["phase"].append((np.nan_to_num(amp, nan=-np.inf) > threshold)[inside]
                            .astype(np.int8))
        x_frame.append(x_real)
        etas.append(eta)
        chains.append(chain)
        angles.append(theta)
    cat = {k: np.concatenate(v) for k, v in out.items()}
    return AlloyLatticeSeries(
        images=np.stack(images), concentration=np.array(x_frame), positions=cat["pos"],
        image_index=cat["img"], species=cat["spec"], lattice_index=cat["lidx"],
        amplitude=cat["amp"], displacement=cat["disp"], local_fraction=cat["frac"],
        phase=cat["phase"], chain_axis=np.array(chains, np.int64),
        lattice_angle=np.array(angles), local_coefficient=beta_l,
        global_coefficient=beta_g, amplitude_noise=noise_u, image_noise=noise_img,
        image_offset=np.array(etas), kernel_length=ell, kernel_shape=kernel_shape,
        phase_threshold=threshold,
        pixel_size=px, lattice_constant=a, params=params)
