"""Synthetic objects with known pose, shape and class: the ground truth the invariant VAEs
are tested and taught on.

- ``rotated_objects``: one asymmetric (1-fold, chiral) object, turned uniformly over the full
  circle, shifted by a few pixels, with a known shape factor (its elongation).
- ``card_glyphs``: four glyph classes like playing-card suits (heart, diamond, club, spade),
  each without rotational symmetry, turned over the full circle, with translation, shear,
  scale jitter and noise set by a difficulty level.

Objects are drawn analytically from signed distance functions (soft 0.5-pixel edges), so a
rotated object is exactly the same shape, not a resampled copy. Pose follows the suite's
convention: ``angle`` radians anticlockwise *as displayed* (``imshow``, origin upper left),
``offset`` ``(d_row, d_col)`` pixels; the object is first sheared and scaled in its own frame,
then turned by ``angle`` about the image centre, then shifted by ``offset``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["RotatedObjects", "GlyphSet", "rotated_objects", "card_glyphs", "GLYPH_NAMES",
           "DIFFICULTY"]

GLYPH_NAMES = ("heart", "diamond", "club", "spade")

#: Difficulty levels of ``card_glyphs``: max shift (pixels), max |shear|, scale jitter
#: (fraction), noise standard deviation (object intensity 1).
DIFFICULTY = {
    0: dict(shift=0.0, shear=0.0, scale=0.0, noise=0.02),
    1: dict(shift=2.0, shear=0.0, scale=0.0, noise=0.05),
    2: dict(shift=2.0, shear=0.15, scale=0.1, noise=0.08),
    3: dict(shift=3.0, shear=0.3, scale=0.2, noise=0.15),
}


@dataclass
class RotatedObjects:
    """Images and their ground truth.

    images: ``(N, H, W)`` float32, object intensity ~1 on a 0 background plus noise.
    angle: ``(N,)`` radians in ``[0, 2 pi)``, anticlockwise as displayed.
    offset: ``(N, 2)`` pixels (row, col) of the object's centre from the image centre.
    shape_factor: ``(N,)`` elongation of the object (1 = reference shape).
    symmetry: rotational symmetry of the object (1: none).
    """

    images: np.ndarray
    angle: np.ndarray
    offset: np.ndarray
    shape_factor: np.ndarray
    symmetry: int = 1


@dataclass
class GlyphSet:
    """Card-suit glyphs and their ground truth.

    images ``(N, H, W)`` float32; labels ``(N,)`` int in ``[0, 4)`` (``class_names``);
    angle ``(N,)`` radians in ``[0, 2 pi)``; offset ``(N, 2)`` pixels (row, col); shear
    ``(N,)`` (dimensionless, x += shear * y in the glyph's frame); scale ``(N,)``;
    difficulty: the level used (see ``DIFFICULTY``).
    """

    images: np.ndarray
    labels: np.ndarray
    angle: np.ndarray
    offset: np.ndarray
    shear: np.ndarray
    scale: np.ndarray
    difficulty: int
    class_names: tuple = field(default=GLYPH_NAMES)
    symmetry: int = 1


# -- signed distance functions, glyph frame: x right, y up, pixels of a 28-pixel image -------
def _disk(x, y, cx, cy, r):
    return np.hypot(x - cx, y - cy) - r


def _ellipse(x, y, cx, cy, a, b):
    return (np.hypot((x - cx) / a, (y - cy) / b) - 1.0) * np.minimum(a, b)


def _polygon(x, y, vertices):
    """Convex polygon, vertices anticlockwise (x, y); exact inside, close enough outside."""
    d = None
    v = np.asarray(vertices, dtype=np.float32)
    for (x0, y0), (x1, y1) in zip(v, np.roll(v, -1, axis=0)):
        ex, ey = x1 - x0, y1 - y0
        norm = np.hypot(ex, ey)
        di = ((x - x0) * ey - (y - y0) * ex) / norm  # outward normal (ey, -ex) for CCW
        d = di if d is None else np.maximum(d, di)
    return d


def _union(*ds):
    out = ds[0]
    for d in ds[1:]:
        out = np.minimum(out, d)
    return out


def _heart(x, y):  # two lobes with a notch on top, a long point below
    return _union(_disk(x, y, -2.7, 2.8, 2.9), _disk(x, y, 2.7, 2.8, 2.9),
                  _polygon(x, y, [(-5.5, 2.0), (0.0, -8.0), (5.5, 2.0)]))


def _diamond(x, y):  # a kite, widest low down: long above, short below
    return _polygon(x, y, [(0.0, 8.5), (-4.6, -1.5), (0.0, -6.0), (4.6, -1.5)])


def _club(x, y):  # three lobes on a wide stem
    return _union(_disk(x, y, 0.0, 4.0, 2.8), _disk(x, y, -3.3, -0.5, 2.8),
                  _disk(x, y, 3.3, -0.5, 2.8),
                  _polygon(x, y, [(0.0, 1.0), (-2.8, -8.0), (2.8, -8.0)]))


def _spade(x, y):  # an upturned heart on a stem
    return _union(_disk(x, y, -2.7, -1.5, 2.8), _disk(x, y, 2.7, -1.5, 2.8),
                  _polygon(x, y, [(-5.4, -0.8), (5.4, -0.8), (0.0, 8.0)]),
                  _polygon(x, y, [(0.0, -2.0), (-2.6, -8.0), (2.6, -8.0)]))


_GLYPHS = (_heart, _diamond, _club, _spade)


def _key(x, y, elongation):
    """The asymmetric test object: a bar with a round head and a side nub (1-fold, chiral)."""
    e = elongation
    return _union(_ellipse(x, y, 0.0, 0.0, 6.5 * e, 2.3),
                  _disk(x, y, -6.5 * e, 0.0, 3.2),
                  _disk(x, y, 3.5 * e, 2.6, 2.0))


def _draw(sdf, size, angle, offset, scale, shear, edge=0.5, chunk=2048, **kwargs):
    """Evaluate ``sdf(x, y, **per_sample_kwargs)`` at every pixel of every pose.

    Pixel ``p`` (row, col from the image centre) reads the glyph frame at
    ``shear^-1 (R(-angle) (p - offset) / scale)`` with y pointing up; glyph units are pixels
    of a 28-pixel image, scaled to ``size``.
    """
    n = len(angle)
    rows = np.arange(size, dtype=np.float32) - (size - 1) / 2
    rr, cc = np.meshgrid(rows, rows, indexing="ij")
    out = np.empty((n, size, size), dtype=np.float32)
    unit = size / 28.0
    for s in range(0, n, chunk):
        sl = slice(s, s + chunk)
        a = angle[sl, None, None].astype(np.float32)
        dr = rr[None] - offset[sl, 0, None, None]
        dc = cc[None] - offset[sl, 1, None, None]
        cos, sin = np.cos(a), np.sin(a)
        col = (cos * dc - sin * dr) / scale[sl, None, None]
        row = (sin * dc + cos * dr) / scale[sl, None, None]
        y = -row / unit
        x = col / unit - shear[sl, None, None] * y
        extra = {k: v[sl, None, None] for k, v in kwargs.items()}
        d = sdf(x, y, **extra) * unit
        out[sl] = 1.0 / (1.0 + np.exp(np.clip(d / edge, -30, 30)))
    return out


def _check(n, size):
    if int(n) < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    if int(size) < 16:
        raise ValueError(f"size must be >= 16 pixels, got {size}")


def rotated_objects(
    n: int = 2000,
    size: int = 28,
    max_shift: float = 2.0,
    elongation: tuple[float, float] = (0.75, 1.25),
    noise: float = 0.05,
    seed: int = 0,
) -> RotatedObjects:
    """``n`` images ``(size, size)`` of one asymmetric object at uniform random angles in
    ``[0, 2 pi)``, shifts uniform in ``[-max_shift, max_shift]`` pixels per axis, elongation
    (the shape factor) uniform in ``elongation``, plus Gaussian noise of std ``noise``."""
    _check(n, size)
    rng = np.random.default_rng(seed)
    angle = rng.uniform(0, 2 * np.pi, n)
    offset = rng.uniform(-max_shift, max_shift, (n, 2)) * (size / 28.0)
    shape = rng.uniform(*elongation, n)
    ones, zeros = np.ones(n), np.zeros(n)
    images = _draw(_key, size, angle, offset, ones, zeros, elongation=shape)
    images += rng.normal(0, noise, images.shape).astype(np.float32)
    return RotatedObjects(images.astype(np.float32), angle, offset, shape)


def card_glyphs(
    n: int = 2000,
    size: int = 28,
    difficulty: int = 1,
    seed: int = 0,
) -> GlyphSet:
    """``n`` card-suit glyphs (balanced classes) at uniform random angles in ``[0, 2 pi)``.

    ``difficulty`` (0-3, see ``DIFFICULTY``) sets the shift, shear, scale jitter and noise.
    """
    _check(n, size)
    if difficulty not in DIFFICULTY:
        raise ValueError(f"difficulty must be one of {sorted(DIFFICULTY)}, got {difficulty!r}")
    p = DIFFICULTY[difficulty]
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.arange(n) % len(_GLYPHS))
    angle = rng.uniform(0, 2 * np.pi, n)
    offset = rng.uniform(-p["shift"], p["shift"], (n, 2)) * (size / 28.0)
    shear = rng.uniform(-p["shear"], p["shear"], n)
    scale = 1.0 + rng.uniform(-p["scale"], p["scale"], n)
    images = np.empty((n, size, size), dtype=np.float32)
    for c, sdf in enumerate(_GLYPHS):
        idx = np.flatnonzero(labels == c)
        images[idx] = _draw(sdf, size, angle[idx], offset[idx], scale[idx], shear[idx])
    images += rng.normal(0, p["noise"], images.shape).astype(np.float32)
    return GlyphSet(images, labels, angle, offset, shear, scale, int(difficulty))
