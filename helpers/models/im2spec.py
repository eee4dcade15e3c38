"""im2spec and spec2im: convolutional encoder-decoders between image patches and spectra.

The architecture family of Kalinin et al., arXiv 2006.01374 ("im2spec"):

- ``Im2Spec``: an image patch ``(p, p)`` -> 2D conv encoder (3 layers, 64 filters, LeakyReLU 0.1,
  batch norm) -> a small latent vector (2 or 10) -> a dense layer -> dilated 1D convolutions ->
  the spectrum (here a hysteresis loop of ``L`` points).
- ``Spec2Im``: the reverse, a spectrum ``(L,)`` -> 1D conv encoder -> latent -> a dense layer ->
  2D convolutions with upsampling -> the patch ``(p, p)``.

Both are deterministic encoder-decoders trained with the mean squared error on standardised
inputs and outputs; the standardisation (one mean and one standard deviation per array, set by the
first ``fit``) lives in module buffers, so a saved model predicts in the caller's units.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ..env import torch_generator
from .base import Estimator, as_float_array, mean_std, not_fitted
from .standardize import Standardize
from .training import History, run_epochs

__all__ = ["Im2Spec", "Spec2Im"]


def _conv_block(conv, channels_in, channels_out, norm, **kw):
    return [conv(channels_in, channels_out, **kw), nn.LeakyReLU(0.1), norm(channels_out)]


def _conv_encoder(conv, norm, n_layers: int, n_filters: int, n_values: int, latent_dim: int):
    """``n_layers`` convolutions (kernel 3, same size) of one input channel -> ``n_filters``,
    flattened (``n_values`` pixels or points per channel) -> a linear map to the latent."""
    enc = []
    for i in range(n_layers):
        enc += _conv_block(conv, 1 if i == 0 else n_filters, n_filters, norm, kernel_size=3,
                           padding=1)
    return nn.Sequential(*enc, nn.Flatten(), nn.Linear(n_filters * n_values, latent_dim))


class _PairNet(nn.Module):
    """Holds the standardisation of inputs (``x_norm``) and targets (``y_norm``), one mean
    and one standard deviation each, saved with the weights; subclasses add ``encoder``."""

    def __init__(self):
        super().__init__()
        self.x_norm = Standardize()
        self.y_norm = Standardize()

    def encode(self, x):
        return self.encoder(x[:, None])


class Im2SpecNet(_PairNet):
    """(N, p, p) standardised patches -> (N, latent) -> (N, L) standardised spectra."""

    def __init__(self, patch_size, n_points, latent_dim, n_filters, n_layers, dilations):
        super().__init__()
        self.encoder = _conv_encoder(nn.Conv2d, nn.BatchNorm2d, n_layers, n_filters,
                                     patch_size**2, latent_dim)
        self.n_filters, self.n_points = n_filters, n_points
        self.fc = nn.Linear(latent_dim, n_filters * n_points)
        dec = []
        for d in dilations:
            dec += _conv_block(nn.Conv1d, n_filters, n_filters, nn.BatchNorm1d,
                               kernel_size=3, dilation=d, padding=d)
        self.decoder = nn.Sequential(nn.LeakyReLU(0.1), *dec,
                                     nn.Conv1d(n_filters, 1, kernel_size=1))

    def decode(self, z):
        h = self.fc(z).view(-1, self.n_filters, self.n_points)
        return self.decoder(h)[:, 0]


class Spec2ImNet(_PairNet):
    """(N, L) standardised spectra -> (N, latent) -> (N, p, p) standardised patches."""

    def __init__(self, patch_size, n_points, latent_dim, n_filters, n_layers, n_upsample):
        super().__init__()
        self.encoder = _conv_encoder(nn.Conv1d, nn.BatchNorm1d, n_layers, n_filters, n_points,
                                     latent_dim)
        # spatial sizes from coarse to the patch size, each step doubling (rounded up)
        sizes = [patch_size]
        for _ in range(n_upsample):
            sizes.insert(0, -(-sizes[0] // 2))
        self.n_filters, self.start = n_filters, sizes[0]
        self.fc = nn.Linear(latent_dim, n_filters * sizes[0] ** 2)
        dec = [nn.LeakyReLU(0.1)]
        for s in sizes[1:]:
            dec.append(nn.Upsample(size=(s, s), mode="bilinear", align_corners=False))
            dec += _conv_block(nn.Conv2d, n_filters, n_filters, nn.BatchNorm2d,
                               kernel_size=3, padding=1)
        self.decoder = nn.Sequential(*dec, nn.Conv2d(n_filters, 1, kernel_size=1))

    def decode(self, z):
        h = self.fc(z).view(-1, self.n_filters, self.start, self.start)
        return self.decoder(h)[:, 0]


class _EncoderDecoder(Estimator):
    """Shared training and inference of ``Im2Spec`` and ``Spec2Im`` (not used directly).

    Subclasses set ``_x_tail``/``_y_tail`` (the per-sample shapes of input and output) and
    ``_make_module()``.
    """

    _x_tail: tuple[int, ...]
    _y_tail: tuple[int, ...]
    _x_name = "X"
    _y_name = "Y"

    def __init__(self, *, seed: int = 0, device: str = "auto", **config):
        for key in ("patch_size", "n_points", "latent_dim", "n_filters", "n_layers"):
            value = config[key]
            if not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"{key} must be a positive integer, got {value!r}")
            config[key] = int(value)
        if config["patch_size"] < 2 or config["n_points"] < 2:
            raise ValueError("patch_size and n_points must be at least 2")
        super().__init__(seed=seed, device=device, **config)
        self._build_module(self._make_module)

    def _make_module(self) -> _PairNet:  # pragma: no cover - abstract
        raise NotImplementedError

    # -- input checks ------------------------------------------------------------------------
    def _check_x(self, X, name=None):
        tail = self._x_tail
        return as_float_array(X, name or self._x_name, ndim=len(tail) + 1, shape_tail=tail)

    def _check_y(self, Y, name=None):
        tail = self._y_tail
        return as_float_array(Y, name or self._y_name, ndim=len(tail) + 1, shape_tail=tail)

    def _check_fitted(self):
        if not self._fitted:
            raise not_fitted(type(self).__name__, "fit(X, Y)")

    # -- training ----------------------------------------------------------------------------
    def fit(
        self, X, Y, epochs: int = 100, batch_size: int = 64, lr: float = 1e-3,
        progress: bool = True, validation: tuple | None = None,
    ) -> History:
        """Train on pairs ``(X[i], Y[i])`` with Adam and the mean squared error.

        The first call sets the standardisation (mean and standard deviation of ``X`` and of
        ``Y``, one scalar each); later calls continue training with it. ``validation`` is an
        optional ``(X_val, Y_val)`` pair scored after every epoch.

        Returns:
            :class:`History`: ``loss``, the mean squared error on the standardised training
            targets per epoch; ``val_loss``, the same on the validation data (if given);
            ``seconds``.

        Raises ``TrainingDivergedError`` (a ``FloatingPointError``) naming the epoch when a
        batch loss is NaN/inf or exceeds 1e3 times the first batch's (at least 1, the loss
        of predicting the mean): the learning rate is too large (see ``DivergenceGuard``).
        """
        X = self._check_x(X)
        Y = self._check_y(Y)
        if len(X) != len(Y):
            raise ValueError(f"X and Y must hold the same number of samples, got {len(X)} "
                             f"and {len(Y)}")
        if len(X) < 2:
            raise ValueError("fit needs at least 2 samples (batch norm needs a batch)")
        if not isinstance(epochs, (int, np.integer)) or epochs < 1:
            raise ValueError(f"epochs must be a positive integer, got {epochs!r}")
        if not isinstance(batch_size, (int, np.integer)) or batch_size < 2:
            raise ValueError(f"batch_size must be an integer >= 2, got {batch_size!r}")
        if not (np.isfinite(lr) and lr > 0):
            raise ValueError(f"lr must be a positive number, got {lr!r}")
        if validation is not None:
            Xv, Yv = self._check_x(validation[0]), self._check_y(validation[1])
            if len(Xv) != len(Yv):
                raise ValueError("validation X and Y must hold the same number of samples")

        m = self.module
        if not self._fitted:
            for norm, arr, name in ((m.x_norm, X, self._x_name), (m.y_norm, Y, self._y_name)):
                norm.set_statistics(*mean_std(arr, name))
        xt = self._to_model(X, m.x_norm)
        yt = self._to_model(Y, m.y_norm)
        opt = torch.optim.Adam(m.parameters(), lr=float(lr))
        gen = torch_generator(self._fit_seed())  # shuffling, on the CPU
        n = len(xt)
        # drop a last batch of one sample (batch norm cannot train on it)
        n_use = n - 1 if n % batch_size == 1 else n

        def epoch_batches(epoch):
            order = torch.randperm(n, generator=gen)[:n_use]
            for start in range(0, n_use, batch_size):
                idx = order[start:start + batch_size]
                yield (xt[idx], yt[idx]), len(idx) / n_use

        def batch_loss(batch):
            xb, yb = batch
            return torch.mean((m.decode(m.encode(xb)) - yb) ** 2), {}

        validate = None
        if validation is not None:
            xv = self._to_model(Xv, m.x_norm, "validation inputs")

            def validate():
                pred = self._predict_model(xv)
                return float(np.mean(((pred - Yv) / float(m.y_norm.std)) ** 2))

        history = run_epochs(module=m, optimizer=opt, epoch_batches=epoch_batches,
                             batch_loss=batch_loss, epochs=int(epochs),
                             desc=type(self).__name__, progress=progress,
                             guard_floor=1.0,  # MSE on standardised targets starts near 1
                             validate=validate)
        self._fitted = True
        return history

    def _to_model(self, arr: np.ndarray, norm: Standardize, name: str = "input"):
        """A checked numpy array, standardised by ``norm``, as a tensor on the device."""
        return norm.checked(torch.from_numpy(arr).to(self.device), name)

    def _batched(self, fn, t, batch_size: int):
        self.module.eval()
        out = []
        with torch.no_grad():
            for start in range(0, len(t), batch_size):
                out.append(fn(t[start:start + batch_size]))
        return torch.cat(out)

    def _predict_model(self, xt, batch_size: int = 1024) -> np.ndarray:
        """Predictions in target units for standardised inputs ``xt`` on the device."""
        m = self.module
        out = self._batched(lambda b: m.decode(m.encode(b)), xt, batch_size)
        return self._from_model(out)

    def _from_model(self, t) -> np.ndarray:
        with torch.no_grad():
            return self.module.y_norm.inverse(t).cpu().numpy().astype(np.float32)

    # -- inference ---------------------------------------------------------------------------
    def encode(self, X, batch_size: int = 1024) -> np.ndarray:
        """Latent codes of inputs ``X``: shape ``(N, latent_dim)``, float32, no units."""
        self._check_fitted()
        xt = self._to_model(self._check_x(X), self.module.x_norm)
        return self._batched(self.module.encode, xt, batch_size).cpu().numpy()

    def decode(self, z, batch_size: int = 1024) -> np.ndarray:
        """Outputs decoded from latent codes ``z`` of shape ``(N, latent_dim)``.

        Returns an array ``(N, *output_shape)`` in the units of the training targets.
        """
        self._check_fitted()
        z = as_float_array(z, "z", ndim=2, shape_tail=(self.config["latent_dim"],))
        out = self._batched(self.module.decode, torch.from_numpy(z).to(self.device),
                            batch_size)
        return self._from_model(out)

    def predict(self, X, batch_size: int = 1024) -> np.ndarray:
        """Predicted outputs for inputs ``X`` (``decode(encode(X))``), in target units."""
        self._check_fitted()
        return self._predict_model(self._to_model(self._check_x(X), self.module.x_norm),
                                   batch_size)


class Im2Spec(_EncoderDecoder):
    """Predict a spectrum (e.g. a hysteresis loop) from the image patch around its site.

    Parameters
    ----------
    patch_size : side ``p`` of the square input patches, pixels.
    n_points : length ``L`` of the output spectra (e.g. voltage steps of a loop).
    latent_dim : size of the bottleneck (the paper compares 2 and 10).
    n_filters : convolution channels in encoder and decoder (paper: 64).
    n_layers : convolution layers of the 2D encoder (paper: 3).
    dilations : dilation of each 1D decoder convolution (kernel 3), e.g. ``(1, 2, 4)``.
    seed, device : reproducibility and hardware (``"auto"``, ``"cpu"``, ``"cuda"``, ``"mps"``).

    ``fit(X, Y)`` takes ``X`` of shape ``(N, p, p)`` and ``Y`` of shape ``(N, L)``;
    ``encode(X) -> (N, latent_dim)``, ``decode(z) -> (N, L)``, ``predict(X) -> (N, L)``.
    """

    _x_name, _y_name = "patches", "spectra"

    def __init__(
        self, patch_size: int = 8, n_points: int = 64, latent_dim: int = 10,
        n_filters: int = 64, n_layers: int = 3, dilations: tuple[int, ...] | list[int] = (1, 2, 4),
        *, seed: int = 0, device: str = "auto",
    ):
        dil = [int(d) for d in dilations]
        if not dil or min(dil) < 1:
            raise ValueError(f"dilations must be positive integers, got {dilations!r}")
        super().__init__(patch_size=patch_size, n_points=n_points, latent_dim=latent_dim,
                         n_filters=n_filters, n_layers=n_layers, dilations=dil,
                         seed=seed, device=device)

    @property
    def _x_tail(self):
        p = self.config["patch_size"]
        return (p, p)

    @property
    def _y_tail(self):
        return (self.config["n_points"],)

    def _make_module(self):
        c = self.config
        return Im2SpecNet(c["patch_size"], c["n_points"], c["latent_dim"], c["n_filters"],
                   c["n_layers"], c["dilations"])


class Spec2Im(_EncoderDecoder):
    """Predict the image patch around a site from its spectrum (the reverse of ``Im2Spec``).

    Parameters
    ----------
    patch_size : side ``p`` of the square output patches, pixels.
    n_points : length ``L`` of the input spectra.
    latent_dim : size of the bottleneck.
    n_filters : convolution channels in encoder and decoder (paper: 64).
    n_layers : convolution layers of the 1D encoder (paper: 3).
    n_upsample : number of x2 upsampling steps of the 2D decoder (start size ``p / 2**k``).
    seed, device : reproducibility and hardware.

    ``fit(X, Y)`` takes spectra ``X`` of shape ``(N, L)`` and patches ``Y`` of shape
    ``(N, p, p)``; ``encode(X) -> (N, latent_dim)``, ``decode(z) -> (N, p, p)``.
    """

    _x_name, _y_name = "spectra", "patches"

    def __init__(
        self, patch_size: int = 8, n_points: int = 64, latent_dim: int = 10,
        n_filters: int = 64, n_layers: int = 3, n_upsample: int = 2,
        *, seed: int = 0, device: str = "auto",
    ):
        if not isinstance(n_upsample, (int, np.integer)) or n_upsample < 0:
            raise ValueError(f"n_upsample must be a non-negative integer, got {n_upsample!r}")
        super().__init__(patch_size=patch_size, n_points=n_points, latent_dim=latent_dim,
                         n_filters=n_filters, n_layers=n_layers, n_upsample=int(n_upsample),
                         seed=seed, device=device)

    @property
    def _x_tail(self):
        return (self.config["n_points"],)

    @property
    def _y_tail(self):
        p = self.config["patch_size"]
        return (p, p)

    def _make_module(self):
        c = self.config
        return Spec2ImNet(c["patch_size"], c["n_points"], c["latent_dim"], c["n_filters"],
                   c["n_layers"], c["n_upsample"])
