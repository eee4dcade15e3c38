"""An atomic-resolution EELS spectrum image of a LaAlO3/SrTiO3 interface: the ground truth of
notebook 10 (unmixing in energy, then Gaussian-process reconstruction of the component maps).

Model (the numbers are ours and illustrative, chosen to resemble a core-loss spectrum image
recorded at a few hundred counts per channel):

1. **Geometry.** A perovskite ABO3 viewed along [001], lattice parameter ``a`` = 3.905 A,
   sampled at ``pixel_size`` A per pixel. The lattice is turned by a random angle (a few
   degrees) and shifted by a random sub-cell offset, so no column sits on the sampling grid.
   In projection the A columns sit at the cell corners, the B-O columns at the centres and
   the pure O columns at the edge midpoints. The interface runs across the image, parallel to
   the lattice rows, at a random, non-integer depth in the middle third of the image: LaAlO3
   above, SrTiO3 below. The LaAlO3 fraction across it is an error-function profile of width
   ``intermixing`` (A) — the cation intermixing of real interfaces.
2. **Element maps** (per pixel, before thickness): each column is a Gaussian of standard
   deviation ``column_sigma`` (A; probe size plus the delocalisation of inelastic scattering)
   on a constant floor ``floor`` (signal between the columns). La sits on A columns times the
   LaAlO3 fraction; Ti on B columns times the SrTiO3 fraction; O on B-O and O columns
   everywhere. The Ti is a valence mix: a fraction ``v`` of it is **Ti3+** (the electrons of
   the interface's conducting layer; the weak component), the rest Ti4+, with
   ``v = ti3_fraction * exp(-depth / ti3_decay) * (1 + ti3_lateral * sin(2 pi s / L + phi))``
   (clipped to [0, 1]): it decays into SrTiO3 from the interface and is modulated along it
   (``s`` the position along the interface, random wavelength ``L`` and phase ``phi``: oxygen
   vacancies gather unevenly). Ti3+ thus shares the Ti columns but not their envelope.
3. **Thickness.** Every map (and the background) is multiplied by a relative thickness that
   grows linearly across the field of view (a wedge, ``wedge`` of relative change, in a random
   direction): a smooth structure shared by all components.
4. **Spectra** (counts per channel per pixel at unit map value): a power-law background
   ``B (E / E0)^-r``; each edge a smoothed step at its onset decaying as ``(E / E_edge)^-r_e``
   with white lines (Gaussian peaks) for Ti L2,3 (456 eV), La M5,4 (832 eV) and the O K
   fine structure (532 eV); Ti3+ has its L2,3 white lines 1.2 eV lower and without the
   crystal-field splitting of Ti4+. The Ti3+ lines are jittered per ``seed`` (a common
   energy shift uniform in +-0.3 eV around 457.0 and 462.0 eV, and a width uniform in
   0.8-1.2 eV around 1.0 eV; recorded in ``geometry``), so that no fixed reference
   fingerprint matches them exactly. Expected counts ``sum_c map_c(r) spectrum_c(E)``; the
   recorded counts are Poisson draws (``dose`` scales all counts).

Ground truth: the noise-free maps (``abundances``, with thickness), the component spectra,
the noise-free spectrum image (``clean``), the column positions and the interface depth.
Everything is deterministic by ``seed``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.special import erf

from ._common import check_float, check_int, check_seed, check_shape

__all__ = ["EELS_COMPONENTS", "EELSSpectrumImage", "eels_abundances", "eels_spectrum_image"]

#: the simulator's components, in the order of ``abundances`` and ``component_spectra``
EELS_COMPONENTS = ("background", "Ti4+", "Ti3+", "O", "La")
LATTICE_A = 3.905  # A, SrTiO3


@dataclass
class EELSSpectrumImage:
    """A simulated spectrum image with its ground truth.

    Attributes:
        spectra: ``(H, W, E)`` float32 recorded counts (Poisson).
        clean: ``(H, W, E)`` float64 expected counts (noise-free).
        energy: ``(E,)`` float64 energy loss of each channel (eV).
        abundances: ``(C, H, W)`` float64 noise-free component maps (thickness included),
            components in the order of ``names``.
        component_spectra: ``(C, E)`` float64 counts per channel at unit map value.
        names: the ``C`` component names (:data:`EELS_COMPONENTS`).
        columns: ``(N, 3)`` float64 ``[row_px, col_px, kind]`` of the columns in and near the
            field of view, kind 0 = A, 1 = B-O, 2 = O.
        interface_row: the interface depth at the image's central column (px, non-integer).
        pixel_size: A per pixel.
        params: the generator's arguments.
        geometry: the random lattice turn (rad), offset (fraction of a cell), interface
            depth (px), wedge direction (rad) and Ti3+ modulation wavelength (px) and phase
            (rad) that :func:`eels_abundances` re-renders; and the Ti3+ white-line shift
            ``ti3_shift`` (eV) and width ``ti3_width`` (eV) of this seed.
    """

    spectra: np.ndarray
    clean: np.ndarray
    energy: np.ndarray
    abundances: np.ndarray
    component_spectra: np.ndarray
    names: tuple[str, ...]
    columns: np.ndarray
    interface_row: float
    pixel_size: float
    params: dict = field(default_factory=dict)
    geometry: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return self.spectra.shape[0] * self.spectra.shape[1]

    @property
    def shape(self) -> tuple[int, int]:
        """``(H, W)`` in pixels."""
        return self.spectra.shape[:2]


def _geometry(rng: np.random.Generator, shape: tuple[int, int], pixel_size: float) -> dict:
    """The random lattice turn and offset, the interface depth and the wedge direction."""
    h, _w = shape
    return {
        "angle": float(rng.uniform(-4.0, 4.0) * np.pi / 180),  # radians
        "offset": rng.uniform(0.0, 1.0, size=2),  # fraction of a cell
        "interface": float(rng.uniform(h / 3, 2 * h / 3)),  # px at the central column
        "wedge_angle": float(rng.uniform(0.0, 2 * np.pi)),
        # the Ti3+ modulation along the interface: wavelength (px) and phase (rad)
        "ti3_wavelength": float(rng.uniform(0.3, 0.6) * _w),
        "ti3_phase": float(rng.uniform(0.0, 2 * np.pi)),
    }


def _columns(geom: dict, shape: tuple[int, int], cell: float) -> np.ndarray:
    """``(N, 3)`` [row, col, kind] of every column within two cells of the field of view."""
    h, w = shape
    n = int(np.ceil(max(h, w) / cell)) + 4
    i, j = np.meshgrid(np.arange(-n, n + 1), np.arange(-n, n + 1), indexing="ij")
    i, j = i.ravel().astype(float), j.ravel().astype(float)
    kinds = [(0.0, 0.0, 0), (0.5, 0.5, 1), (0.5, 0.0, 2), (0.0, 0.5, 2)]
    c, s = np.cos(geom["angle"]), np.sin(geom["angle"])
    centre = np.array([h / 2, w / 2])
    out = []
    for di, dj, kind in kinds:
        u = (i + di + geom["offset"][0]) * cell  # along the rows of the lattice (depth)
        v = (j + dj + geom["offset"][1]) * cell
        rows = centre[0] + c * u - s * v
        cols = centre[1] + s * u + c * v
        keep = ((rows > -2 * cell) & (rows < h + 2 * cell)
                & (cols > -2 * cell) & (cols < w + 2 * cell))
        out.append(np.stack([rows[keep], cols[keep], np.full(keep.sum(), kind)], 1))
    return np.concatenate(out)


def _depth(rows: np.ndarray, cols: np.ndarray, geom: dict, shape: tuple[int, int]) -> np.ndarray:
    """Signed distance (px) below the interface (positive in SrTiO3), measured along the
    lattice's row direction so that the interface is parallel to the atomic planes."""
    h, w = shape
    c, s = np.cos(geom["angle"]), np.sin(geom["angle"])
    # the lattice's depth axis is (c, s) in (row, col); the interface passes through
    # (interface, w / 2) in the image
    return c * (rows - geom["interface"]) + s * (cols - w / 2)


