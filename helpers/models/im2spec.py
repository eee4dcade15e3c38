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

from dataclasses import dataclass, field

import numpy as np

from .base import DivergenceGuard, Estimator, as_float_array, mean_std, not_fitted

__all__ = ["Im2Spec", "Spec2Im", "TrainingHistory"]


@dataclass
class TrainingHistory:
    """Per-epoch losses of one ``fit`` call.

    ``loss``: mean squared error on the standardised training targets, one float per epoch.
    ``val_loss``: the same on ``validation`` data when it was given (else empty).
    """

    loss: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)


def _build_modules():
    """Define the torch networks lazily, so importing this file does not import torch."""
    import torch
    from torch import nn

    def conv_block(conv, channels_in, channels_out, norm, **kw):
        return [conv(channels_in, channels_out, **kw), nn.LeakyReLU(0.1), norm(channels_out)]

    class Standardise(nn.Module):
        """Holds ``mean``/``std`` buffers of the inputs and targets (saved with the weights)."""

        def __init__(self):
            super().__init__()
            self.register_buffer("x_mean", torch.zeros(()))
            self.register_buffer("x_std", torch.ones(()))
            self.register_buffer("y_mean", torch.zeros(()))
            self.register_buffer("y_std", torch.ones(()))

    class Im2SpecNet(Standardise):
        """(N, p, p) standardised patches -> (N, latent) -> (N, L) standardised spectra."""

        def __init__(self, patch_size, n_points, latent_dim, n_filters, n_layers, dilations):
            super().__init__()
            enc = []
            for i in range(n_layers):
                enc += conv_block(nn.Conv2d, 1 if i == 0 else n_filters, n_filters,
                                  nn.BatchNorm2d, kernel_size=3, padding=1)
            self.encoder = nn.Sequential(*enc, nn.Flatten(),
                                         nn.Linear(n_filters * patch_size**2, latent_dim))
            self.n_filters, self.n_points = n_filters, n_points
            self.fc = nn.Linear(latent_dim, n_filters * n_points)
            dec = []
            for d in dilations:
                dec += conv_block(nn.Conv1d, n_filters, n_filters, nn.BatchNorm1d,
                                  kernel_size=3, dilation=d, padding=d)
            self.decoder = nn.Sequential(nn.LeakyReLU(0.1), *dec,
                                         nn.Conv1d(n_filters, 1, kernel_size=1))

        def encode(self, x):
            return self.encoder(x[:, None])

        def decode(self, z):
            h = self.fc(z).view(-1, self.n_filters, self.n_points)
            return self.decoder(h)[:, 0]

    class Spec2ImNet(Standardise):
        """(N, L) standardised spectra -> (N, latent) -> (N, p, p) standardised patches."""

        def __init__(self, patch_size, n_points, latent_dim, n_filters, n_layers, n_upsample):
            super().__init__()
            enc = []
            for i in range(n_layers):
                enc += conv_block(nn.Conv1d, 1 if i == 0 else n_filters, n_filters,
                                  nn.BatchNorm1d, kernel_size=3, padding=1)
            self.encoder = nn.Sequential(*enc, nn.Flatten(),
                                         nn.Linear(n_filters * n_points, latent_dim))
            # spatial sizes from coarse to the patch size, each step doubling (rounded up)
            sizes = [patch_size]
            for _ in range(n_upsample):
                sizes.insert(0, -(-sizes[0] // 2))
            self.n_filters, self.start = n_filters, sizes[0]
            self.fc = nn.Linear(latent_dim, n_filters * sizes[0] ** 2)
            dec = [nn.LeakyReLU(0.1)]
            for s in sizes[1:]:
                dec.append(nn.Upsample(size=(s, s), mode="bilinear", align_corners=False))
                dec += conv_block(nn.Conv2d, n_filters, n_filters, nn.BatchNorm2d,
                                  kernel_size=3, padding=1)
            self.decoder = nn.Sequential(*dec, nn.Conv2d(n_filters, 1, kernel_size=1))

        def encode(self, x):
            return self.encoder(x[:, None])

        def decode(self, z):
            h = self.fc(z).view(-1, self.n_filters, self.start, self.start)
            return self.decoder(h)[:, 0]

    return Im2SpecNet, Spec2ImNet


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
        import torch

        # initialise the weights from the model's own seed without touching global state
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            self.module = self._make_module().to(self.device)
        self._fitted = False
        self._n_fits = 0

    def _make_module(self):  # pragma: no cover - abstract
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
    ) -> TrainingHistory:
        """Train on pairs ``(X[i], Y[i])`` with Adam and the mean squared error.

        The first call sets the standardisation (mean and standard deviation of ``X`` and of
        ``Y``, one scalar each); later calls continue training with it. ``validation`` is an
        optional ``(X_val, Y_val)`` pair scored after every epoch. Returns the loss history.

        Raises ``TrainingDivergedError`` (a ``FloatingPointError``) naming the epoch when a
        batch loss is NaN/inf or exceeds 1e3 times the first batch's (at least 1, the loss
        of predicting the mean): the learning rate is too large (see ``DivergenceGuard``).
        """
        import torch
        from tqdm.auto import tqdm

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
            with torch.no_grad():
                for prefix, arr, name in (("x", X, self._x_name), ("y", Y, self._y_name)):
                    mean, std = mean_std(arr, name)
                    getattr(m, f"{prefix}_mean").fill_(mean)
                    getattr(m, f"{prefix}_std").fill_(std if std > 0 else 1.0)

        dev = self.device
        xt = self._to_model(X, "x")
        yt = self._to_model(Y, "y")
        opt = torch.optim.Adam(m.parameters(), lr=float(lr))
        gen = torch.Generator().manual_seed(self.seed + 7919 * self._n_fits)
        self._n_fits += 1
        n = len(xt)
        # drop a last batch of one sample (batch norm cannot train on it)
        n_use = n - 1 if n % batch_size == 1 else n
        history = TrainingHistory()
        guard = DivergenceGuard(floor=1.0)  # MSE on standardised targets starts near 1
        bar = tqdm(range(int(epochs)), desc=type(self).__name__, disable=not progress)
        for epoch in bar:
            m.train()
            order = torch.randperm(n, generator=gen)[:n_use]
            total = 0.0
            for start in range(0, n_use, batch_size):
                idx = order[start:start + batch_size]
                xb, yb = xt[idx].to(dev), yt[idx].to(dev)
                loss = torch.mean((m.decode(m.encode(xb)) - yb) ** 2)
                value = float(loss.detach())
                guard.check(value, epoch + 1)  # epochs counted from 1
                opt.zero_grad()
                loss.backward()
                opt.step()
                total += value * len(idx)
            epoch_loss = total / n_use
            history.loss.append(epoch_loss)
            self._fitted = True
            if validation is not None:
                pred = self.predict(Xv)
                ys = float(m.y_std)
                history.val_loss.append(float(np.mean(((pred - Yv) / ys) ** 2)))
            bar.set_postfix(loss=f"{epoch_loss:.4f}")
        m.eval()
        return history

    def _to_model(self, arr: np.ndarray, prefix: str):
        """Standardise a checked numpy array with the stored statistics -> CPU tensor."""
        import torch

        m = self.module
        mean = float(getattr(m, f"{prefix}_mean"))
        std = float(getattr(m, f"{prefix}_std"))
        with np.errstate(over="ignore", invalid="ignore"):
            out = (arr - mean) / std
        if not np.isfinite(out).all():
            raise ValueError(f"input overflows float32 once standardised (mean {mean:.3g}, std "
                             f"{std:.3g}); rescale it")
        return torch.from_numpy(out)

    def _from_model(self, t, prefix: str) -> np.ndarray:
        m = self.module
        mean = float(getattr(m, f"{prefix}_mean"))
        std = float(getattr(m, f"{prefix}_std"))
        return t.detach().cpu().numpy().astype(np.float32) * std + mean

    def _batched(self, fn, t, batch_size: int):
        import torch

        self.module.eval()
        out = []
        with torch.no_grad():
            for start in range(0, len(t), batch_size):
                out.append(fn(t[start:start + batch_size].to(self.device)).cpu())
        return torch.cat(out)

    # -- inference ---------------------------------------------------------------------------
    def encode(self, X, batch_size: int = 1024) -> np.ndarray:
        """Latent codes of inputs ``X``: shape ``(N, latent_dim)``, float32, no units."""
        self._check_fitted()
        xt = self._to_model(self._check_x(X), "x")
        return self._batched(self.module.encode, xt, batch_size).numpy()

    def decode(self, z, batch_size: int = 1024) -> np.ndarray:
        """Outputs decoded from latent codes ``z`` of shape ``(N, latent_dim)``.

        Returns an array ``(N, *output_shape)`` in the units of the training targets.
        """
        import torch

        self._check_fitted()
        z = as_float_array(z, "z", ndim=2, shape_tail=(self.config["latent_dim"],))
        out = self._batched(self.module.decode, torch.from_numpy(z), batch_size)
        return self._from_model(out, "y")

    def predict(self, X, batch_size: int = 1024) -> np.ndarray:
        """Predicted outputs for inputs ``X`` (``decode(encode(X))``), in target units."""
        self._check_fitted()
        m = self.module
        xt = self._to_model(self._check_x(X), "x")
        out = self._batched(lambda b: m.decode(m.encode(b)), xt, batch_size)
        return self._from_model(out, "y")


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
        net, _ = _build_modules()
        c = self.config
        return net(c["patch_size"], c["n_points"], c["latent_dim"], c["n_filters"],
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
        _, net = _build_modules()
        c = self.config
        return net(c["patch_size"], c["n_points"], c["latent_dim"], c["n_filters"],
                   c["n_layers"], c["n_upsample"])
