"""Measured contact-KPFM (cKPFM) loops as DIVIDE inputs.

The data set ``ckpfm_loops`` (GPim's test data, a 10 x 10 grid on a BiFeO3 film) holds, for
every site, the response at each write voltage and each read voltage: ``Nd_mat`` (and its
amplitude ``Nd_mat_amp``) shaped ``(x, y, field, write, read)``, with the voltages
``bias_vec_w`` and ``bias_vec_r``. At each site the response is close to linear in the read
voltage and crosses zero at the local contact potential difference; :func:`ckpfm_mechanisms`
turns that crossing into one target per site and pairs it with two mechanisms, the local
amplitude image and the position.
"""

from __future__ import annotations

import numpy as np

from ..simulate.mechanisms import MechanismData, site_windows

__all__ = ["ckpfm_mechanisms"]


def _array(arrays, key: str) -> np.ndarray:
    if key not in arrays:
        raise ValueError(f"the cKPFM arrays have no {key!r}; load them with "
                         "helpers.data.load('ckpfm_loops', source='original')")
    return np.asarray(arrays[key])


def ckpfm_mechanisms(arrays, half: int = 1, field: int = 0) -> MechanismData:
    """DIVIDE inputs and targets from cKPFM loops.

    Target ``y`` (volts), per site: the read voltage where the response crosses zero, from
    one least-squares line through the response against the read voltage over all write
    voltages (the write-averaged contact potential difference). Sites whose crossing falls
    outside the read-voltage range (a flat response) are dropped; ``index`` keeps the grid
    position of the others.

    Mechanisms: **patch**, the ``(2 half + 1)`` square window (edges repeated) of the
    amplitude image (``Nd_mat_amp``, else ``|Nd_mat|``, averaged over all voltages: how
    strongly the site responds, not where its response crosses zero), and **position**
    ``(row, col)`` scaled to ``[0, 1)``.

    Args:
        arrays: mapping (e.g. the :class:`~helpers.data.Dataset` of ``ckpfm_loops``) with
            ``Nd_mat`` ``(X, Y, F, W, R)`` (real, or complex: its real part is used),
            ``bias_vec_r`` ``(R,)`` or ``(W, R)`` read voltages, optionally ``Nd_mat_amp``.
        half: window half-width (sites), >= 1.
        field: index along the ``F`` axis.

    Returns:
        :class:`~helpers.simulate.mechanisms.MechanismData` without ground truth
        (``contributions`` empty, ``labels`` zero, ``y_clean = y``).
    """
    resp = _array(arrays, "Nd_mat")
    if resp.ndim != 5:
        raise ValueError(f"Nd_mat must be (x, y, field, write, read), got shape {resp.shape}")
    if not 0 <= int(field) < resp.shape[2]:
        raise ValueError(f"field must be in [0, {resp.shape[2]}), got {field}")
    rows, cols = resp.shape[:2]
    if int(half) < 1 or 2 * int(half) + 1 > min(rows, cols):
        raise ValueError(f"half must be >= 1 and the window fit in the {rows} x {cols} grid, "
                         f"got {half}")
    r = np.real(resp[:, :, int(field)]).astype(np.float64)  # (X, Y, W, R)
    v = np.asarray(_array(arrays, "bias_vec_r"), dtype=np.float64)
    if v.ndim not in (1, 2) or v.shape[-1] != r.shape[-1] or np.ptp(v) == 0:
        raise ValueError(f"bias_vec_r must hold {r.shape[-1]} distinct read voltages, (read,) "
                         f"or (write, read); got shape {v.shape}")
    v = np.broadcast_to(v, r.shape[2:])
    dv = v - v.mean()
    slope = (r * dv).sum((-2, -1)) / (dv**2).sum()
    with np.errstate(divide="ignore", invalid="ignore"):
        crossing = v.mean() - r.mean((-2, -1)) / slope  # (X, Y) volts
    keep = np.flatnonzero(np.isfinite(crossing) & (crossing >= v.min())
                          & (crossing <= v.max()))
    amp = (np.abs(_array(arrays, "Nd_mat_amp")[:, :, int(field)]) if "Nd_mat_amp" in arrays
           else np.abs(resp[:, :, int(field)])).mean((-2, -1)).astype(np.float32)
    rr, cc = np.mgrid[0:rows, 0:cols]
    y = crossing.ravel().astype(np.float32)
    full = MechanismData(
        patches=site_windows(amp, int(half), mode="edge"),
        coords=np.stack([rr.ravel() / rows, cc.ravel() / cols], axis=1).astype(np.float32),
        labels=np.zeros(rows * cols, dtype=np.int64), y=y, y_clean=y, contributions={},
        interaction="unknown", noise_std=float("nan"), grid_shape=(rows, cols),
        category_values=np.zeros(0),
    )
    return full.subset(keep)