def _maps_at(rows: np.ndarray, cols: np.ndarray, geom: dict, columns: np.ndarray,
             shape: tuple[int, int], p: dict) -> np.ndarray:
    """``(C, len(rows), len(cols))`` noise-free maps on the product grid ``rows x cols``."""
    px = p["pixel_size"]
    rr, cc = np.meshgrid(rows, cols, indexing="ij")
    sigma = p["column_sigma"] / px
    depth = _depth(rr, cc, geom, shape)  # px, > 0 in SrTiO3
    lao = 0.5 * (1.0 - erf(depth / (np.sqrt(2) * p["intermixing"] / px)))
    sto = 1.0 - lao

    def column_sum(kind_mask: np.ndarray, weight_of=None) -> np.ndarray:
        total = np.zeros_like(rr)
        for r0, c0, _ in columns[kind_mask]:
            g = np.exp(-((rr - r0) ** 2 + (cc - c0) ** 2) / (2 * sigma**2))
            if weight_of is not None:
                g = g * weight_of(r0, c0)
            total += g
        return total

    a_cols = column_sum(columns[:, 2] == 0)
    b_cols = column_sum(columns[:, 2] == 1)
    o_cols = column_sum(columns[:, 2] >= 1)  # the B-O columns hold O too
    floor = p["floor"]
    la = (floor + a_cols) * lao
    # Ti valence: a fraction v(r) of the Ti is Ti3+ (the electrons of the interface's
    # conducting layer), the rest Ti4+. v decays into SrTiO3 from the interface and is
    # modulated along it (oxygen vacancies gather unevenly), so the Ti3+ map shares the Ti
    # columns but not their envelope; each column takes v at its centre (it keeps its shape)
    decay = p["ti3_decay"] / px

    def valence(r0, c0):
        d = _depth(np.asarray(r0, float), np.asarray(c0, float), geom, shape)
        c, s = np.cos(geom["angle"]), np.sin(geom["angle"])
        along = -s * (np.asarray(r0, float) - geom["interface"]) + c * (np.asarray(c0, float)
                                                                       - shape[1] / 2)
        lateral = 1.0 + p["ti3_lateral"] * np.sin(2 * np.pi * along / geom["ti3_wavelength"]
                                                  + geom["ti3_phase"])
        return np.clip(p["ti3_fraction"] * np.exp(-np.clip(d, 0, None) / decay) * lateral,
                       0.0, 1.0)

    v_floor = valence(rr, cc)
    ti_total = (floor + b_cols) * sto
    ti3 = (floor * v_floor + column_sum(columns[:, 2] == 1, valence)) * sto
    ti4 = ti_total - ti3
    oxygen = floor + 0.5 * o_cols
    # thickness wedge in a random direction, shared by every component
    t = 1.0 + p["wedge"] * ((rr / shape[0] - 0.5) * np.cos(geom["wedge_angle"])
                            + (cc / shape[1] - 0.5) * np.sin(geom["wedge_angle"]))
    maps = np.stack([np.ones_like(rr), ti4, ti3, oxygen, la])
    return maps * t


