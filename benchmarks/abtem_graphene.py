"""An independent validation set for atom finding: abTEM HAADF-STEM images of Si-doped graphene.

The suite's atom finder is trained only on the suite's own simulator
(:mod:`helpers.simulate.graphene` imaged by :mod:`helpers.simulate.haadf_imaging`). To check
that it has not learned that simulator's quirks, it is scored on images made by an independent
multislice code, abTEM (PRISM algorithm, Lobato potentials), which is a benchmark dependency
only (``pip install abtem``), never needed at run time or by the tests.

Each image is a periodic, orthogonal graphene sheet of about 25 x 25 angstrom (zigzag or
armchair along the rows) with a few Si substitutions (Si sits 0.9 A out of the plane), single
vacancies and one double vacancy, built with ase. It is scanned at exactly 0.1 A/px with a
60 or 80 kV probe of a realistic aberration-corrected shape (defocus, spherical aberration,
two-fold astigmatism; partial spatial coherence as a Gaussian source of 0.25 A sd), and a
HAADF detector of 70-200 mrad. The noise-free images are stored as the fraction of the incident
beam that reaches the detector, with the true atom positions and species, in
``benchmarks/data/abtem_graphene.npz`` (about 1 MB). :func:`noisy` turns them into counts at
a dose ``D`` (e/A^2): ``Poisson(fraction x D x pixel_area)``.

    python benchmarks/abtem_graphene.py            # builds the file, ~6 min on one core
    python benchmarks/abtem_graphene.py --show     # prints what the stored file holds

The data are never used for training.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

DATA = Path(__file__).resolve().parent / "data" / "abtem_graphene.npz"
PIXEL_SIZE = 0.1  # angstrom per scan pixel

#: One entry per image: sheet repeats (orthogonal cells of 2.46 x 4.26 A), orientation,
#: beam energy (eV), probe semi-angle (mrad), defocus (A), Cs (A), two-fold astigmatism
#: (A, rad), Si fraction, single vacancies, double vacancies, structure seed.
IMAGES = [
    dict(repeats=(10, 6), swap=False, energy=60e3, semiangle=30.0, defocus=0.0, cs=-1.0e4,
         c12=(5.0, 0.3), si=0.03, single=2, double=1, seed=1),
    dict(repeats=(10, 6), swap=True, energy=80e3, semiangle=25.0, defocus=15.0, cs=1.5e4,
         c12=(10.0, 1.1), si=0.03, single=2, double=1, seed=2),
    dict(repeats=(10, 6), swap=False, energy=60e3, semiangle=32.0, defocus=-20.0, cs=-2.0e4,
         c12=(3.0, 2.0), si=0.03, single=3, double=1, seed=3),
]


def build_sheet(repeats, swap, si, single, double, seed):
    """ase Atoms of a periodic graphene sheet with Si and vacancies (Si 0.9 A out of plane)."""
    import abtem
    import ase.build

    rng = np.random.default_rng(seed)
    atoms = ase.build.graphene(a=2.46, size=(1, 1, 1), vacuum=4.0)
    atoms = abtem.orthogonalize_cell(atoms) * (repeats[0], repeats[1], 1)
    if swap:  # armchair instead of zigzag along the first scan axis
        pos = atoms.positions.copy()
        cell = atoms.cell.lengths()
        atoms.positions = pos[:, [1, 0, 2]]
        atoms.set_cell([cell[1], cell[0], cell[2]])
    xy = atoms.positions[:, :2]
    cell = atoms.cell.lengths()[:2]

    def neighbours(i):
        d = xy - xy[i]
        d -= cell * np.round(d / cell)  # periodic
        return np.flatnonzero(np.abs(np.linalg.norm(d, axis=1) - 1.42) < 0.1)

    n = len(atoms)
    removed: set[int] = set()
    order = rng.permutation(n)
    picks = iter(order)
    for _ in range(double):
        i = next(picks)
        j = int(rng.choice(neighbours(i)))
        removed |= {int(i), j}
    for _ in range(single):
        i = next(picks)
        while any(int(k) in removed for k in neighbours(i)) or int(i) in removed:
            i = next(picks)
        removed.add(int(i))
    keep = np.setdiff1d(np.arange(n), sorted(removed))
    atoms = atoms[keep]
    n_si = int(round(si * len(atoms)))
    si_idx = rng.choice(len(atoms), size=n_si, replace=False)
    numbers = atoms.numbers.copy()
    numbers[si_idx] = 14
    atoms.numbers = numbers
    atoms.positions[si_idx, 2] += 0.9
    return atoms


def simulate(spec, interpolation=3):
    """One noise-free HAADF image (fraction of the beam) and its truth ``[row, col, Z]``."""
    import abtem

    atoms = build_sheet(spec["repeats"], spec["swap"], spec["si"], spec["single"],
                        spec["double"], spec["seed"])
    extent = atoms.cell.lengths()[:2]
    # potential grid: fine enough that the antialiased wave reaches past the detector's
    # 200 mrad (max angle = wavelength / (3 sampling)), a multiple of the PRISM interpolation
    energy = spec["energy"]
    wavelength = 12.2643 / np.sqrt(energy * (1 + 0.97845e-6 * energy))  # angstrom
    sampling = wavelength / (3 * 0.215)
    gpts = tuple(int(interpolation * np.ceil(e / sampling / interpolation)) for e in extent)
    potential = abtem.Potential(atoms, gpts=gpts, slice_thickness=2.0,
                                parametrization="lobato", projection="infinite")
    ctf = abtem.CTF(energy=spec["energy"], semiangle_cutoff=spec["semiangle"],
                    defocus=spec["defocus"], Cs=spec["cs"], C12=spec["c12"][0],
                    phi12=spec["c12"][1])
    smatrix = abtem.SMatrix(potential=potential, energy=spec["energy"],
                            semiangle_cutoff=spec["semiangle"], interpolation=interpolation)
    n_scan = tuple(int(np.floor(e / PIXEL_SIZE + 1e-6)) for e in extent)
    scan = abtem.GridScan(start=(0.0, 0.0), end=tuple(n * PIXEL_SIZE for n in n_scan),
                          gpts=n_scan, endpoint=False)
    detector = abtem.AnnularDetector(inner=70, outer=200)
    image = smatrix.scan(scan=scan, detectors=detector, ctf=ctf).compute(progress_bar=False)
    print(f"  potential {gpts} px, {len(atoms)} atoms, PRISM interpolation {interpolation}",
          flush=True)
    image = image.gaussian_filter(0.25)  # partial spatial coherence (source size, A sd)
    frac = np.asarray(image.array, dtype=np.float32)
    if frac.shape != n_scan:
        raise RuntimeError(f"abTEM returned a {frac.shape} scan, expected {n_scan}")
    # truth: scan pixel k sits at k * 0.1 A, so an atom at x A is at pixel x / 0.1; atoms
    # are wrapped into the periodic cell (the image is periodic too)
    xy = np.mod(atoms.positions[:, :2], extent)
    truth = np.column_stack([xy / PIXEL_SIZE, atoms.numbers]).astype(np.float32)
    return frac, truth


def build(path=DATA, images=IMAGES):
    """Simulate every image of ``images`` and write them to ``path`` (npz, atomic)."""
    import abtem

    from helpers._io import atomic_path

    abtem.config.set({"device": "cpu", "fft": "numpy", "scheduler": "synchronous"})
    arrays = {}
    for k, spec in enumerate(images):
        start = time.perf_counter()
        frac, truth = simulate(spec)
        arrays[f"image_{k}"] = frac
        arrays[f"atoms_{k}"] = truth
        print(f"image {k}: {frac.shape} px, {len(truth)} atoms ({int((truth[:, 2] == 14).sum())}"
              f" Si), peak fraction {frac.max():.2e}, {time.perf_counter() - start:.0f} s",
              flush=True)
    arrays["pixel_size"] = np.float64(PIXEL_SIZE)
    arrays["specs"] = np.array([repr(s) for s in images])
    arrays["abtem_version"] = np.array(abtem.__version__)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.savez_compressed(fh, **arrays)
    return path


def load(path=DATA):
    """The stored set: ``(images, atoms, pixel_size)``.

    ``images``: list of ``(H, W)`` float32 fractions of the incident beam; ``atoms``: list of
    ``(N, 3)`` ``[row_px, col_px, species]`` with species 0 = C, 1 = Si (the suite's
    convention); ``pixel_size`` in angstrom.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path} not found: build it with "
                                "`python benchmarks/abtem_graphene.py` (needs `pip install abtem`)")
    with np.load(path) as z:
        n = sum(1 for k in z.files if k.startswith("image_"))
        images = [z[f"image_{k}"] for k in range(n)]
        atoms = []
        for k in range(n):
            a = z[f"atoms_{k}"].astype(np.float64)
            atoms.append(np.column_stack([a[:, :2], (a[:, 2] == 14).astype(np.float64)]))
        return images, atoms, float(z["pixel_size"])


def noisy(fraction, dose, pixel_size=PIXEL_SIZE, seed=0):
    """Detected electrons per pixel at ``dose`` e/A^2: ``Poisson(fraction x dose x area)``."""
    from helpers.simulate import haadf_counts

    return haadf_counts(fraction, dose, pixel_size, seed=seed)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=DATA)
    p.add_argument("--show", action="store_true", help="describe the stored file and exit")
    args = p.parse_args(argv)
    if not args.show:
        build(args.out)
    images, atoms, px = load(args.out)
    for k, (img, a) in enumerate(zip(images, atoms)):
        print(f"image {k}: {img.shape} px at {px} A/px, {len(a)} atoms, {int(a[:, 2].sum())} Si, "
              f"fraction {img.min():.1e}..{img.max():.1e}")
    print(f"{args.out}: {args.out.stat().st_size / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