def _edge(energy: np.ndarray, onset: float, width: float, exponent: float) -> np.ndarray:
    """A smoothed step at ``onset`` (eV) decaying as ``(E / onset)^-exponent`` above it."""
    step = 0.5 * (1.0 + erf((energy - onset) / (np.sqrt(2) * width)))
    return step * (np.maximum(energy, onset) / onset) ** -exponent


def _peaks(energy: np.ndarray, centres, heights, width: float) -> np.ndarray:
    return sum(h * np.exp(-0.5 * ((energy - c) / width) ** 2) for c, h in zip(centres, heights))


def _spectra(energy: np.ndarray, p: dict, ti3_shift: float = 0.0,
             ti3_width: float = 1.0) -> np.ndarray:
    """``(C, E)`` counts per channel at unit map value (before ``dose``); the Ti3+ white
    lines sit ``ti3_shift`` eV from 457.0 and 462.0 eV with standard deviation ``ti3_width``
    (eV)."""
    e0 = energy[0]
    background = 600.0 * (energy / e0) ** -p["background_exponent"]
    ti4 = 150.0 * _edge(energy, 456.0, 1.0, 2.0) + _peaks(
        energy, [457.2, 459.4, 462.6, 464.8], [350, 450, 330, 380], 0.7)
    ti3 = 150.0 * _edge(energy, 454.8, 1.0, 2.0) + _peaks(
        energy, [457.0 + ti3_shift, 462.0 + ti3_shift], [700, 550], ti3_width)
    oxygen = 100.0 * _edge(energy, 530.0, 1.5, 1.5) + _peaks(
        energy, [531.5, 534.0, 539.5, 545.0], [60, 50, 80, 40], 1.5)
    la = 60.0 * _edge(energy, 830.0, 1.0, 1.5) + _peaks(energy, [832.5, 849.5], [300, 400], 1.2)
    return np.stack([background, ti4, ti3, oxygen, la])


def eels_abundances(sim: EELSSpectrumImage, upsample: int = 1) -> np.ndarray:
    """The noise-free maps of ``sim`` on a grid ``upsample`` times finer.

    The fine grid's pixel ``(i, j)`` sits at ``(i / upsample, j / upsample)`` in the original
    pixel coordinates, so pixel ``(upsample * r, upsample * c)`` is the original ``(r, c)``.

    Returns:
        ``(C, upsample * H, upsample * W)`` float64, the components of ``sim.names``.
    """
    up = check_int(upsample, "upsample", 1)
    h, w = sim.shape
    geom = dict(sim.geometry, offset=np.asarray(sim.geometry["offset"]))
    rows = np.arange(up * h) / up
    cols = np.arange(up * w) / up
    return _maps_at(rows, cols, geom, sim.columns, (h, w), sim.params)


def eels_spectrum_image(
    size=64, n_channels: int = 500, energy_range: tuple[float, float] = (420.0, 920.0),
    pixel_size: float = 0.4, column_sigma: float = 0.7, floor: float = 0.25,
    intermixing: float = 2.5, ti3_fraction: float = 0.5, ti3_decay: float = 6.0,
    ti3_lateral: float = 0.6, wedge: float = 0.3, background_exponent: float = 3.0,
    dose: float = 1.0, seed: int = 0,
) -> EELSSpectrumImage:
    """Simulate an atomic-resolution EELS spectrum image of a LaAlO3/SrTiO3 interface.

    Args:
        size: image size in pixels, ``n`` or ``(H, W)`` (each >= 16).
        n_channels: energy channels spread evenly over ``energy_range`` (eV, low < high,
            the range must hold the Ti L (456 eV) and O K (532 eV) edges).
        pixel_size: A per pixel.
        column_sigma: standard deviation (A) of a column's signal.
        floor: map value between the columns (relative to a column's peak).
        intermixing: width (A) of the interface's error-function profile.
        ti3_fraction: Ti3+ fraction of the Ti at the interface (0-1; the weak component).
        ti3_decay: decay length (A) of the Ti3+ fraction into SrTiO3.
        ti3_lateral: relative amplitude (0-1) of the Ti3+ modulation along the interface.
        wedge: relative thickness change across the field of view.
        background_exponent: ``r`` of the power-law background ``(E / E0)^-r``.
        dose: scales every count (1 is a few hundred counts per channel near the Ti L edge).
        seed: the random geometry and the Poisson noise.

    Returns:
        :class:`EELSSpectrumImage` (recorded counts and ground truth).
    """
    seed = check_seed(seed)
    shape = check_shape(size, "size", 16)
    n_channels = check_int(n_channels, "n_channels", 16)
    lo, hi = (check_float(x, "energy_range", 1.0) for x in energy_range)
    if not (lo < 456.0 and hi > 560.0):
        raise ValueError(f"energy_range must span the Ti L and O K edges (below 456 to above "
                         f"560 eV), got {energy_range}; e.g. energy_range=(420, 920)")
    p = {
        "size": list(shape), "n_channels": n_channels, "energy_range": [lo, hi],
        "pixel_size": check_float(pixel_size, "pixel_size", 0.0, low_open=True),
        "column_sigma": check_float(column_sigma, "column_sigma", 0.0, low_open=True),
        "floor": check_float(floor, "floor", 0.0),
        "intermixing": check_float(intermixing, "intermixing", 0.0, low_open=True),
        "ti3_fraction": check_float(ti3_fraction, "ti3_fraction", 0.0, 1.0),
        "ti3_decay": check_float(ti3_decay, "ti3_decay", 0.0, low_open=True),
        "ti3_lateral": check_float(ti3_lateral, "ti3_lateral", 0.0, 1.0),
        "wedge": check_float(wedge, "wedge", 0.0, 1.5),
        "background_exponent": check_float(background_exponent, "background_exponent", 0.0),
        "dose": check_float(dose, "dose", 0.0, low_open=True),
        "seed": seed,
    }
    rng = np.random.default_rng(seed)
    cell = LATTICE_A / p["pixel_size"]
    geom = _geometry(rng, shape, p["pixel_size"])
    columns = _columns(geom, shape, cell)
    maps = _maps_at(np.arange(shape[0], dtype=float), np.arange(shape[1], dtype=float),
                    geom, columns, shape, p)
    energy = np.linspace(lo, hi, n_channels)
    # the Ti3+ line jitter from its own stream, so the geometry and noise draws keep their order
    jitter = np.random.default_rng([seed, 3])
    ti3_shift, ti3_width = float(jitter.uniform(-0.3, 0.3)), float(jitter.uniform(0.8, 1.2))
    spectra = _spectra(energy, p, ti3_shift, ti3_width) * p["dose"]
    spectra = spectra * (hi - lo) / (n_channels - 1)  # per channel
    clean = np.einsum("chw,ce->hwe", maps, spectra)
    counts = rng.poisson(clean).astype(np.float32)
    return EELSSpectrumImage(
        spectra=counts, clean=clean, energy=energy, abundances=maps,
        component_spectra=spectra, names=EELS_COMPONENTS, columns=columns,
        interface_row=geom["interface"], pixel_size=p["pixel_size"], params=p,
        geometry={"angle": geom["angle"], "offset": geom["offset"].tolist(),
                  "interface": geom["interface"], "wedge_angle": geom["wedge_angle"],
                  "ti3_wavelength": geom["ti3_wavelength"], "ti3_phase": geom["ti3_phase"],
                  "ti3_shift": ti3_shift, "ti3_width": ti3_width},
    )
